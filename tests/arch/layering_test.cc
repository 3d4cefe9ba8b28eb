// The components' one-way dependencies (src/README.md): a component includes headers of the
// components below it only. Reads every source and header under src/<component>/ and
// include/engage/<component>/ and checks each `#include "engage/<c>/..."` or `#include "<c>/..."`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// What each component may include besides itself: every component below it. Keep in step with
// src/README.md.
const std::map<std::string, std::set<std::string>>& Allowed() {
  static const std::map<std::string, std::set<std::string>> allowed = {
      {"core", {}},
      {"jsonata", {"core"}},
      {"lake", {"core"}},
      {"sql", {"core", "lake"}},
      {"gen", {"core", "lake"}},
      {"features", {"core", "lake", "sql"}},
      {"ml", {"core", "lake", "sql", "features"}},
      {"flow", {"core", "jsonata"}},
      {"serve", {"core", "lake", "sql", "features", "ml", "jsonata", "flow"}},
      {"monitor", {"core", "lake", "sql"}},
      {"app",
       {"core", "lake", "sql", "gen", "features", "ml", "jsonata", "flow", "serve", "monitor"}},
      {"server",
       {"core", "lake", "sql", "gen", "features", "ml", "jsonata", "flow", "serve", "monitor",
        "app"}},
      {"cli",
       {"core", "lake", "sql", "gen", "features", "ml", "jsonata", "flow", "serve", "monitor",
        "app", "server"}},
  };
  return allowed;
}

struct Violation {
  std::string file;
  int line;
  std::string include;
};

// The component a quoted include names: "engage/<c>/x.h" or "<c>/x.h" (private headers under
// src/); empty for anything else.
std::string ComponentOf(const std::string& include) {
  std::string path = include;
  if (path.rfind("engage/", 0) == 0) path = path.substr(7);
  size_t slash = path.find('/');
  if (slash == std::string::npos) return "";
  std::string c = path.substr(0, slash);
  return Allowed().count(c) > 0 ? c : "";
}

std::vector<Violation> Check(const std::string& component, const fs::path& dir) {
  std::vector<Violation> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  static const std::regex include_re(R"re(^\s*#\s*include\s*"([^"]+)")re");
  const std::set<std::string>& allowed = Allowed().at(component);
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    if (ext != ".cc" && ext != ".h" && ext != ".in") continue;
    std::ifstream in(entry.path());
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      std::smatch m;
      if (!std::regex_search(line, m, include_re)) continue;
      std::string c = ComponentOf(m[1].str());
      if (c.empty() || c == component || allowed.count(c) > 0) continue;
      out.push_back({entry.path().string(), n, m[1].str()});
    }
  }
  return out;
}

TEST(LayeringTest, EveryComponentIncludesOnlyComponentsBelowIt) {
  fs::path root(ENGAGE_SOURCE_DIR);
  std::vector<Violation> all;
  for (const auto& [component, allowed] : Allowed()) {
    for (const fs::path& dir :
         {root / "src" / component, root / "include" / "engage" / component}) {
      auto v = Check(component, dir);
      all.insert(all.end(), v.begin(), v.end());
    }
  }
  for (const Violation& v : all) {
    ADD_FAILURE() << v.file << ":" << v.line << " includes \"" << v.include
                  << "\", a component above (or beside) its own; see src/README.md";
  }
}

TEST(LayeringTest, EveryComponentFolderIsKnown) {
  fs::path root(ENGAGE_SOURCE_DIR);
  for (const fs::path& dir : {root / "src", root / "include" / "engage"}) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_directory()) continue;
      std::string name = entry.path().filename().string();
      EXPECT_TRUE(Allowed().count(name) > 0)
          << entry.path() << " is not a known component: add it to src/README.md and to "
          << "Allowed() in this test with the components it may use";
    }
  }
}

// The check itself: a header of a component above is caught, one below is not.
TEST(LayeringTest, TheCheckCatchesAnUpwardInclude) {
  fs::path dir = fs::temp_directory_path() / ("engage_layering_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "x.cc") << "#include \"engage/lake/lake.h\"\n"
                              << "#include \"engage/app/app.h\"\n"
                              << "#include \"cli/commands.h\"\n"
                              << "#include <engage/whatever.h>\n";
  auto v = Check("sql", dir);
  fs::remove_all(dir);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].include, "engage/app/app.h");
  EXPECT_EQ(v[1].include, "cli/commands.h");
}

}  // namespace
