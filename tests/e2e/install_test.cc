// `cmake --install` (what `make install PREFIX=...` runs) gives a relocatable prefix: each test
// installs this build into a temporary prefix, moves the prefix somewhere else, and runs the
// installed binary from there with LD_LIBRARY_PATH unset. The build tree's libduckdb.so still
// exists during the test, so the tests also check which copy the loader picks: an install that
// kept pointing at the build tree would otherwise pass.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

namespace fs = std::filesystem;

class InstallTest : public ::testing::Test {
 protected:
  // Installs into "<tmp>/staged prefix" (a space on purpose) and moves it to
  // "<tmp>/moved away/prefix", which the tests then use.
  void SetUp() override {
    std::string staged = dir_.path() + "/staged prefix";
    auto r = RunCommand({ENGAGE_CMAKE_COMMAND, "--install", ENGAGE_BUILD_DIR, "--prefix", staged},
                        dir_.path());
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_TRUE(fs::exists(staged + "/bin/engage")) << r.out;
    ASSERT_TRUE(fs::exists(staged + "/lib/engage/libduckdb.so")) << r.out;
    fs::create_directories(dir_.path() + "/moved away");
    prefix_ = dir_.path() + "/moved away/prefix";
    fs::rename(staged, prefix_);
    ASSERT_FALSE(fs::exists(staged));
    fs::create_directories(dir_.path() + "/work");
  }

  // Runs `argv` in <tmp>/work with LD_LIBRARY_PATH unset and ENGAGE_HOME=<tmp>/home.
  CommandResult Run(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"env", "-C", dir_.path() + "/work", "-u", "LD_LIBRARY_PATH",
                               "ENGAGE_HOME=" + dir_.path() + "/home"});
    return RunCommand(argv, dir_.path());
  }

  // The file the loader resolves libduckdb.so to for `binary` (from ldd), or "" if none.
  std::string ResolvedDuckdb(const std::string& binary) {
    auto r = Run({"ldd", binary});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::string key = "libduckdb.so => ";
    size_t at = r.out.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    size_t end = r.out.find(" (0x", at);
    std::string path = r.out.substr(at, end == std::string::npos ? end : end - at);
    std::error_code ec;
    fs::path real = fs::canonical(path, ec);
    return ec ? path : real.string();
  }

  std::string InstalledDuckdb() { return fs::canonical(prefix_ + "/lib/engage/libduckdb.so"); }

  TempDir dir_;
  std::string prefix_;
};

TEST_F(InstallTest, RunpathIsRelativeToTheBinary) {
  auto r = Run({"readelf", "-d", prefix_ + "/bin/engage"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t at = r.out.find("(RUNPATH)");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::string line = r.out.substr(at, r.out.find('\n', at) - at);
  EXPECT_NE(line.find("[$ORIGIN/../lib/engage]"), std::string::npos) << line;
  // Nothing of the machine it was built on.
  EXPECT_EQ(line.find(ENGAGE_SOURCE_DIR), std::string::npos) << line;
  EXPECT_EQ(line.find("third_party"), std::string::npos) << line;
  EXPECT_EQ(r.out.find("(RPATH)"), std::string::npos) << r.out;
}

TEST_F(InstallTest, MovedPrefixRunsTheTourWithoutLdLibraryPath) {
  std::string engage = prefix_ + "/bin/engage";
  EXPECT_EQ(ResolvedDuckdb(engage), InstalledDuckdb());

  auto help = Run({engage, "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("ingest"), std::string::npos) << help.out;

  auto init = Run({engage, "init"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  ASSERT_TRUE(fs::exists(dir_.path() + "/home/engage.toml"));
  auto gen = Run({engage, "gen", "--customers", "50", "--days", "30", "--seed", "7", "--out",
                  "data", "--end", "2025-01-01"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto customers = Run({engage, "ingest", "customers", "data/customers.parquet"});
  ASSERT_EQ(customers.exit_code, 0) << customers.err;
  auto events = Run({engage, "ingest", "events", "data/events/*.parquet"});
  ASSERT_EQ(events.exit_code, 0) << events.err;

  auto query = Run({engage, "query", "--json", "SELECT count(*) FROM events"});
  ASSERT_EQ(query.exit_code, 0) << query.err;
  Json j = query.json();
  ASSERT_TRUE(j.is_object() && j.contains("rows")) << query.out;
  EXPECT_GT(j["rows"][0][0].get<int64_t>(), 0) << query.out;
  // The shipped pipeline is compiled in: the prefix needs no pipelines/ or share/ folder.
  auto pipeline = Run({engage, "run", "pipeline", "--print-definition"});
  ASSERT_EQ(pipeline.exit_code, 0) << pipeline.err;
  Json shipped =
      Json::parse(ReadFileText(std::string(ENGAGE_SOURCE_DIR) + "/pipelines/engagement.asl.json"),
                  nullptr, false);
  ASSERT_TRUE(shipped.is_object());
  EXPECT_EQ(pipeline.json(), shipped);
}

TEST_F(InstallTest, SymlinkedPrefixAndSymlinkedBinaryFindTheInstalledLibrary) {
  // A prefix reached through a symlink (e.g. /opt/engage -> /opt/engage-0.1.0).
  fs::create_directory_symlink(prefix_, dir_.path() + "/linked prefix");
  std::string via_link = dir_.path() + "/linked prefix/bin/engage";
  EXPECT_EQ(ResolvedDuckdb(via_link), InstalledDuckdb());
  auto r = Run({via_link, "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // The binary symlinked into a directory on PATH (e.g. /usr/local/bin/engage): $ORIGIN is
  // the real binary's directory, so the library is still the prefix's.
  fs::create_directories(dir_.path() + "/on path");
  fs::create_symlink(prefix_ + "/bin/engage", dir_.path() + "/on path/engage");
  auto init = Run({"env", "PATH=" + dir_.path() + "/on path:/usr/bin:/bin", "engage", "init"});
  EXPECT_EQ(init.exit_code, 0) << init.err;
  auto query = Run({"env", "PATH=" + dir_.path() + "/on path:/usr/bin:/bin", "engage", "query",
                    "--json", "SELECT 41 + 1 AS answer"});
  EXPECT_EQ(query.exit_code, 0) << query.err;
  EXPECT_NE(query.out.find("42"), std::string::npos) << query.out;
}

// The build-tree binary keeps an absolute RUNPATH to DuckDB with no empty entry: CMake's own
// install-time rewriting would end it with ':', and an empty entry makes the loader try the
// current directory for every library (cmake/EngageInstall.cmake).
TEST(InstallRunpathTest, BuildTreeBinaryHasNoEmptyRunpathEntry) {
  TempDir dir;
  auto r = RunCommand({"readelf", "-d", ENGAGE_BINARY}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t at = r.out.find("(RUNPATH)");
  ASSERT_NE(at, std::string::npos) << r.out;
  size_t open = r.out.find('[', at), close = r.out.find(']', at);
  ASSERT_TRUE(open != std::string::npos && close != std::string::npos) << r.out;
  std::string runpath = r.out.substr(open + 1, close - open - 1);
  EXPECT_EQ(runpath.find("$ORIGIN"), std::string::npos) << runpath;
  std::string entries = ":" + runpath + ":";
  EXPECT_EQ(entries.find("::"), std::string::npos) << "empty entry in " << runpath;
  EXPECT_TRUE(fs::exists(runpath + "/libduckdb.so")) << runpath;
}

}  // namespace
}  // namespace engage::testing
