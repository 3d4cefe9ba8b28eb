#include "testing/temp_dir.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace engage::testing {

TempDir::TempDir() {
  std::string base = ::testing::TempDir();
  if (base.empty()) base = "/tmp/";
  std::string tmpl = base + "engage-test-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  path_ = p ? std::string(p) : tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::WriteFile(const std::string& name, const std::string& content) const {
  std::string full = path_ + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(full).parent_path());
  std::ofstream out(full, std::ios::binary);
  out << content;
  return full;
}

std::string SharedDir(const std::string& sub) {
  for (const std::string root :
       {std::string(ENGAGE_SOURCE_DIR) + "/../shared", std::string("/work/shared")}) {
    std::string cand = root + "/" + sub;
    if (std::filesystem::exists(cand)) return std::filesystem::canonical(cand).string();
  }
  return "";
}

std::string SharedDataDir() {
  std::string dir = SharedDir("data");
  return !dir.empty() && std::filesystem::exists(dir + "/README.md") ? dir : "";
}

}  // namespace engage::testing
