// examples/<name>/run.sh from anywhere: which data path forms they accept (the data folder as
// on disk, its parent, the file), the error when the data is missing, and how they find the
// engage binary. Most cases run the scripts against a stub `engage` that records its arguments
// (the path logic is the scripts'; the binary's own behaviour is tested elsewhere), so they need
// no data set. One case runs an example on the real data with the real binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

namespace fs = std::filesystem;

struct Example {
  std::string name;    // examples/<name>/run.sh
  std::string table;   // what it ingests into
  std::string folder;  // the data folder's name in ../shared/data
  std::string file;    // the file it reads there
};

std::ostream& operator<<(std::ostream& os, const Example& e) { return os << e.name; }

const Example kExamples[] = {
    {"telco", "telco", "telco_churn", "Telco-Customer-Churn.csv"},
    {"online_shoppers", "shoppers", "online_shoppers_intention", "online_shoppers_intention.csv"},
    {"cdnow", "cdnow", "cdnow", "CDNOW_sample.txt"},
};

// Records each call as one line "arg|arg|...|" and, for the ingest, the home, whether the
// example's engage.toml is in it and the file the path resolves to; prints {} for --json so the
// script's jq has an object.
constexpr const char* kStubEngage = R"stub(#!/bin/sh
line=""
for a in "$@"; do line="$line$a|"; done
printf '%s\n' "$line" >>"$STUB_LOG"
if [ "$1" = ingest ]; then
  if [ -f "$ENGAGE_HOME/engage.toml" ]; then t=yes; else t=no; fi
  printf 'home=%s toml=%s real=%s\n' "$ENGAGE_HOME" "$t" "$(readlink -f -- "$3")" >>"$STUB_LOG"
fi
for a in "$@"; do if [ "$a" = --json ]; then echo '{}'; fi; done
exit 0
)stub";

class ExampleScripts : public ::testing::Test {
 protected:
  // <tmp>/a cwd/            where the scripts run (empty)
  // <tmp>/my data/<folder>/<file>
  // <tmp>/stub bin/engage   the stub
  void SetUp() override {
    cwd_ = dir_.path() + "/a cwd";
    fs::create_directories(cwd_);
    for (const Example& e : kExamples) dir_.WriteFile("my data/" + e.folder + "/" + e.file, "x\n");
    stub_ = dir_.WriteFile("stub bin/engage", kStubEngage);
    fs::permissions(stub_, fs::perms::owner_all, fs::perm_options::add);
    log_ = dir_.path() + "/stub.log";
  }

  std::string Script(const Example& e) const {
    return std::string(ENGAGE_SOURCE_DIR) + "/examples/" + e.name + "/run.sh";
  }
  std::string DataFile(const Example& e) const {
    return dir_.path() + "/my data/" + e.folder + "/" + e.file;
  }

  // Runs `script args...` in `cwd` with ENGAGE set to the stub and TMPDIR in the test's
  // directory. The log is cleared first.
  CommandResult RunIn(const std::string& cwd, const std::string& script,
                      const std::vector<std::string>& args) {
    return RunWithEnv(cwd, script, args, {"ENGAGE=" + stub_});
  }

  // The same with ENGAGE unset and then the variables of `env` ("NAME=value") set.
  CommandResult RunWithEnv(const std::string& cwd, const std::string& script,
                           const std::vector<std::string>& args,
                           const std::vector<std::string>& env) {
    fs::remove(log_);
    std::vector<std::string> argv{
        "env", "-C", cwd, "-u", "ENGAGE", "STUB_LOG=" + log_, "TMPDIR=" + dir_.path()};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(script);
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, dir_.path());
  }

  // The stub's log: every engage call the script made.
  std::string Log() const { return ReadFileText(log_); }

  // The path the script passed to `engage ingest <table>`, or "" if it did not ingest.
  std::string Ingested(const Example& e) const {
    std::string log = Log(), key = "ingest|" + e.table + "|";
    size_t at = log.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    return log.substr(at, log.find('|', at) - at);
  }

  // Expects a run that ingested exactly `file` (default: the example's data file), by an
  // absolute path, with the example's engage.toml in a temporary home that is gone afterwards.
  void ExpectIngestedTheDataFile(const Example& e, const CommandResult& r, std::string file = "") {
    if (file.empty()) file = DataFile(e);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.last_line_json().is_object()) << r.out;
    std::string path = Ingested(e);
    ASSERT_FALSE(path.empty()) << Log();
    EXPECT_EQ(path.front(), '/') << path;
    std::string log = Log();
    size_t real_at = log.find(" real=");
    ASSERT_NE(real_at, std::string::npos) << log;
    EXPECT_EQ(log.substr(real_at + 6, log.find('\n', real_at) - real_at - 6),
              fs::canonical(file).string())
        << log;
    size_t home_at = log.find("home=");
    ASSERT_NE(home_at, std::string::npos) << log;
    std::string home = log.substr(home_at + 5, log.find(" toml=", home_at) - home_at - 5);
    EXPECT_NE(log.find("toml=yes"), std::string::npos) << log;
    EXPECT_FALSE(home.empty());
    EXPECT_FALSE(fs::exists(home)) << "temporary home left behind: " << home;
  }

  TempDir dir_;
  std::string cwd_, stub_, log_;
};

class ExampleScriptsTest : public ExampleScripts, public ::testing::WithParamInterface<Example> {};
using ExampleScriptsBinaryTest = ExampleScripts;

TEST_P(ExampleScriptsTest, TakesTheDataFolderAsOnDiskFromAnyDirectory) {
  const Example& e = GetParam();
  // Relative to another directory, with spaces in every path.
  ExpectIngestedTheDataFile(e, RunIn(cwd_, Script(e), {"../my data/" + e.folder}));
  ExpectIngestedTheDataFile(e, RunIn(cwd_, Script(e), {"../my data/" + e.folder + "/"}));
  // From / with an absolute path.
  ExpectIngestedTheDataFile(e, RunIn("/", Script(e), {dir_.path() + "/my data/" + e.folder}));
}

TEST_P(ExampleScriptsTest, TakesTheDataFoldersParentOrTheFileItself) {
  const Example& e = GetParam();
  ExpectIngestedTheDataFile(e, RunIn(cwd_, Script(e), {"../my data"}));
  ExpectIngestedTheDataFile(e, RunIn(cwd_, Script(e), {"../my data/" + e.folder + "/" + e.file}));
  // The script itself called by a relative path.
  ExpectIngestedTheDataFile(e, RunIn(std::string(ENGAGE_SOURCE_DIR),
                                     "examples/" + e.name + "/run.sh", {dir_.path() + "/my data"}));
}

// engage ingest expands * ? [ in its path argument, so such a path is passed as a symlink.
TEST_P(ExampleScriptsTest, TakesADataPathWithGlobCharacters) {
  const Example& e = GetParam();
  std::string file = dir_.WriteFile("v[1]*/" + e.folder + "/" + e.file, "x\n");
  auto r = RunIn(cwd_, Script(e), {"../v[1]*/" + e.folder});
  ExpectIngestedTheDataFile(e, r, file);
  EXPECT_EQ(Ingested(e).find_first_of("*?["), std::string::npos) << Ingested(e);

  std::string odd = dir_.WriteFile("odd/" + e.folder + "/x?[2]", "x\n");
  auto named = RunIn(cwd_, Script(e), {odd});
  ExpectIngestedTheDataFile(e, named, odd);
  EXPECT_EQ(Ingested(e).find_first_of("*?["), std::string::npos) << Ingested(e);
}

TEST_P(ExampleScriptsTest, MissingDataExitsTwoNamingWhatWasExpected) {
  const Example& e = GetParam();
  auto missing = RunIn(cwd_, Script(e), {"../my data/nope"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  for (const std::string& s : {e.file, e.folder, std::string("'../my data/nope' does not exist")})
    EXPECT_NE(missing.err.find(s), std::string::npos) << s << " in: " << missing.err;
  EXPECT_EQ(Log(), "") << "engage ran without data";

  // A folder that exists but holds neither the file nor the data folder.
  auto empty = RunIn(cwd_, Script(e), {"."});
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  EXPECT_NE(empty.err.find("no " + e.file + " in '.'"), std::string::npos) << empty.err;
  EXPECT_EQ(Log(), "");

  // Another data set's folder.
  const Example& other = e.name == "telco" ? kExamples[1] : kExamples[0];
  auto wrong = RunIn(cwd_, Script(e), {"../my data/" + other.folder});
  EXPECT_EQ(wrong.exit_code, 2) << wrong.err;
  EXPECT_NE(wrong.err.find(e.file), std::string::npos) << wrong.err;

  auto usage = RunIn(cwd_, Script(e), {});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("usage: examples/" + e.name + "/run.sh DATA"), std::string::npos)
      << usage.err;
  auto help = RunIn(cwd_, Script(e), {"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find(e.folder), std::string::npos) << help.out;
}

INSTANTIATE_TEST_SUITE_P(AllExamples, ExampleScriptsTest, ::testing::ValuesIn(kExamples),
                         [](const auto& param_info) { return param_info.param.name; });

// Outside a checkout (no build/ beside examples/, e.g. a copy), the scripts use engage on PATH,
// and say what to do when there is none.
TEST_F(ExampleScriptsBinaryTest, CopiedExamplesUseEngageOnPath) {
  fs::copy(std::string(ENGAGE_SOURCE_DIR) + "/examples", dir_.path() + "/copied examples",
           fs::copy_options::recursive);
  const Example& e = kExamples[0];
  std::string script = dir_.path() + "/copied examples/" + e.name + "/run.sh";
  std::string path = "PATH=" + dir_.path() + "/stub bin:/usr/bin:/bin";
  auto r = RunWithEnv(cwd_, script, {"../my data"}, {path});
  ExpectIngestedTheDataFile(e, r);

  auto env_path = RunWithEnv(cwd_, script, {"../my data"}, {"ENGAGE=engage", path});
  ExpectIngestedTheDataFile(e, env_path);

  if (fs::exists("/usr/bin/engage") || fs::exists("/bin/engage")) {
    GTEST_SKIP() << "an engage is installed in /usr/bin";
  }
  auto none = RunWithEnv(cwd_, script, {"../my data"}, {"PATH=/usr/bin:/bin"});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_NE(none.err.find("no engage binary: set ENGAGE="), std::string::npos) << none.err;
  auto bad = RunWithEnv(cwd_, script, {"../my data"}, {"ENGAGE=" + dir_.path() + "/nope/engage"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("nope/engage is not an executable file"), std::string::npos) << bad.err;
}

// The real thing: the CDNOW example on the shared data, run from a directory that is not the
// repository, naming the data folder as it is on disk by a relative path.
TEST(ExampleScriptsRealDataTest, CdnowRunsFromAnotherDirectoryOnTheFolderAsOnDisk) {
  std::string data = SharedDataDir();
  if (data.empty() || !fs::exists(data + "/cdnow/CDNOW_sample.txt")) {
    GTEST_SKIP() << "../shared/data/cdnow is missing";
  }
  TempDir dir;
  std::string cwd = dir.path() + "/a cwd";
  fs::create_directories(cwd);
  std::string rel = fs::relative(data + "/cdnow", cwd).string();
  ASSERT_EQ(rel.rfind("..", 0), 0u) << rel;
  auto r = RunCommand({"env", "-C", cwd, std::string("ENGAGE=") + ENGAGE_BINARY,
                       std::string(ENGAGE_SOURCE_DIR) + "/examples/cdnow/run.sh", rel},
                      dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.last_line_json();
  ASSERT_TRUE(j.is_object()) << r.out;
  // Fader, Hardie & Lee (2005): r = 0.243, and Gamma-Gamma's gamma = 15.44 on this sample.
  EXPECT_NEAR(j["bgnbd"]["r"].get<double>(), 0.243, 0.0005) << j.dump();
  EXPECT_NEAR(j["gamma_gamma"]["gamma"].get<double>(), 15.44, 0.005) << j.dump();
}

}  // namespace
}  // namespace engage::testing
