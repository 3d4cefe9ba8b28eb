// The flow API reports failures as results and Status, never as exceptions: code the engine
// calls (a TaskRunner, a registered step, an EventSink) may throw, and so may a library call on
// data the definition could not check; each becomes a failure of the execution, the task or the
// call, including on Map and Parallel worker threads.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "engage/core/fs.h"
#include "engage/flow/conformance.h"
#include "engage/flow/engine.h"
#include "engage/flow/tasks.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<const StateMachine> Parse(const std::string& text) {
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(Json::parse(text), &problems);
  EXPECT_NE(sm, nullptr) << (problems.empty() ? "" : problems[0].ToString());
  return sm;
}

class ThrowingRunner : public TaskRunner {
 public:
  std::variant<Json, TaskError> Run(const TaskRequest& request) override {
    if (request.resource == "ok") return Json{{"ok", true}};
    throw std::runtime_error("runner exploded");
  }
};

class ThrowingSink : public EventSink {
 public:
  Status Append(const Event& e) override {
    if (e.type == "PassStateEntered") throw std::runtime_error("disk on fire");
    return Status::Ok();
  }
};

EngineOptions Options(FakeClock& clock) {
  EngineOptions o;
  o.clock = &clock;
  o.sleep = [&clock](int64_t us) { clock.AdvanceMicros(us); };
  return o;
}

TEST(NoThrowTest, ThrowingTaskRunnerFailsTheTaskCatchably) {
  auto sm = Parse(R"j({"StartAt":"T","States":{
    "T":{"Type":"Task","Resource":"boom","Catch":[{"ErrorEquals":["States.TaskFailed"],
         "Next":"Caught"}],"End":true},
    "Caught":{"Type":"Pass","End":true}}})j");
  FakeClock clock(1700000000LL * 1000000);
  ThrowingRunner runner;
  EngineOptions o = Options(clock);
  o.tasks = &runner;
  Engine engine(o);
  ExecutionResult r = engine.Run(*sm, Json::object(), "t");
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output["Error"], "States.TaskFailed");
  EXPECT_NE(r.output["Cause"].get<std::string>().find("runner exploded"), std::string::npos);
}

TEST(NoThrowTest, ThrowOnAParallelWorkerThreadFailsTheExecution) {
  // Branches that run Tasks get threads of their own when map_threads > 1: the exception
  // thrown on one must not reach std::terminate.
  auto sm = Parse(R"j({"StartAt":"P","States":{"P":{"Type":"Parallel","End":true,"Branches":[
    {"StartAt":"A","States":{"A":{"Type":"Task","Resource":"ok","End":true}}},
    {"StartAt":"B","States":{"B":{"Type":"Task","Resource":"boom","End":true}}}]}}})j");
  FakeClock clock(1700000000LL * 1000000);
  ThrowingRunner runner;
  EngineOptions o = Options(clock);
  o.tasks = &runner;
  o.map_threads = 4;
  Engine engine(o);
  ExecutionResult r = engine.Run(*sm, Json::object(), "t");
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.TaskFailed"));
}

TEST(NoThrowTest, ThrowOnAMapWorkerThreadFailsTheExecution) {
  auto sm = Parse(R"j({"StartAt":"M","States":{"M":{"Type":"Map","End":true,
    "ItemProcessor":{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"boom","End":true}}}
  }}})j");
  FakeClock clock(1700000000LL * 1000000);
  ThrowingRunner runner;
  EngineOptions o = Options(clock);
  o.tasks = &runner;
  o.map_threads = 4;
  Engine engine(o);
  ExecutionResult r = engine.Run(*sm, Json::array({1, 2, 3}), "t");
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.TaskFailed"));
}

TEST(NoThrowTest, ThrowingEventSinkAbortsTheExecution) {
  auto sm = Parse(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}})j");
  FakeClock clock(1700000000LL * 1000000);
  ThrowingSink sink;
  EngineOptions o = Options(clock);
  o.events = &sink;
  Engine engine(o);
  ExecutionResult r = engine.Run(*sm, Json::object(), "t");
  EXPECT_EQ(r.status, ExecutionStatus::kAborted);
  EXPECT_EQ(r.error, std::optional<std::string>("Engage.HistoryFailed"));
  EXPECT_NE(r.cause.value_or("").find("disk on fire"), std::string::npos);
}

TEST(NoThrowTest, ThrowingStepFailsTheTask) {
  TaskRegistry tasks;
  tasks.RegisterStep(
      "explode", [](const Json&) -> Result<Json> { throw std::logic_error("step bug"); }, "");
  TaskRequest req;
  req.state_name = "S";
  req.resource = "engage:explode";
  req.parameters = Json::object();
  auto r = tasks.Run(req);
  ASSERT_TRUE(std::holds_alternative<TaskError>(r));
  EXPECT_EQ(std::get<TaskError>(r).error, "Engage.Internal");
  EXPECT_NE(std::get<TaskError>(r).cause.find("step bug"), std::string::npos);
}

TEST(NoThrowTest, ItemReaderPrefixOfAnotherTypeFailsTheReader) {
  // Parameters are evaluated at run time, so the definition cannot check the Prefix's type.
  testing::TempDir dir;
  ASSERT_OK(PosixFileSystem::Default()->CreateDirs(dir.path() + "/data"));
  auto sm = Parse(R"j({"StartAt":"M","States":{"M":{"Type":"Map","End":true,
    "ItemReader":{"Resource":"arn:aws:states:::s3:listObjectsV2",
                  "Parameters":{"Bucket":"data","Prefix.$":"$.prefix"}},
    "ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"},
      "StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}}}})j");
  FakeClock clock(1700000000LL * 1000000);
  EngineOptions o = Options(clock);
  o.bucket_dir = [&](const std::string&, bool) -> Result<std::string> {
    return dir.path() + "/data";
  };
  Engine engine(o);
  ExecutionResult r = engine.Run(*sm, Json{{"prefix", 5}}, "t");
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.ItemReaderFailed"));
}

TEST(NoThrowTest, MalformedExpectedFileFailsTheConformanceCase) {
  testing::TempDir dir;
  std::string c = dir.path() + "/bad__case";
  fs::create_directories(c);
  std::ofstream(c + "/definition.json") << R"({"StartAt":"A","States":{"A":{"Type":"Fail"}}})";
  std::ofstream(c + "/input.json") << "{}";
  std::ofstream(c + "/expected.json") << R"({"status":"FAILED","error":5})";
  AslCaseResult r = RunAslCase(c);
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.detail.find("\"error\" is not a string"), std::string::npos);
}

}  // namespace
}  // namespace engage::flow
