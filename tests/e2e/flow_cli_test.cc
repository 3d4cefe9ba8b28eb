// End-to-end tests of `engage flow ...`: run the real binary on a temporary home.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "engage/core/json.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  Json json() const { return Json::parse(out, nullptr, false); }
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The event types of a `flow history --json` answer, in order.
std::vector<std::string> Types(const Json& history) {
  std::vector<std::string> out;
  if (!history.is_object() || !history.contains("events")) return out;
  for (const Json& e : history["events"]) out.push_back(e.value("type", ""));
  return out;
}

int CountOf(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<int>(std::count(v.begin(), v.end(), x));
}

// Index of the first `x` in `v` at or after `from`, or -1.
int IndexOf(const std::vector<std::string>& v, const std::string& x, size_t from = 0) {
  for (size_t i = from; i < v.size(); ++i) {
    if (v[i] == x) return static_cast<int>(i);
  }
  return -1;
}

// Where the conformance corpora live (../shared/conformance next to the repo), or "".
std::string ConformanceDir() {
  for (const char* cand :
       {ENGAGE_SOURCE_DIR "/../shared/conformance", "/work/shared/conformance"}) {
    if (fs::exists(std::string(cand) + "/asl") || fs::exists(std::string(cand) + "/jsonata")) {
      return fs::canonical(cand).string();
    }
  }
  return "";
}

class FlowCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = dir_.path() + "/home";
    auto r = Run({"init"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Runs `engage --home <home> args...`, feeding `stdin_text` (or /dev/null) on stdin.
  RunResult Run(const std::vector<std::string>& args,
                const std::optional<std::string>& stdin_text = std::nullopt) {
    std::string cmd = Quote(ENGAGE_BINARY) + " --home " + Quote(home_);
    for (const auto& a : args) cmd += " " + Quote(a);
    std::string out = dir_.path() + "/.out", err = dir_.path() + "/.err";
    std::string in = "/dev/null";
    if (stdin_text) in = dir_.WriteFile(".stdin", *stdin_text);
    cmd += " >" + Quote(out) + " 2>" + Quote(err) + " <" + Quote(in);
    int rc = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    return r;
  }

  std::string Write(const std::string& name, const std::string& content) {
    return dir_.WriteFile(name, content);
  }

  void AppendConfig(const std::string& toml) {
    std::ofstream out(home_ + "/engage.toml", std::ios::app);
    out << "\n" << toml << "\n";
  }

  // `engage flow history <id> --json`, asserting success.
  Json History(const std::string& id) {
    auto r = Run({"flow", "history", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.json();
  }

  Json Describe(const std::string& id) {
    auto r = Run({"flow", "describe", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.json();
  }

  // Waits (up to 20 s) until execution `name`, run by another process, is in its Wait state:
  // WaitStateEntered is in its durable history.
  bool ReachesWaitState(const std::string& name) {
    for (int i = 0; i < 400; ++i) {
      auto h = Run({"flow", "history", name, "--json"});
      if (h.exit_code == 0 && CountOf(Types(h.json()), "WaitStateEntered") == 1) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Number of lines in a counter file that a command appends to.
  int Lines(const std::string& path) {
    std::string s = ReadAll(path);
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  }

  TempDir dir_;
  std::string home_;
};

constexpr const char* kPassMachine = R"j({
  "Comment": "two Pass states",
  "StartAt": "First",
  "States": {
    "First": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.first", "Next": "Second"},
    "Second": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.first.x, $.n)"},
               "End": true}
  }
})j";

// ---- 1. validate ----

TEST_F(FlowCliTest, ValidateAcceptsAValidDefinition) {
  std::string def = Write("ok.asl.json", kPassMachine);
  auto r = Run({"flow", "validate", def});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "valid")) << r.out;
  auto j = Run({"flow", "validate", def, "--json"});
  EXPECT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(j.json()["valid"], true) << j.out;
  EXPECT_TRUE(j.json()["problems"].empty()) << j.out;
}

// One definition with many problems: every one is reported with its state and field.
constexpr const char* kBrokenMachine = R"j({
  "StartAt": "A",
  "States": {
    "A": {"Type": "Pass", "InputPath": "$.a[", "Next": "B"},
    "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Parameters": {"FunctionName": "f"},
          "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": -1}], "Next": "C"},
    "C": {"Type": "Pass", "Parameters": {"x.$": "States.Nope(1)"}, "Next": "D"},
    "D": {"Type": "Pass", "QueryLanguage": "JSONata", "InputPath": "$", "Next": "E"},
    "E": {"Type": "Pass", "Next": "Nowhere"},
    "Orphan": {"Type": "Pass", "End": true}
  }
})j";

TEST_F(FlowCliTest, ValidateReportsEveryProblemWithStateAndField) {
  std::string def = Write("broken.json", kBrokenMachine);
  auto r = Run({"flow", "validate", def});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string all = r.out + r.err;
  for (const char* want : {"/States/A/InputPath", "/States/B/Retry/0/MaxAttempts",
                           "/States/C/Parameters", "/States/D/InputPath", "/States/E/Next",
                           "/States/Orphan", "'A'", "'B'", "'C'", "'D'", "'E'", "'Orphan'"}) {
    EXPECT_TRUE(Contains(all, want)) << "missing " << want << " in:\n" << all;
  }

  auto j = Run({"flow", "validate", def, "--json"});
  EXPECT_EQ(j.exit_code, 1) << j.err;
  Json report = j.json();
  ASSERT_TRUE(report.is_object()) << j.out;
  EXPECT_EQ(report["valid"], false);
  ASSERT_TRUE(report["problems"].is_array());
  std::map<std::string, std::string> by_state;  // state -> paths
  for (const Json& p : report["problems"]) {
    ASSERT_TRUE(p.contains("state") && p.contains("path") && p.contains("message")) << p.dump();
    EXPECT_FALSE(p["message"].get<std::string>().empty()) << p.dump();
    by_state[p["state"].get<std::string>()] += p["path"].get<std::string>() + " ";
  }
  EXPECT_TRUE(Contains(by_state["A"], "/States/A/InputPath")) << report.dump(1);
  EXPECT_TRUE(Contains(by_state["B"], "/States/B/Retry/0/MaxAttempts")) << report.dump(1);
  EXPECT_TRUE(Contains(by_state["C"], "/States/C/Parameters")) << report.dump(1);
  EXPECT_TRUE(Contains(by_state["D"], "/States/D/InputPath")) << report.dump(1);
  EXPECT_TRUE(Contains(by_state["E"], "/States/E/Next")) << report.dump(1);
  EXPECT_TRUE(Contains(by_state["Orphan"], "/States/Orphan")) << report.dump(1);
}

TEST_F(FlowCliTest, ValidateReportsAMachineWithoutTerminalState) {
  std::string loop = Write("loop.json", R"j({"StartAt": "A", "States": {
    "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}})j");
  auto r = Run({"flow", "validate", loop, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.json()["valid"], false) << r.out;
  EXPECT_FALSE(r.json()["problems"].empty()) << r.out;

  std::string open = Write("open.json", R"j({"StartAt": "A", "States": {
    "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass"}}})j");
  auto o = Run({"flow", "validate", open, "--json"});
  EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
  bool found = false;
  Json report = o.json();
  for (const Json& p : report["problems"]) {
    found |= p.value("state", "") == "B" && Contains(p.value("path", ""), "/States/B");
  }
  EXPECT_TRUE(found) << o.out;
}

TEST_F(FlowCliTest, ValidateOfMissingOrNonJsonFileIsAClearError) {
  auto r = Run({"flow", "validate", dir_.path() + "/nope.json"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 1) << "a missing file is not an invalid definition";
  EXPECT_TRUE(Contains(r.err, "nope.json")) << r.err;

  std::string bad = Write("notjson.json", "{\"StartAt\": ");
  auto b = Run({"flow", "validate", bad});
  EXPECT_EQ(b.exit_code, 1) << b.out << b.err;
  EXPECT_TRUE(Contains(b.out + b.err, "notjson.json")) << b.out << b.err;
  auto bj = Run({"flow", "validate", bad, "--json"});
  EXPECT_EQ(bj.exit_code, 1);
  EXPECT_EQ(bj.json()["valid"], false) << bj.out;
  EXPECT_EQ(bj.json()["problems"].size(), 1u) << bj.out;
}

// ---- 2. run ----

TEST_F(FlowCliTest, RunPrintsStatusAndOutput) {
  std::string def = Write("add.asl.json", kPassMachine);
  std::string in = Write("in.json", R"({"n": 41})");
  auto r = Run({"flow", "run", def, "--input", in, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["status"], "SUCCEEDED");
  EXPECT_EQ(j["output"], Json({{"sum", 42}})) << r.out;
  EXPECT_FALSE(j.contains("error")) << r.out;
  EXPECT_FALSE(j.contains("cause")) << r.out;

  auto text = Run({"flow", "run", def, "--input", in});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Contains(text.out, "SUCCEEDED")) << text.out;
  EXPECT_TRUE(Contains(text.out, "42")) << text.out;
}

TEST_F(FlowCliTest, RunOfAFailingMachineReportsErrorAndCause) {
  std::string def = Write("fail.json", R"j({"StartAt": "Boom", "States": {
    "Boom": {"Type": "Fail", "Error": "Custom.Broken", "Cause": "it broke"}}})j");
  auto r = Run({"flow", "run", def, "--json"});
  EXPECT_NE(r.exit_code, 0);
  Json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["status"], "FAILED");
  EXPECT_EQ(j["error"], "Custom.Broken");
  EXPECT_EQ(j["cause"], "it broke");
  EXPECT_FALSE(j.contains("output")) << r.out;

  auto text = Run({"flow", "run", def});
  EXPECT_NE(text.exit_code, 0);
  EXPECT_TRUE(Contains(text.out, "FAILED")) << text.out;
  EXPECT_TRUE(Contains(text.out, "Custom.Broken")) << text.out;
  EXPECT_TRUE(Contains(text.out, "it broke")) << text.out;
}

TEST_F(FlowCliTest, RunOfFailStateWithoutErrorHasNoErrorKey) {
  std::string def = Write("bare.json", R"j({"StartAt": "Boom", "States": {
    "Boom": {"Type": "Fail"}}})j");
  auto r = Run({"flow", "run", def, "--json"});
  EXPECT_NE(r.exit_code, 0);
  Json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["status"], "FAILED");
  EXPECT_FALSE(j.contains("error")) << r.out;
  EXPECT_FALSE(j.contains("cause")) << r.out;
}

TEST_F(FlowCliTest, RunReadsInputFromStdin) {
  std::string def = Write("add.json", kPassMachine);
  auto r = Run({"flow", "run", def, "--input", "-", "--json"}, std::string(R"({"n": 9})"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.json()["output"], Json({{"sum", 10}})) << r.out;

  auto bad = Run({"flow", "run", def, "--input", "-"}, std::string("{not json"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(Contains(bad.err, "stdin")) << bad.err;
}

TEST_F(FlowCliTest, RunWithMissingInputFileIsAClearError) {
  std::string def = Write("add.json", kPassMachine);
  auto r = Run({"flow", "run", def, "--input", dir_.path() + "/absent.json"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(Contains(r.err, "absent.json")) << r.err;
  // Nothing was recorded for a run that never started.
  auto l = Run({"flow", "list", "--json"});
  EXPECT_TRUE(l.json().empty()) << l.out;
}

TEST_F(FlowCliTest, RunWithADeeplyNestedInputIsAClearErrorNotACrash) {
  std::string def = Write("add.json", kPassMachine);
  std::string deep = Write("deep.json", std::string(100000, '[') + std::string(100000, ']'));
  auto r = Run({"flow", "run", def, "--input", deep});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.err, "deep.json")) << r.err;
  EXPECT_TRUE(Contains(r.err, "nested deeper than 512")) << r.err;
  auto l = Run({"flow", "list", "--json"});
  EXPECT_TRUE(l.json().empty()) << l.out;
}

TEST_F(FlowCliTest, ValidateReportsTimeFieldsBeyondAwsBounds) {
  std::string def = Write("times.json", R"j({"StartAt":"A","TimeoutSeconds":9223372036854775807,
    "States":{
      "A":{"Type":"Wait","Seconds":9500000000,"Next":"B"},
      "B":{"Type":"Wait","Seconds":99999999999999,"Next":"Far"},
      "Far":{"Type":"Wait","Timestamp":"9999-12-31T23:59:59Z","Next":"T"},
      "T":{"Type":"Task","Resource":"engage:x","TimeoutSeconds":9223372036854775807,
           "HeartbeatSeconds":100000000,"End":true}}})j");
  auto r = Run({"flow", "validate", def});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string all = r.out + r.err;
  for (const char* want :
       {"/TimeoutSeconds", "/States/A/Seconds", "/States/B/Seconds", "/States/T/TimeoutSeconds",
        "/States/T/HeartbeatSeconds", "'A'", "'B'", "'T'"}) {
    EXPECT_TRUE(Contains(all, want)) << "missing " << want << " in:\n" << all;
  }
}

TEST_F(FlowCliTest, EndlessLoopStopsAtTheConfiguredHistoryQuota) {
  AppendConfig("[flow]\nmax_history_events = 500\n");
  std::string def = Write("loop.json", R"j({"StartAt":"P","States":{
    "P":{"Type":"Pass","Next":"C"},
    "C":{"Type":"Choice","Choices":[{"Variable":"$.stop","IsPresent":true,"Next":"Done"}],
         "Default":"P"},
    "Done":{"Type":"Succeed"}}})j");
  auto r = Run({"flow", "run", def, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  Json j = r.json();
  EXPECT_EQ(j["status"], "FAILED") << r.out;
  EXPECT_EQ(j["error"], "States.Runtime") << r.out;
  EXPECT_EQ(j["cause"], "The execution reached the maximum number of history events (500).")
      << r.out;
  Json h = History(j["executionId"].get<std::string>());
  auto types = Types(h);
  EXPECT_EQ(types.size(), 500u);
  EXPECT_EQ(types.back(), "ExecutionFailed");
}

TEST_F(FlowCliTest, ExecutionOverTheConfiguredMaximumDurationTimesOut) {
  AppendConfig("[flow]\nmax_execution_seconds = 1\n");
  std::string def = Write("wait.json", R"j({"StartAt":"W","States":{
    "W":{"Type":"Wait","Seconds":99999999,"End":true}}})j");
  auto r = Run({"flow", "run", def, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  Json j = r.json();
  EXPECT_EQ(j["status"], "TIMED_OUT") << r.out;
  auto types = Types(History(j["executionId"].get<std::string>()));
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.back(), "ExecutionTimedOut");
}

TEST_F(FlowCliTest, RunOfAnInvalidDefinitionListsTheProblems) {
  std::string def = Write("broken.json", kBrokenMachine);
  auto r = Run({"flow", "run", def});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "/States/E/Next")) << r.err;
  EXPECT_TRUE(Run({"flow", "list", "--json"}).json().empty());
}

TEST_F(FlowCliTest, RunWithTheSameNameTwiceIsRefused) {
  std::string counter = dir_.path() + "/count";
  AppendConfig("[flow.lambda.tick]\ncommand = [\"sh\", \"-c\", \"echo x >> " + counter +
               "; echo '{}'\"]");
  std::string def = Write("tick.json", R"j({"StartAt": "T", "States": {
    "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Parameters": {"FunctionName": "tick"}, "End": true}}})j");
  auto first = Run({"flow", "run", def, "--name", "nightly", "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.json()["name"], "nightly");
  EXPECT_EQ(Lines(counter), 1);
  auto second = Run({"flow", "run", def, "--name", "nightly", "--json"});
  EXPECT_EQ(second.exit_code, 4) << second.err;
  EXPECT_TRUE(Contains(second.err, "already exists")) << second.err;
  EXPECT_EQ(Lines(counter), 1) << "the refused execution must not run";
  auto list = Run({"flow", "list", "--json"});
  EXPECT_EQ(list.json().size(), 1u) << list.out;
}

// ---- 3. mocks ----

constexpr const char* kTaskMachine = R"j({"StartAt": "Task1", "States": {
  "Task1": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "score", "Payload.$": "$"},
            "ResultSelector": {"score.$": "$.Payload.score"}, "Next": "Done"},
  "Done": {"Type": "Succeed"}}})j";

TEST_F(FlowCliTest, MockSimpleFormatReturnsTheResult) {
  std::string def = Write("scoring.json", kTaskMachine);
  std::string mocks = Write("mocks.json", R"j({"States": {
    "Task1": {"Return": {"StatusCode": 200, "Payload": {"score": 0.75}}}}})j");
  auto r = Run({"flow", "run", def, "--mock", mocks, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.json()["output"], Json({{"score", 0.75}})) << r.out;
}

constexpr const char* kSfnLocalMocks = R"j({
  "StateMachines": {
    "scoring": {
      "TestCases": {
        "HappyPath": {"Task1": "ScoreOk"},
        "Failure": {"Task1": "ScoreFails"},
        "Flaky": {"Task1": "FailsOnce"}
      }
    }
  },
  "MockedResponses": {
    "ScoreOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"score": 0.5}}}},
    "ScoreFails": {"0-2": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "down"}}},
    "FailsOnce": {
      "0": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "slow down"}},
      "1-2": {"Return": {"StatusCode": 200, "Payload": {"score": 0.9}}}
    }
  }
})j";

TEST_F(FlowCliTest, MockStepFunctionsLocalFormatWithTestCases) {
  std::string def = Write("scoring.json", kTaskMachine);
  std::string mocks = Write("MockConfigFile.json", kSfnLocalMocks);
  auto ok = Run({"flow", "run", def, "--mock", mocks, "--mock-case", "HappyPath", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.json()["output"], Json({{"score", 0.5}})) << ok.out;

  auto bad = Run({"flow", "run", def, "--mock", mocks, "--mock-case", "Failure", "--json"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(bad.json()["status"], "FAILED") << bad.out;
  EXPECT_EQ(bad.json()["error"], "Lambda.ServiceException") << bad.out;
  EXPECT_EQ(bad.json()["cause"], "down") << bad.out;

  // Several test cases and none chosen: a clear error naming them.
  auto none = Run({"flow", "run", def, "--mock", mocks});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_TRUE(Contains(none.err, "--mock-case")) << none.err;
  EXPECT_TRUE(Contains(none.err, "HappyPath")) << none.err;
  auto unknown = Run({"flow", "run", def, "--mock", mocks, "--mock-case", "Nope"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(Contains(unknown.err, "Nope") || Contains(unknown.err, "HappyPath")) << unknown.err;
}

TEST_F(FlowCliTest, MockThrowIsRetriedThenSucceeds) {
  std::string def = Write("scoring.json", R"j({"StartAt": "Task1", "States": {
    "Task1": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "score", "Payload.$": "$"},
              "ResultSelector": {"score.$": "$.Payload.score"},
              "Retry": [{"ErrorEquals": ["Lambda.TooManyRequestsException"],
                         "IntervalSeconds": 1, "MaxAttempts": 2}],
              "End": true}}})j");
  std::string mocks = Write("MockConfigFile.json", kSfnLocalMocks);
  auto r = Run(
      {"flow", "run", def, "--mock", mocks, "--mock-case", "Flaky", "--json", "--name", "flaky"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.json()["output"], Json({{"score", 0.9}})) << r.out;
  auto types = Types(History("flaky"));
  EXPECT_EQ(CountOf(types, "TaskScheduled"), 2);
  EXPECT_EQ(CountOf(types, "TaskFailed"), 1);
  EXPECT_EQ(CountOf(types, "TaskSucceeded"), 1);
}

TEST_F(FlowCliTest, MalformedMockFileIsAnErrorNamingTheFile) {
  std::string def = Write("scoring.json", kTaskMachine);
  std::string notjson = Write("broken-mocks.json", "{\"States\": ");
  auto r = Run({"flow", "run", def, "--mock", notjson});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "broken-mocks.json")) << r.err;

  std::string shape = Write("shape-mocks.json", R"({"States": {"Task1": {"Retrun": 1}}})");
  auto s = Run({"flow", "run", def, "--mock", shape});
  EXPECT_EQ(s.exit_code, 2) << s.err;
  EXPECT_TRUE(Contains(s.err, "shape-mocks.json")) << s.err;
  EXPECT_TRUE(Contains(s.err, "/States/Task1")) << s.err;

  auto missing = Run({"flow", "run", def, "--mock", dir_.path() + "/no-mocks.json"});
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_TRUE(Contains(missing.err, "no-mocks.json")) << missing.err;

  // A run refused before it started leaves no execution behind.
  auto l = Run({"flow", "list", "--json"});
  EXPECT_TRUE(l.json().empty()) << l.out;
}

// ---- 4. local commands ----

TEST_F(FlowCliTest, LambdaMappedToALocalCommand) {
  AppendConfig(R"([flow.lambda.myfn]
command = ["sh", "-c", "read -r line; printf '{\"got\": %s, \"ok\": true}' \"$line\""])");
  std::string def = Write("lambda.json", R"j({"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "myfn", "Payload.$": "$"}, "End": true}}})j");
  std::string in = Write("in.json", R"({"customer": 7})");
  auto r = Run({"flow", "run", def, "--input", in, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Json out = r.json()["output"];
  EXPECT_EQ(out["StatusCode"], 200) << r.out;
  EXPECT_EQ(out["Payload"], Json({{"got", {{"customer", 7}}}, {"ok", true}})) << r.out;

  // A plain Lambda ARN resource maps to the same command and returns its output as is.
  std::string arn = Write("arn.json", R"j({"StartAt": "Call", "States": {
    "Call": {"Type": "Task",
             "Resource": "arn:aws:lambda:us-east-1:123456789012:function:myfn",
             "End": true}}})j");
  auto a = Run({"flow", "run", arn, "--input", in, "--json"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_EQ(a.json()["output"], Json({{"got", {{"customer", 7}}}, {"ok", true}})) << a.out;

  // So does a FunctionName given as a qualified ARN.
  std::string qualified = Write("qualified.json", R"j({"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:myfn:PROD",
                            "Payload": {"customer": 8}},
             "OutputPath": "$.Payload", "End": true}}})j");
  auto q = Run({"flow", "run", qualified, "--json"});
  ASSERT_EQ(q.exit_code, 0) << q.out << q.err;
  EXPECT_EQ(q.json()["output"], Json({{"got", {{"customer", 8}}}, {"ok", true}})) << q.out;

  // An unmapped function is a clear Lambda error.
  std::string other = Write("other.json", R"j({"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "unmapped"}, "End": true}}})j");
  auto u = Run({"flow", "run", other, "--json"});
  EXPECT_NE(u.exit_code, 0);
  EXPECT_EQ(u.json()["error"], "Lambda.ResourceNotFoundException") << u.out;
  EXPECT_TRUE(Contains(u.json().value("cause", ""), "unmapped")) << u.out;
}

TEST_F(FlowCliTest, LambdaCommandFailureIsCatchable) {
  AppendConfig(R"([flow.lambda.crash]
command = ["sh", "-c", "echo 'bad things' >&2; exit 3"]

[flow.lambda.typed]
command = ["sh", "-c", "echo '{\"errorType\": \"InvalidCustomer\", \"errorMessage\": \"no\"}'; exit 1"])");
  std::string def = Write("catch.json", R"j({"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName.$": "$.fn"},
             "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failure",
                        "Next": "Handled"}],
             "End": true},
    "Handled": {"Type": "Pass", "End": true}}})j");
  auto r = Run({"flow", "run", def, "--input", "-", "--json"}, std::string(R"({"fn": "crash"})"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Json failure = r.json()["output"]["failure"];
  EXPECT_EQ(failure["Error"], "States.TaskFailed") << r.out;
  EXPECT_TRUE(Contains(failure.value("Cause", ""), "exited with code 3")) << r.out;
  EXPECT_TRUE(Contains(failure.value("Cause", ""), "bad things")) << r.out;

  // The errorType of a JSON error on stdout is the ASL error, and the cause is that JSON (as
  // Lambda reports it). States.TaskFailed catches it too (it matches any error but
  // States.Timeout); uncaught, the run fails with it.
  auto c = Run({"flow", "run", def, "--input", "-", "--json"}, std::string(R"({"fn": "typed"})"));
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  Json typed = c.json()["output"]["failure"];
  EXPECT_EQ(typed["Error"], "InvalidCustomer") << c.out;
  Json cause = Json::parse(typed.value("Cause", ""), nullptr, false);
  EXPECT_EQ(cause["errorMessage"], "no") << c.out;

  std::string uncaught = Write("uncaught.json", R"j({"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "typed"},
             "Catch": [{"ErrorEquals": ["Other"], "Next": "Handled"}], "End": true},
    "Handled": {"Type": "Pass", "End": true}}})j");
  auto t = Run({"flow", "run", uncaught, "--json"});
  EXPECT_NE(t.exit_code, 0);
  EXPECT_EQ(t.json()["status"], "FAILED") << t.out;
  EXPECT_EQ(t.json()["error"], "InvalidCustomer") << t.out;
}

TEST_F(FlowCliTest, LambdaCommandOverTimeoutFailsWithStatesTimeout) {
  std::string pidfile = dir_.path() + "/sleeper.pid";
  AppendConfig("[flow.lambda.slow]\ncommand = [\"sh\", \"-c\", \"echo $$ > " + pidfile +
               "; sleep 30; echo '{}'\"]");
  std::string def = Write("slow.json", R"j({"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "slow"}, "TimeoutSeconds": 1,
             "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}],
             "End": true},
    "TimedOut": {"Type": "Fail", "Error": "Slow", "Cause": "took too long"}}})j");
  auto r = Run({"flow", "run", def, "--json", "--name", "slow"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.json()["error"], "Slow") << r.out;
  auto types = Types(History("slow"));
  EXPECT_EQ(CountOf(types, "TaskTimedOut"), 1) << History("slow").dump(1);
  // The command's process group was stopped, not left behind.
  std::string pid = ReadAll(pidfile);
  ASSERT_FALSE(pid.empty());
  EXPECT_FALSE(fs::exists("/proc/" + pid.substr(0, pid.find('\n')) + "/cmdline"))
      << "the timed-out command is still running";
}

TEST_F(FlowCliTest, CommandThatIgnoresALargePayloadDoesNotKillEngage) {
  // The command exits without reading its stdin; writing the rest of the payload must not
  // kill Engage (SIGPIPE).
  AppendConfig(R"([flow.lambda.ignore]
command = ["sh", "-c", "echo '{\"ok\": true}'"])");
  std::string def = Write("big.json", R"j({"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "ignore", "Payload.$": "$"},
             "OutputPath": "$.Payload", "End": true}}})j");
  std::string in = Write("big-input.json", Json{{"blob", std::string(200000, 'x')}}.dump());
  auto r = Run({"flow", "run", def, "--input", in, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.json()["output"], Json({{"ok", true}})) << r.out;
}

TEST_F(FlowCliTest, EcsRunTaskMappedToALocalCommand) {
  // The command gets the parameters on stdin, the container override's Command as arguments
  // and its Environment in the environment.
  AppendConfig(R"([flow.ecs.train]
command = ["sh", "-c", "read -r p; printf '{\"args\": \"%s\", \"mode\": \"%s\", \"params\": %s}' \"$*\" \"$MODE\" \"$p\"", "train"])");
  std::string def = Write("ecs.json", R"j({"StartAt": "Train", "States": {
    "Train": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
              "Parameters": {"Cluster": "local",
                             "TaskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/train:3",
                             "Overrides": {"ContainerOverrides": [{"Name": "train",
                                "Command": ["--epochs", "2"],
                                "Environment": [{"Name": "MODE", "Value.$": "$.mode"}]}]}},
              "End": true}}})j");
  auto r = Run({"flow", "run", def, "--input", "-", "--json"}, std::string(R"({"mode": "fast"})"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Json out = r.json()["output"];
  EXPECT_EQ(out["LastStatus"], "STOPPED") << r.out;
  EXPECT_EQ(out["Output"]["args"], "--epochs 2") << r.out;
  EXPECT_EQ(out["Output"]["mode"], "fast") << r.out;
  EXPECT_EQ(out["Output"]["params"]["Cluster"], "local") << r.out;

  std::string unmapped = Write("ecs2.json", R"j({"StartAt": "Train", "States": {
    "Train": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
              "Parameters": {"TaskDefinition": "predict:1"}, "End": true}}})j");
  auto u = Run({"flow", "run", unmapped, "--json"});
  EXPECT_NE(u.exit_code, 0);
  EXPECT_EQ(u.json()["error"], "ECS.InvalidParameterException") << u.out;
  EXPECT_TRUE(Contains(u.json().value("cause", ""), "flow.ecs")) << u.out;
}

// ---- 5. Engage steps ----

TEST_F(FlowCliTest, EngageQueryStepReadsTheLake) {
  std::string csv = Write("events.csv",
                          "event_id,customer_id,event_time,event_type\n"
                          "1,10,2024-05-01 10:00:00,purchase\n"
                          "2,10,2024-05-01 11:00:00,session\n"
                          "3,11,2024-05-02 09:00:00,purchase\n");
  auto ing = Run({"ingest", "events", csv, "--json"});
  ASSERT_EQ(ing.exit_code, 0) << ing.err;
  std::string def = Write("query.json", R"j({"StartAt": "Count", "States": {
    "Count": {"Type": "Task", "Resource": "engage:query",
              "Parameters": {"sql": "SELECT count(*) AS n FROM events WHERE event_type = 'purchase'"},
              "ResultSelector": {"n.$": "$.rows[0][0]"}, "End": true}}})j");
  auto r = Run({"flow", "run", def, "--json", "--name", "q"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.json()["output"], Json({{"n", 2}})) << r.out;
  Json h = History("q");
  bool engage_type = false;
  for (const Json& e : h["events"]) {
    if (e["type"] == "TaskScheduled") {
      engage_type = e["taskScheduledEventDetails"]["resourceType"] == "engage";
    }
  }
  EXPECT_TRUE(engage_type) << h.dump(1);

  // The same step as "arn:aws:states:::engage:query", and as a Lambda function of that name
  // when no command is mapped.
  std::string forms = Write("forms.json", R"j({"StartAt": "Arn", "States": {
    "Arn": {"Type": "Task", "Resource": "arn:aws:states:::engage:query",
            "Parameters": {"sql": "SELECT count(*) FROM events"},
            "ResultSelector": {"n.$": "$.rows[0][0]"}, "ResultPath": "$.arn", "Next": "Lambda"},
    "Lambda": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "query",
                              "Payload": {"sql": "SELECT count(DISTINCT customer_id) FROM events"}},
               "ResultSelector": {"n.$": "$.Payload.rows[0][0]"}, "ResultPath": "$.lambda",
               "End": true}}})j");
  auto f = Run({"flow", "run", forms, "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.out << f.err;
  EXPECT_EQ(f.json()["output"], Json::parse(R"({"arn": {"n": 3}, "lambda": {"n": 2}})")) << f.out;

  // A bad query fails the task with an Engage error naming the problem.
  std::string bad = Write("bad.json", R"j({"StartAt": "Q", "States": {
    "Q": {"Type": "Task", "Resource": "engage:query", "Parameters": {"sql": "SELEC 1"},
          "End": true}}})j");
  auto b = Run({"flow", "run", bad, "--json"});
  EXPECT_NE(b.exit_code, 0);
  EXPECT_EQ(b.json()["status"], "FAILED") << b.out;
  EXPECT_TRUE(Contains(b.json().value("error", ""), "Engage.")) << b.out;
}

// ---- 6. persistence: list, describe, history ----

TEST_F(FlowCliTest, ListAndDescribeShowExecutionsNewestFirst) {
  std::string def = Write("add.json", kPassMachine);
  std::string fail = Write("fail.json", R"j({"StartAt": "Boom", "States": {
    "Boom": {"Type": "Fail", "Error": "E", "Cause": "C"}}})j");
  std::string in = Write("in.json", R"({"n": 1})");
  ASSERT_EQ(Run({"flow", "run", def, "--input", in, "--name", "one"}).exit_code, 0);
  EXPECT_NE(Run({"flow", "run", fail, "--name", "two"}).exit_code, 0);
  ASSERT_EQ(Run({"flow", "run", def, "--input", in, "--name", "three"}).exit_code, 0);

  auto l = Run({"flow", "list", "--json"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  Json list = l.json();
  ASSERT_EQ(list.size(), 3u) << l.out;
  EXPECT_EQ(list[0]["name"], "three");
  EXPECT_EQ(list[1]["name"], "two");
  EXPECT_EQ(list[2]["name"], "one");
  EXPECT_EQ(list[0]["status"], "SUCCEEDED");
  EXPECT_EQ(list[1]["status"], "FAILED");
  EXPECT_EQ(list[1]["error"], "E");
  EXPECT_EQ(list[0]["stateMachine"], "add");
  EXPECT_EQ(list[1]["stateMachine"], "fail");

  auto failed = Run({"flow", "list", "--status", "FAILED", "--json"});
  ASSERT_EQ(failed.json().size(), 1u) << failed.out;
  EXPECT_EQ(failed.json()[0]["name"], "two");
  auto limited = Run({"flow", "list", "--limit", "1", "--json"});
  ASSERT_EQ(limited.json().size(), 1u);
  EXPECT_EQ(limited.json()[0]["name"], "three");

  auto text = Run({"flow", "list"});
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_LT(text.out.find("three"), text.out.find("one")) << text.out;

  // describe, by name and by id.
  std::string id = list[0]["executionId"].get<std::string>();
  Json d = Describe(id);
  EXPECT_EQ(d["name"], "three");
  EXPECT_EQ(d["status"], "SUCCEEDED");
  EXPECT_EQ(d["input"], Json({{"n", 1}}));
  EXPECT_EQ(d["output"], Json({{"sum", 2}}));
  EXPECT_TRUE(d.contains("startDate") && d.contains("stopDate")) << d.dump();
  EXPECT_EQ(d["redriveCount"], 0);
  Json d2 = Describe("two");
  EXPECT_EQ(d2["status"], "FAILED");
  EXPECT_EQ(d2["error"], "E");
  EXPECT_EQ(d2["cause"], "C");
  auto dt = Run({"flow", "describe", "two"});
  ASSERT_EQ(dt.exit_code, 0);
  EXPECT_TRUE(Contains(dt.out, "FAILED")) << dt.out;
  EXPECT_TRUE(Contains(dt.out, "cause:")) << dt.out;
}

TEST_F(FlowCliTest, HistoryHasAwsEventTypesInOrder) {
  std::string def = Write("add.json", kPassMachine);
  ASSERT_EQ(
      Run({"flow", "run", def, "--name", "p", "--input", "-"}, std::string(R"({"n":1})")).exit_code,
      0);
  Json h = History("p");
  std::vector<std::string> want = {"ExecutionStarted", "PassStateEntered", "PassStateExited",
                                   "PassStateEntered", "PassStateExited",  "ExecutionSucceeded"};
  EXPECT_EQ(Types(h), want) << h.dump(1);
  int64_t expect_id = 1;
  for (const Json& e : h["events"]) {
    EXPECT_EQ(e["id"], expect_id) << e.dump();
    EXPECT_EQ(e["previousEventId"], expect_id - 1) << e.dump();
    EXPECT_TRUE(e.contains("timestamp")) << e.dump();
    ++expect_id;
  }
  EXPECT_EQ(h["events"][1]["stateEnteredEventDetails"]["name"], "First") << h.dump(1);
  EXPECT_EQ(h["events"][4]["stateExitedEventDetails"]["name"], "Second") << h.dump(1);

  auto text = Run({"flow", "history", "p"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Contains(text.out, "PassStateEntered")) << text.out;
}

TEST_F(FlowCliTest, HistoryOfTasksAndMaps) {
  AppendConfig(R"t([flow.lambda.double]
command = ["sh", "-c", "read -r n; echo $((n * 2))"])t");
  std::string def = Write("map.json", R"j({"StartAt": "Each", "States": {
    "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1,
             "ItemProcessor": {"StartAt": "Double", "States": {
               "Double": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                          "Parameters": {"FunctionName": "double", "Payload.$": "$"},
                          "OutputPath": "$.Payload", "End": true}}},
             "End": true}}})j");
  auto r = Run({"flow", "run", def, "--name", "m", "--json", "--input", "-"},
               std::string(R"({"items": [1, 2, 3]})"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.json()["output"], Json({2, 4, 6})) << r.out;
  Json h = History("m");
  auto types = Types(h);
  EXPECT_EQ(types.front(), "ExecutionStarted");
  EXPECT_EQ(types.back(), "ExecutionSucceeded");
  int entered = IndexOf(types, "MapStateEntered");
  int started = IndexOf(types, "MapStateStarted");
  int it0 = IndexOf(types, "MapIterationStarted");
  int scheduled = IndexOf(types, "TaskScheduled");
  int tstarted = IndexOf(types, "TaskStarted");
  int tsucceeded = IndexOf(types, "TaskSucceeded");
  int itdone = IndexOf(types, "MapIterationSucceeded");
  int mapdone = IndexOf(types, "MapStateSucceeded");
  int exited = IndexOf(types, "MapStateExited");
  EXPECT_TRUE(entered > 0 && entered < started && started < it0 && it0 < scheduled &&
              scheduled < tstarted && tstarted < tsucceeded && tsucceeded < itdone &&
              itdone < mapdone && mapdone < exited)
      << h.dump(1);
  EXPECT_EQ(CountOf(types, "MapIterationStarted"), 3);
  EXPECT_EQ(CountOf(types, "MapIterationSucceeded"), 3);
  EXPECT_EQ(CountOf(types, "TaskScheduled"), 3);
  EXPECT_EQ(CountOf(types, "TaskSucceeded"), 3);
  // Ids are 1..n and every previousEventId points at an earlier event.
  int64_t expect_id = 1;
  for (const Json& e : h["events"]) {
    EXPECT_EQ(e["id"], expect_id++);
    EXPECT_LT(e["previousEventId"].get<int64_t>(), e["id"].get<int64_t>());
  }
}

TEST_F(FlowCliTest, UnknownExecutionIsNotFound) {
  for (const char* cmd : {"describe", "history", "redrive"}) {
    auto r = Run({"flow", cmd, "no-such-execution"});
    EXPECT_EQ(r.exit_code, 3) << cmd << ": " << r.err;
    EXPECT_TRUE(Contains(r.err, "no-such-execution")) << cmd << ": " << r.err;
  }
}

// ---- 7. redrive ----

TEST_F(FlowCliTest, RedriveResumesFromTheFailedState) {
  std::string marker = dir_.path() + "/fixed";
  std::string prep = dir_.path() + "/prep-count";
  std::string work = dir_.path() + "/work-count";
  AppendConfig("[flow.lambda.prep]\ncommand = [\"sh\", \"-c\", \"echo x >> " + prep +
               "; echo '{\\\"prepared\\\": true}'\"]\n" +
               "[flow.lambda.work]\ncommand = [\"sh\", \"-c\", \"echo x >> " + work + "; if [ -f " +
               marker + " ]; then echo '{\\\"done\\\": 1}'; else exit 1; fi\"]");
  std::string def = Write("redrive.json", R"j({"StartAt": "Prep", "States": {
    "Prep": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "prep"}, "ResultSelector": {"p.$": "$.Payload"},
             "ResultPath": "$.prep", "Next": "Work"},
    "Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "work"}, "ResultSelector": {"w.$": "$.Payload"},
             "ResultPath": "$.work", "End": true}}})j");
  auto r = Run({"flow", "run", def, "--name", "rd", "--json", "--input", "-"},
               std::string(R"({"k": "v"})"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.json()["status"], "FAILED") << r.out;
  EXPECT_EQ(Lines(prep), 1);
  EXPECT_EQ(Lines(work), 1);
  size_t events_before = History("rd")["events"].size();

  Write("fixed", "");
  auto rd = Run({"flow", "redrive", "rd", "--json"});
  ASSERT_EQ(rd.exit_code, 0) << rd.out << rd.err;
  EXPECT_EQ(rd.json()["status"], "SUCCEEDED") << rd.out;
  EXPECT_EQ(
      rd.json()["output"],
      Json::parse(R"({"k": "v", "prep": {"p": {"prepared": true}}, "work": {"w": {"done": 1}}})"))
      << rd.out;
  EXPECT_EQ(Lines(prep), 1) << "Prep ran again on redrive";
  EXPECT_EQ(Lines(work), 2);

  Json d = Describe("rd");
  EXPECT_EQ(d["status"], "SUCCEEDED");
  EXPECT_EQ(d["redriveCount"], 1);
  EXPECT_FALSE(d.contains("error")) << d.dump();
  auto dt = Run({"flow", "describe", "rd"});
  EXPECT_TRUE(Contains(dt.out, "redrives:")) << dt.out;

  Json h = History("rd");
  auto types = Types(h);
  EXPECT_GT(types.size(), events_before);
  int redriven = IndexOf(types, "ExecutionRedriven");
  ASSERT_EQ(redriven, static_cast<int>(events_before)) << h.dump(1);
  EXPECT_EQ(types.back(), "ExecutionSucceeded");
  // After the redrive only Work is entered.
  for (size_t i = redriven; i < types.size(); ++i) {
    if (types[i] == "TaskStateEntered") {
      EXPECT_EQ(h["events"][i]["stateEnteredEventDetails"]["name"], "Work") << h.dump(1);
    }
  }
  int64_t expect_id = 1;
  for (const Json& e : h["events"]) EXPECT_EQ(e["id"], expect_id++);

  // A succeeded execution cannot be redriven.
  auto again = Run({"flow", "redrive", "rd"});
  EXPECT_EQ(again.exit_code, 7) << again.err;
  EXPECT_TRUE(Contains(again.err, "SUCCEEDED")) << again.err;
  EXPECT_EQ(Lines(work), 2);
}

TEST_F(FlowCliTest, RedriveMockCaseNeedsMocks) {
  std::string def = Write("fail.json", R"j({"StartAt": "Boom", "States": {
    "Boom": {"Type": "Fail", "Error": "E"}}})j");
  EXPECT_NE(Run({"flow", "run", def, "--name", "f"}).exit_code, 0);
  auto r = Run({"flow", "redrive", "f", "--mock-case", "X"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(Contains(r.err, "--mock")) << r.err;
  EXPECT_EQ(Describe("f")["redriveCount"], 0);
  // On run, --mock-case without --mock is a usage error.
  EXPECT_EQ(Run({"flow", "run", def, "--mock-case", "X"}).exit_code, 2);
}

TEST_F(FlowCliTest, RedriveOfAMockedExecutionContinuesTheInvocationCount) {
  std::string def = Write("scoring.json", kTaskMachine);
  std::string mocks = Write("mocks.json", R"j({"States": {"Task1": [
    {"Throw": {"Error": "Lambda.ServiceException", "Cause": "first call fails"}},
    {"Return": {"Payload": {"score": 1}}}]}})j");
  auto r = Run({"flow", "run", def, "--mock", mocks, "--name", "mk", "--json"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.json()["error"], "Lambda.ServiceException") << r.out;
  // The redrive uses the execution's mocks and the second answer.
  auto rd = Run({"flow", "redrive", "mk", "--json"});
  ASSERT_EQ(rd.exit_code, 0) << rd.out << rd.err;
  EXPECT_EQ(rd.json()["output"], Json({{"score", 1}})) << rd.out;
  EXPECT_EQ(Describe("mk")["redriveCount"], 1);
}

// ---- 8. a killed run ----

// Starts `engage flow run <def> --name <name>` in the background; returns its pid.
pid_t StartInBackground(const std::string& home, const std::string& def, const std::string& name,
                        const std::string& out) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(ENGAGE_BINARY, ENGAGE_BINARY, "--home", home.c_str(), "flow", "run", def.c_str(),
            "--name", name.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

TEST_F(FlowCliTest, FlowStopFromAnotherProcessAbortsTheRunWithItsHistory) {
  std::string def = Write("long.json", R"j({"StartAt": "Pause", "States": {
    "Pause": {"Type": "Wait", "Seconds": 3600, "End": true}}})j");
  std::string out = dir_.path() + "/bg.out";
  pid_t pid = StartInBackground(home_, def, "stoppable", out);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(ReachesWaitState("stoppable")) << ReadAll(out);
  auto stop = Run({"flow", "stop", "stoppable", "--json"});
  EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  EXPECT_EQ(stop.json()["status"], "ABORTED") << stop.out;
  int status = 0;
  ::waitpid(pid, &status, 0);
  // The run itself ends with exit 1 (ABORTED), not killed.
  ASSERT_TRUE(WIFEXITED(status)) << ReadAll(out);
  EXPECT_EQ(WEXITSTATUS(status), 1) << ReadAll(out);
  EXPECT_TRUE(Contains(ReadAll(out), "ABORTED")) << ReadAll(out);
  auto types = Types(History("stoppable"));
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.back(), "ExecutionAborted");
  // Stopping it again: not running (exit 7); an unknown execution: exit 3.
  auto again = Run({"flow", "stop", "stoppable"});
  EXPECT_EQ(again.exit_code, 7) << again.err;
  EXPECT_TRUE(Contains(again.err, "not running")) << again.err;
  EXPECT_EQ(Run({"flow", "stop", "nope"}).exit_code, 3);
}

TEST_F(FlowCliTest, CtrlCStopsAForegroundRunCleanly) {
  std::string def = Write("long.json", R"j({"StartAt": "Pause", "States": {
    "Pause": {"Type": "Wait", "Seconds": 3600, "End": true}}})j");
  std::string out = dir_.path() + "/bg.out";
  pid_t pid = StartInBackground(home_, def, "interrupted-by-user", out);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(ReachesWaitState("interrupted-by-user")) << ReadAll(out);
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by the signal instead of stopping: " << ReadAll(out);
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(Describe("interrupted-by-user")["status"], "ABORTED");
}

TEST_F(FlowCliTest, KilledRunIsMarkedInterruptedAndCanBeRedriven) {
  std::string counter = dir_.path() + "/before-count";
  AppendConfig("[flow.lambda.before]\ncommand = [\"sh\", \"-c\", \"echo x >> " + counter +
               "; echo '{}'\"]");
  // Waits 30 s on the first run and not at all once redriven.
  std::string def = Write("pause.json", R"j({"StartAt": "Before", "States": {
    "Before": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "before"}, "ResultPath": null, "Next": "Pause"},
    "Pause": {"Type": "Wait", "QueryLanguage": "JSONata",
              "Seconds": "{% $states.context.Execution.RedriveCount > 0 ? 0 : 30 %}",
              "Next": "After"},
    "After": {"Type": "Pass", "Result": "done", "ResultPath": "$.after", "End": true}}})j");
  std::string out = dir_.path() + "/bg.out";
  pid_t pid = StartInBackground(home_, def, "killed", out);
  ASSERT_GT(pid, 0);
  // Wait (up to a generous bound) until the Wait state is in the durable history.
  bool waiting = false;
  for (int i = 0; i < 400 && !waiting; ++i) {
    auto h = Run({"flow", "history", "killed", "--json"});
    if (h.exit_code == 0) waiting = CountOf(Types(h.json()), "WaitStateEntered") == 1;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      FAIL() << "the run ended before it was killed: " << ReadAll(out);
    }
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(waiting) << "WaitStateEntered never reached the history";

  auto l = Run({"flow", "list", "--json"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  ASSERT_EQ(l.json().size(), 1u) << l.out;
  EXPECT_EQ(l.json()[0]["status"], "FAILED") << l.out;
  EXPECT_EQ(l.json()[0]["error"], "Engage.ExecutionInterrupted") << l.out;
  EXPECT_TRUE(Contains(l.err, "interrupted")) << l.err;
  Json d = Describe("killed");
  EXPECT_EQ(d["status"], "FAILED");
  EXPECT_EQ(d["error"], "Engage.ExecutionInterrupted");
  EXPECT_TRUE(Contains(d.value("cause", ""), "redrive")) << d.dump();

  Json h = History("killed");
  auto types = Types(h);
  std::vector<std::string> want = {"ExecutionStarted", "TaskStateEntered", "TaskScheduled",
                                   "TaskStarted",      "TaskSucceeded",    "TaskStateExited",
                                   "WaitStateEntered", "ExecutionFailed"};
  EXPECT_EQ(types, want) << h.dump(1);
  EXPECT_EQ(Lines(counter), 1);

  auto rd = Run({"flow", "redrive", "killed", "--json"});
  ASSERT_EQ(rd.exit_code, 0) << rd.out << rd.err;
  EXPECT_EQ(rd.json()["status"], "SUCCEEDED") << rd.out;
  EXPECT_EQ(rd.json()["output"], Json({{"after", "done"}})) << rd.out;
  EXPECT_EQ(Lines(counter), 1) << "the state before the interrupted one ran again";
  Json d2 = Describe("killed");
  EXPECT_EQ(d2["status"], "SUCCEEDED");
  EXPECT_EQ(d2["redriveCount"], 1);
  auto after = Types(History("killed"));
  EXPECT_EQ(after.back(), "ExecutionSucceeded");
  EXPECT_EQ(CountOf(after, "TaskStateEntered"), 1);
  EXPECT_EQ(CountOf(after, "WaitStateEntered"), 2);
}

TEST_F(FlowCliTest, SigtermStopsARunAsAbortedAndItCanBeRedriven) {
  std::string def = Write("pause.json", R"j({"StartAt": "Pause", "States": {
    "Pause": {"Type": "Wait", "QueryLanguage": "JSONata",
              "Seconds": "{% $states.context.Execution.RedriveCount > 0 ? 0 : 30 %}",
              "Next": "After"},
    "After": {"Type": "Pass", "End": true}}})j");
  std::string out = dir_.path() + "/bg.out";
  pid_t pid = StartInBackground(home_, def, "stopped", out);
  ASSERT_GT(pid, 0);
  bool waiting = false;
  for (int i = 0; i < 400 && !waiting; ++i) {
    auto h = Run({"flow", "history", "stopped", "--json"});
    if (h.exit_code == 0) waiting = CountOf(Types(h.json()), "WaitStateEntered") == 1;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(waiting) << ReadAll(out);
  ASSERT_TRUE(WIFEXITED(status)) << "engage died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 1) << ReadAll(out);
  EXPECT_TRUE(Contains(ReadAll(out), "ABORTED")) << ReadAll(out);
  Json d = Describe("stopped");
  EXPECT_EQ(d["status"], "ABORTED") << d.dump();
  auto types = Types(History("stopped"));
  EXPECT_EQ(types.back(), "ExecutionAborted");
  EXPECT_EQ(CountOf(types, "PassStateEntered"), 0) << "the state after the Wait ran";

  auto rd = Run({"flow", "redrive", "stopped", "--json"});
  ASSERT_EQ(rd.exit_code, 0) << rd.out << rd.err;
  EXPECT_EQ(rd.json()["status"], "SUCCEEDED") << rd.out;
  EXPECT_EQ(CountOf(Types(History("stopped")), "PassStateEntered"), 1);
}

// ---- 9. graph ----

TEST_F(FlowCliTest, GraphDrawsEveryState) {
  std::string def = Write("graph.json", R"j({"StartAt": "Start", "States": {
    "Start": {"Type": "Pass", "Next": "Decide"},
    "Decide": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1,
                                              "Next": "Fan"}], "Default": "Stop"},
    "Fan": {"Type": "Parallel", "Branches": [
      {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": true}}},
      {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "End": true}}}], "End": true},
    "Stop": {"Type": "Fail", "Error": "X"}}})j");
  for (const char* format : {"mermaid", "dot"}) {
    auto r = Run({"flow", "graph", def, "--format", format});
    ASSERT_EQ(r.exit_code, 0) << format << ": " << r.err;
    for (const char* state : {"Start", "Decide", "Fan", "Stop", "Left", "Right"}) {
      EXPECT_TRUE(Contains(r.out, state)) << format << " lacks " << state << ":\n" << r.out;
    }
  }
  EXPECT_TRUE(Contains(Run({"flow", "graph", def, "--format", "mermaid"}).out, "flowchart") ||
              Contains(Run({"flow", "graph", def, "--format", "mermaid"}).out, "graph"));
  EXPECT_TRUE(Contains(Run({"flow", "graph", def, "--format", "dot"}).out, "digraph"));
  EXPECT_EQ(Run({"flow", "graph", def}).exit_code, 0);  // mermaid by default
}

TEST_F(FlowCliTest, GraphRejectsAnUnknownFormat) {
  std::string def = Write("graph.json", kPassMachine);
  auto r = Run({"flow", "graph", def, "--format", "svg"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "svg") || Contains(r.err, "format")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

// ---- 10. conformance corpora ----

TEST_F(FlowCliTest, AslConformanceCorpusPasses) {
  std::string dir = ConformanceDir();
  if (dir.empty() || !fs::exists(dir + "/asl")) GTEST_SKIP() << "ASL conformance corpus not found";
  auto r = Run({"flow", "conformance", dir + "/asl", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.out.substr(0, 2000);
  EXPECT_GT(j["overall"]["total"].get<int64_t>(), 0);
  EXPECT_GE(j["overall"]["rate"].get<double>(), 0.98) << j["overall"].dump();
}

TEST_F(FlowCliTest, JsonataConformanceCorpusPasses) {
  std::string dir = ConformanceDir();
  std::string file = dir + "/jsonata/cases.jsonl";
  if (dir.empty() || !fs::exists(file)) GTEST_SKIP() << "JSONata conformance corpus not found";
  auto r = Run({"flow", "jsonata-conformance", file, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.out.substr(0, 2000);
  EXPECT_GT(j["overall"]["total"].get<int64_t>(), 0);
  EXPECT_GE(j["overall"]["rate"].get<double>(), 0.95) << j["overall"].dump();
}

TEST_F(FlowCliTest, ConformanceOfAMissingCorpusIsAnError) {
  auto r = Run({"flow", "conformance", dir_.path() + "/no-corpus", "--json"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "no-corpus")) << r.err;
  auto j = Run({"flow", "jsonata-conformance", dir_.path() + "/no-cases.jsonl"});
  EXPECT_NE(j.exit_code, 0);
  EXPECT_TRUE(Contains(j.err, "no-cases.jsonl")) << j.err;
}

// ---- 11. help ----

TEST_F(FlowCliTest, HelpMentionsSubcommandsAndOptions) {
  auto f = Run({"flow", "--help"});
  EXPECT_EQ(f.exit_code, 0);
  for (const char* sub : {"validate", "run", "list", "describe", "history", "redrive", "graph",
                          "conformance", "jsonata-conformance"}) {
    EXPECT_TRUE(Contains(f.out, sub)) << sub << " not in:\n" << f.out;
  }
  auto r = Run({"flow", "run", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt : {"--input", "--name", "--json", "--mock", "--mock-case"}) {
    EXPECT_TRUE(Contains(r.out, opt)) << opt << " not in:\n" << r.out;
  }
  for (const char* sub : {"validate", "list", "describe", "history", "redrive", "graph"}) {
    auto h = Run({"flow", sub, "--help"});
    EXPECT_EQ(h.exit_code, 0) << sub;
    EXPECT_TRUE(Contains(h.out, "Usage")) << sub;
  }
  EXPECT_TRUE(Contains(Run({"--help"}).out, "flow"));
  EXPECT_EQ(Run({"flow"}).exit_code, 2);  // a subcommand is required
}

// The example pipeline shipped in examples/flows runs on a lake with events in it.
TEST_F(FlowCliTest, ExampleEngagementReportRuns) {
  std::string csv = Write("events.csv",
                          "event_id,customer_id,event_time,event_type,amount\n"
                          "1,10,2024-05-01 10:00:00,purchase,12.5\n"
                          "2,10,2024-05-20 11:00:00,session,\n"
                          "3,11,2024-05-21 09:00:00,purchase,7.5\n"
                          "4,12,2024-03-01 09:00:00,session,\n");
  auto ing = Run({"ingest", "events", csv, "--json"});
  ASSERT_EQ(ing.exit_code, 0) << ing.err;
  std::string def = std::string(ENGAGE_SOURCE_DIR) + "/examples/flows/engagement_report.asl.json";
  auto r = Run({"flow", "run", def, "--json", "--name", "report"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Json out = r.json()["output"];
  EXPECT_EQ(out["window_end"], "2024-05-21") << out;
  EXPECT_EQ(out["top_revenue_type"], "purchase") << out;
  // Customer 10 was last seen 2024-05-20 and 11 on 05-21 (both active); 12 on 03-01 (slipping).
  EXPECT_EQ(out["slipping_customers"], 1) << out;
  ASSERT_EQ(out["by_type"].size(), 2u) << out;
  EXPECT_EQ(out["by_type"][0]["event_type"], "purchase");
  EXPECT_EQ(out["by_type"][0]["revenue"], 20);  // both purchases are within the 30 days
  EXPECT_EQ(out["by_type"][0]["customers"], 2);
}

TEST_F(FlowCliTest, ExpressRunHasAnExpressArnAndCannotBeRedriven) {
  std::string def = Write("express.json", R"j({"StartAt": "Q", "States": {
    "Q": {"Type": "Pass", "Parameters": {"id.$": "$$.Execution.Id"}, "Next": "F"},
    "F": {"Type": "Fail", "Error": "Boom"}}})j");
  auto r = Run({"flow", "run", def, "--type", "EXPRESS", "--name", "e1", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.json()["status"], "FAILED") << r.out;
  Json d = Describe("e1");
  EXPECT_EQ(d["type"], "EXPRESS") << d.dump();
  auto h = History("e1");
  bool express_arn = false;
  ASSERT_TRUE(h.contains("events")) << h.dump();
  for (const Json& e : h["events"]) {
    if (e.value("type", "") != "PassStateExited") continue;
    std::string out = e["stateExitedEventDetails"]["output"].get<std::string>();
    express_arn = Contains(out, ":express:express:e1:");
  }
  EXPECT_TRUE(express_arn) << h.dump();
  auto rd = Run({"flow", "redrive", "e1"});
  EXPECT_EQ(rd.exit_code, 7) << rd.out << rd.err;
  EXPECT_TRUE(Contains(rd.err, "EXPRESS")) << rd.err;

  std::string cb = Write("callback.json", R"j({"StartAt": "T", "States": {
    "T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
          "End": true}}})j");
  auto refused = Run({"flow", "run", cb, "--type", "EXPRESS"});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_TRUE(Contains(refused.err, ".waitForTaskToken")) << refused.err;
  EXPECT_NE(Run({"flow", "run", def, "--type", "EXPRESSO"}).exit_code, 0);
}

}  // namespace
}  // namespace engage::testing
