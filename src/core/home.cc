#include "engage/core/home.h"

#include <cstdlib>
#include <filesystem>

namespace engage {

HomePaths ResolveHome(const std::string& flag_value) {
  std::string root = flag_value;
  if (root.empty()) {
    const char* env = std::getenv("ENGAGE_HOME");
    root = (env && *env) ? env : "engage-home";
  }
  std::error_code ec;
  auto abs = std::filesystem::absolute(root, ec);
  HomePaths h;
  h.root = ec ? root : abs.lexically_normal().string();
  while (h.root.size() > 1 && h.root.back() == '/') h.root.pop_back();
  return h;
}

}  // namespace engage
