// Behaviour of the ASL interpreter beyond the recorded AWS corpus: tasks, Retry/Catch, timeouts,
// Map/Parallel failure handling, history events and redrive points.
#include "engage/flow/engine.h"

#include <gtest/gtest.h>

#include "engage/flow/tasks.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

std::shared_ptr<const StateMachine> Parse(const std::string& text) {
  std::vector<Diagnostic> problems;
  Json j = Json::parse(text);
  auto sm = ParseDefinition(j, &problems);
  EXPECT_NE(sm, nullptr) << (problems.empty() ? "" : problems[0].ToString());
  return sm;
}

class RecordingSink : public EventSink {
 public:
  Status Append(const Event& e) override {
    events.push_back(e);
    return Status::Ok();
  }
  Status Checkpoint(const std::string& state, const Json& input, const std::string& input_json,
                    const Json& vars) override {
    EXPECT_EQ(input_json, DumpJson(input));
    checkpoints.push_back({state, input, vars});
    return Status::Ok();
  }
  std::vector<std::string> Types() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.type);
    return out;
  }
  struct Cp {
    std::string state;
    Json input, vars;
  };
  std::vector<Event> events;
  std::vector<Cp> checkpoints;
};

struct Harness {
  explicit Harness(FlowConfig cfg = {}) : tasks(std::move(cfg)) {}
  FakeClock clock{1700000000LL * 1000000};
  TaskRegistry tasks;
  RecordingSink sink;
  int64_t slept_micros = 0;

  ExecutionResult Run(const StateMachine& sm, const Json& input) {
    EngineOptions o;
    o.clock = &clock;
    o.sleep = [this](int64_t us) {
      slept_micros += us;
      clock.AdvanceMicros(us);
    };
    o.tasks = &tasks;
    o.events = &sink;
    Engine engine(o);
    return engine.Run(sm, input, "test");
  }
};

TEST(EngineTest, PassChainSucceedsWithResultPath) {
  auto sm = Parse(R"j({"StartAt":"A","States":{
    "A":{"Type":"Pass","Result":{"v":1},"ResultPath":"$.a","Next":"B"},
    "B":{"Type":"Pass","Parameters":{"sum.$":"States.MathAdd($.a.v, 41)"},"End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(r.output, Json({{"sum", 42}}));
  EXPECT_EQ(h.sink.Types(), (std::vector<std::string>{"ExecutionStarted", "PassStateEntered",
                                                      "PassStateExited", "PassStateEntered",
                                                      "PassStateExited", "ExecutionSucceeded"}));
  for (size_t i = 0; i < h.sink.events.size(); ++i) {
    EXPECT_EQ(h.sink.events[i].id, static_cast<int64_t>(i + 1));
  }
}

TEST(EngineTest, TaskRunsRegisteredStepWithTaskEvents) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task","Resource":"engage:double",
    "Parameters":{"x.$":"$.n"},"End":true}}})j");
  Harness h;
  h.tasks.RegisterStep(
      "double",
      [](const Json& p) -> Result<Json> {
        return Json{{"y", p["x"].get<int>() * 2}};
      },
      "doubles x");
  ExecutionResult r = h.Run(*sm, Json{{"n", 21}});
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.cause.value_or("");
  EXPECT_EQ(r.output, Json({{"y", 42}}));
  EXPECT_EQ(h.sink.Types(),
            (std::vector<std::string>{"ExecutionStarted", "TaskStateEntered", "TaskScheduled",
                                      "TaskStarted", "TaskSucceeded", "TaskStateExited",
                                      "ExecutionSucceeded"}));
}

TEST(EngineTest, RetryBacksOffThenSucceeds) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task","Resource":"engage:flaky",
    "Retry":[{"ErrorEquals":["Engage.Unavailable"],"IntervalSeconds":2,"BackoffRate":3,
              "MaxAttempts":3}],"End":true}}})j");
  Harness h;
  int calls = 0;
  h.tasks.RegisterStep(
      "flaky",
      [&](const Json&) -> Result<Json> {
        if (++calls < 3) return UnavailableError("try again");
        return Json("ok");
      },
      "");
  ExecutionResult r = h.Run(*sm, Json::object());
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(h.slept_micros, (2 + 6) * 1000000LL);  // 2 s, then 2*3 s
}

TEST(EngineTest, RetryGivesUpAfterMaxAttemptsAndCatchRoutesErrorOutput) {
  auto sm = Parse(R"j({"StartAt":"T","States":{
    "T":{"Type":"Task","Resource":"engage:bad","Retry":[{"ErrorEquals":["States.ALL"],
         "MaxAttempts":2}],"Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.err",
         "Next":"Handled"}],"End":true},
    "Handled":{"Type":"Pass","End":true}}})j");
  Harness h;
  int calls = 0;
  h.tasks.RegisterStep(
      "bad",
      [&](const Json&) -> Result<Json> {
        ++calls;
        return NotFoundError("model v3 missing");
      },
      "");
  ExecutionResult r = h.Run(*sm, Json{{"k", 1}});
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.output["k"], 1);
  EXPECT_EQ(r.output["err"]["Error"], "Engage.NotFound");
  EXPECT_EQ(r.output["err"]["Cause"], "model v3 missing");
}

TEST(EngineTest, StatesAllDoesNotCatchRuntimeErrors) {
  auto sm = Parse(R"j({"StartAt":"P","States":{
    "P":{"Type":"Parallel","Branches":[{"StartAt":"X","States":{"X":{"Type":"Pass",
         "InputPath":"$.missing","End":true}}}],
         "Catch":[{"ErrorEquals":["States.ALL"],"Next":"C"}],"End":true},
    "C":{"Type":"Pass","End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.Runtime");
}

TEST(EngineTest, UnmockedUnknownResourceFailsTask) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task",
    "Resource":"arn:aws:states:::sqs:sendMessage","End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.TaskFailed");
  EXPECT_NE(r.cause->find("not supported locally"), std::string::npos);
}

TEST(EngineTest, MocksAnswerPerInvocation) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task",
    "Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"score"},
    "Retry":[{"ErrorEquals":["Lambda.TooManyRequestsException"],"IntervalSeconds":1}],
    "End":true}}})j");
  Harness h;
  ASSERT_OK(h.tasks.SetMocks(Json::parse(R"j({"StateMachines":{"m":{"TestCases":{"happy":
      {"T":"Throttled"}}}},"MockedResponses":{"Throttled":{
      "0":{"Throw":{"Error":"Lambda.TooManyRequestsException","Cause":"slow down"}},
      "1":{"Return":{"StatusCode":200,"Payload":{"score":0.9}}}}}})j"),
                             "test", "m", "happy"));
  ExecutionResult r = h.Run(*sm, Json::object());
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.cause.value_or("");
  EXPECT_EQ(r.output["Payload"]["score"], 0.9);
}

TEST(EngineTest, TaskTimeoutFromCommandSurfacesAsStatesTimeout) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task",
    "Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"slow"},
    "TimeoutSeconds":1,"End":true}}})j");
  FlowConfig cfg;
  cfg.lambda["slow"] = FlowCommand{{"sleep", "5"}, 0};
  Harness h(cfg);
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.Timeout");
  bool timed_out_event = false;
  for (const auto& e : h.sink.events) timed_out_event |= e.type == "TaskTimedOut";
  EXPECT_TRUE(timed_out_event);
}

TEST(EngineTest, LambdaCommandGetsPayloadOnStdin) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task",
    "Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"echo",
    "Payload":{"a.$":"$.a"}},"ResultSelector":{"p.$":"$.Payload"},"End":true}}})j");
  FlowConfig cfg;
  cfg.lambda["echo"] = FlowCommand{{"cat"}, 10};
  Harness h(cfg);
  ExecutionResult r = h.Run(*sm, Json{{"a", "x"}});
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.cause.value_or("");
  EXPECT_EQ(r.output, Json({{"p", {{"a", "x"}}}}));
}

TEST(EngineTest, CommandFailureNamesExitCodeAndStderr) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task",
    "Resource":"arn:aws:states:::ecs:runTask.sync","Parameters":{"TaskDefinition":"train:3"},
    "End":true}}})j");
  FlowConfig cfg;
  cfg.ecs["train"] = FlowCommand{{"sh", "-c", "echo out of memory >&2; exit 3"}, 10};
  Harness h(cfg);
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.TaskFailed");
  EXPECT_NE(r.cause->find("exited with code 3"), std::string::npos) << *r.cause;
  EXPECT_NE(r.cause->find("out of memory"), std::string::npos) << *r.cause;
}

TEST(EngineTest, MapFailureFailsStateUnlessTolerated) {
  auto sm = Parse(R"j({"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.xs",
    "ToleratedFailureCount":1,"ItemProcessor":{"StartAt":"C","States":{
      "C":{"Type":"Choice","Choices":[{"Variable":"$","NumericEquals":2,"Next":"F"}],
           "Default":"OK"},
      "F":{"Type":"Fail","Error":"Bad","Cause":"two"},
      "OK":{"Type":"Pass","End":true}}},"End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json{{"xs", {1, 2, 3}}});
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.cause.value_or("");
  EXPECT_EQ(r.output[0], 1);
  EXPECT_EQ(r.output[1]["Error"], "Bad");
  Harness h2;
  ExecutionResult r2 = h2.Run(*sm, Json{{"xs", {2, 2, 3}}});
  EXPECT_EQ(r2.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r2.error, "States.ExceedToleratedFailureThreshold");
}

TEST(EngineTest, WaitUsesInjectedSleep) {
  auto sm = Parse(R"j({"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":30,"End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(h.slept_micros, 30 * 1000000LL);
}

TEST(EngineTest, MachineTimeoutEndsTimedOut) {
  auto sm = Parse(R"j({"StartAt":"W","TimeoutSeconds":5,"States":{
    "W":{"Type":"Wait","Seconds":10,"Next":"P"},"P":{"Type":"Pass","End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut);
  EXPECT_EQ(r.error, "States.Timeout");
  EXPECT_EQ(h.sink.events.back().type, "ExecutionTimedOut");
}

TEST(EngineTest, CancelFlagAbortsExecution) {
  auto sm = Parse(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","Next":"C"},
    "C":{"Type":"Choice","Choices":[{"Variable":"$.stop","IsPresent":true,"Next":"D"}],
         "Default":"A"},"D":{"Type":"Succeed"}}})j");
  ASSERT_NE(sm, nullptr);
  std::atomic<bool> cancel{false};
  FakeClock clock(0);
  EngineOptions o;
  o.clock = &clock;
  o.cancel = &cancel;
  int64_t seen = 0;
  class CancelAfter : public EventSink {
   public:
    CancelAfter(std::atomic<bool>* c, int64_t* n) : c_(c), n_(n) {}
    Status Append(const Event&) override {
      if (++*n_ == 100) c_->store(true);
      return Status::Ok();
    }
    std::atomic<bool>* c_;
    int64_t* n_;
  } sink(&cancel, &seen);
  o.events = &sink;
  Engine engine(o);
  ExecutionResult r = engine.Run(*sm, Json::object(), "loop");
  EXPECT_EQ(r.status, ExecutionStatus::kAborted);
}

TEST(EngineTest, CheckpointsRecordTopLevelStatesForRedrive) {
  auto sm = Parse(R"j({"StartAt":"A","States":{
    "A":{"Type":"Pass","Assign":{"x":1},"Next":"B"},
    "B":{"Type":"Task","Resource":"engage:fail","End":true}}})j");
  Harness h;
  bool fail = true;
  h.tasks.RegisterStep(
      "fail",
      [&](const Json& in) -> Result<Json> {
        if (fail) return UnavailableError("down");
        return in;
      },
      "");
  ExecutionResult r = h.Run(*sm, Json{{"in", 1}});
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.failed_state, "B");
  ASSERT_EQ(h.sink.checkpoints.size(), 2u);
  EXPECT_EQ(h.sink.checkpoints[1].state, "B");
  EXPECT_EQ(h.sink.checkpoints[1].vars, Json({{"x", 1}}));

  // Redrive from B with the recorded input and variables.
  fail = false;
  RedrivePoint p;
  p.state = "B";
  p.input = h.sink.checkpoints[1].input;
  p.variables = h.sink.checkpoints[1].vars;
  p.redrive_count = 1;
  p.next_event_id = h.sink.events.back().id + 1;
  EngineOptions o;
  o.clock = &h.clock;
  o.tasks = &h.tasks;
  RecordingSink sink2;
  o.events = &sink2;
  Engine engine(o);
  ExecutionResult r2 = engine.Redrive(*sm, Json{{"in", 1}}, "test", p);
  ASSERT_EQ(r2.status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(sink2.events.front().type, "ExecutionRedriven");
  EXPECT_EQ(sink2.events.front().id, p.next_event_id);
}

TEST(EngineTest, OversizedOutputFailsWithDataLimitExceeded) {
  auto sm = Parse(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}})j");
  Harness h;
  Json big = Json{{"s", std::string(300000, 'x')}};
  ExecutionResult r = h.Run(*sm, big);
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.DataLimitExceeded");
}

}  // namespace
}  // namespace engage::flow

namespace engage::flow {
namespace {

TEST(EngineTest, ExecutionTimeoutInterruptsAWait) {
  auto sm = Parse(R"j({"TimeoutSeconds":1,"StartAt":"W","States":{
    "W":{"Type":"Wait","Seconds":2,"Next":"Z"},"Z":{"Type":"Succeed"}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut) << r.ToJson();
  EXPECT_LE(h.slept_micros, 1000001);  // stopped at the deadline, not after the full 2 s
  for (const std::string& t : h.sink.Types()) EXPECT_NE(t, "WaitStateExited");
}

TEST(EngineTest, ExecutionTimeoutIsNotCaught) {
  auto sm = Parse(R"j({"TimeoutSeconds":1,"StartAt":"W","States":{
    "W":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Next":"Z",
         "Retry":[{"ErrorEquals":["States.ALL"],"IntervalSeconds":5,"MaxAttempts":3}],
         "Catch":[{"ErrorEquals":["States.ALL"],"Next":"Z"}]},
    "Z":{"Type":"Succeed"}}})j");
  Harness h;
  ASSERT_OK(h.tasks.SetMocks(
      Json::parse(R"({"States":{"W":{"Throw":{"Error":"Boom","Cause":"x"}}}})"), "test", "", ""));
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut) << r.ToJson();
}

TEST(EngineTest, StopDuringAWaitEmitsNoExit) {
  auto sm = Parse(R"j({"StartAt":"W","States":{
    "W":{"Type":"Wait","Seconds":30,"End":true}}})j");
  std::atomic<bool> cancel{false};
  FakeClock clock(1700000000LL * 1000000);
  RecordingSink sink;
  EngineOptions o;
  o.clock = &clock;
  o.sleep = [&](int64_t us) {
    clock.AdvanceMicros(us / 2);
    cancel = true;  // stopped halfway through the wait
  };
  o.events = &sink;
  o.cancel = &cancel;
  Engine engine(o);
  ExecutionResult r = engine.Run(*sm, Json::object(), "stop");
  EXPECT_EQ(r.status, ExecutionStatus::kAborted) << r.ToJson();
  for (const std::string& t : sink.Types()) EXPECT_NE(t, "WaitStateExited");
}

TEST(EngineTest, ParallelBranchesChainToTheStartedEvent) {
  auto sm = Parse(R"j({"StartAt":"P","States":{"P":{"Type":"Parallel","Branches":[
    {"StartAt":"L","States":{"L":{"Type":"Pass","End":true}}},
    {"StartAt":"R","States":{"R":{"Type":"Fail","Error":"RightBroke"}}}],"End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  int64_t started = 0;
  for (const Event& e : h.sink.events) {
    if (e.type == "ParallelStateStarted") started = e.id;
    if (e.type == "PassStateEntered" || e.type == "FailStateEntered") {
      EXPECT_EQ(e.previous_event_id, started) << e.type;
    }
  }
  EXPECT_NE(started, 0);
}

}  // namespace
}  // namespace engage::flow

namespace engage::flow {
namespace {

TEST(EngineTest, SilentCommandMissesItsHeartbeat) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task",
    "Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"slow"},
    "HeartbeatSeconds":1,"TimeoutSeconds":30,"End":true}}})j");
  FlowConfig cfg;
  cfg.lambda["slow"] = FlowCommand{{"sh", "-c", "sleep 20; echo '{}'"}, 0};
  Harness h(cfg);
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "States.HeartbeatTimeout") << r.cause.value_or("");
}

TEST(EngineTest, CommandLearnsItsHeartbeatInterval) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task",
    "Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"fn"},
    "HeartbeatSeconds":7,"End":true}}})j");
  FlowConfig cfg;
  cfg.lambda["fn"] =
      FlowCommand{{"sh", "-c", "printf '{\"every\": %s}' \"$ENGAGE_HEARTBEAT_SECONDS\""}, 0};
  Harness h(cfg);
  ExecutionResult r = h.Run(*sm, Json::object());
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.cause.value_or("");
  EXPECT_EQ(r.output["Payload"], Json::parse(R"({"every":7})"));
}

}  // namespace
}  // namespace engage::flow
