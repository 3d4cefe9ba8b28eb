// EXPRESS executions (`engage flow run --type EXPRESS`): the context object and ARN of an
// Express execution, its five-minute limit, no redrive, and the integration patterns AWS refuses
// in an EXPRESS state machine.
#include <gtest/gtest.h>

#include "engage/flow/definition.h"
#include "engage/flow/engine.h"
#include "engage/flow/store.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

std::shared_ptr<const StateMachine> Parse(const std::string& text) {
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(Json::parse(text), &problems);
  EXPECT_NE(sm, nullptr) << (problems.empty() ? "" : problems[0].ToString());
  return sm;
}

class Events final : public EventSink {
 public:
  Status Append(const Event& e) override {
    events.push_back(e);
    return Status::Ok();
  }
  std::vector<Event> events;
};

EngineOptions Options(FakeClock& clock, bool express) {
  EngineOptions o;
  o.clock = &clock;
  o.sleep = [&clock](int64_t us) { clock.AdvanceMicros(us); };
  o.region = "us-east-1";
  o.account = "123456789012";
  o.state_machine_name = "Orders";
  o.express = express;
  o.execution_id = "0f1e2d3c";
  return o;
}

TEST(ExpressTest, ContextHasTheExpressArnAndNoRedriveCount) {
  auto sm = Parse(R"j({"StartAt":"Q","States":{"Q":{"Type":"Pass","End":true,
    "Parameters":{"execution.$":"$$.Execution"}}}})j");
  ASSERT_NE(sm, nullptr);
  FakeClock clock(1700000000LL * 1000000);
  ExecutionResult express = Engine(Options(clock, true)).Run(*sm, Json::object(), "order-7");
  ASSERT_EQ(express.status, ExecutionStatus::kSucceeded) << express.ToJson();
  const Json& e = express.output["execution"];
  // AWS: arn:<partition>:states:<region>:<account>:express:<machine>:<name>:<id>.
  EXPECT_EQ(e["Id"], "arn:aws:states:us-east-1:123456789012:express:Orders:order-7:0f1e2d3c");
  EXPECT_EQ(e["Name"], "order-7");
  EXPECT_FALSE(e.contains("RedriveCount")) << e.dump();

  ExecutionResult standard = Engine(Options(clock, false)).Run(*sm, Json::object(), "order-7");
  const Json& s = standard.output["execution"];
  EXPECT_EQ(s["Id"], "arn:aws:states:us-east-1:123456789012:execution:Orders:order-7");
  EXPECT_EQ(s["RedriveCount"], 0);
}

TEST(ExpressTest, WithoutAnIdOneIsGenerated) {
  auto sm = Parse(R"j({"StartAt":"Q","States":{"Q":{"Type":"Pass","End":true,
    "Parameters":{"id.$":"$$.Execution.Id"}}}})j");
  ASSERT_NE(sm, nullptr);
  FakeClock clock(1700000000LL * 1000000);
  EngineOptions o = Options(clock, true);
  o.execution_id.clear();
  ExecutionResult r = Engine(o).Run(*sm, Json::object(), "n");
  std::string id = r.output["id"].get<std::string>();
  const std::string prefix = "arn:aws:states:us-east-1:123456789012:express:Orders:n:";
  ASSERT_EQ(id.rfind(prefix, 0), 0u) << id;
  EXPECT_GT(id.size(), prefix.size());
}

TEST(ExpressTest, RunsAtMostFiveMinutes) {
  auto sm = Parse(R"j({"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":600,"End":true}}})j");
  ASSERT_NE(sm, nullptr);
  FakeClock clock(1700000000LL * 1000000);
  Events events;
  EngineOptions o = Options(clock, true);
  o.events = &events;
  ExecutionResult r = Engine(o).Run(*sm, Json::object(), "slow");
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut) << r.ToJson();
  EXPECT_NE(r.cause.value_or("").find("(300 s)"), std::string::npos) << r.ToJson();
  EXPECT_EQ(events.events.back().type, "ExecutionTimedOut");
  // The same machine as STANDARD waits its ten minutes.
  ExecutionResult standard = Engine(Options(clock, false)).Run(*sm, Json::object(), "slow");
  EXPECT_EQ(standard.status, ExecutionStatus::kSucceeded);
}

TEST(ExpressTest, RedriveIsRefused) {
  auto sm = Parse(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}})j");
  ASSERT_NE(sm, nullptr);
  FakeClock clock(1700000000LL * 1000000);
  Events events;
  EngineOptions o = Options(clock, true);
  o.events = &events;
  RedrivePoint point;
  point.state = "A";
  point.input = Json::object();
  point.variables = Json::object();
  ExecutionResult r = Engine(o).Redrive(*sm, Json::object(), "n", point);
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_TRUE(events.events.empty());
}

TEST(ExpressTest, SyncCallbackAndActivityTasksAreProblems) {
  auto sm = Parse(R"j({"StartAt":"Ok","States":{
    "Ok":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Next":"Job"},
    "Job":{"Type":"Task","Resource":"arn:aws:states:::ecs:runTask.sync","Next":"P"},
    "P":{"Type":"Parallel","Next":"M","Branches":[{"StartAt":"Cb","States":{
      "Cb":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "End":true}}}]},
    "M":{"Type":"Map","End":true,"ItemProcessor":{"StartAt":"Act","States":{
      "Act":{"Type":"Task","Resource":"arn:aws:states:us-east-1:123456789012:activity:review",
             "Next":"Sfn"},
      "Sfn":{"Type":"Task","Resource":"arn:aws:states:::states:startExecution.sync:2",
             "End":true}}}}}})j");
  ASSERT_NE(sm, nullptr);
  std::vector<Diagnostic> problems = ExpressProblems(*sm);
  std::vector<std::string> pointers;
  for (const Diagnostic& d : problems) pointers.push_back(d.pointer);
  std::sort(pointers.begin(), pointers.end());
  EXPECT_EQ(pointers, (std::vector<std::string>{
                          "/States/Job/Resource",
                          "/States/M/ItemProcessor/States/Act/Resource",
                          "/States/M/ItemProcessor/States/Sfn/Resource",
                          "/States/P/Branches/0/States/Cb/Resource",
                      }));
  Status s = CheckExpressDefinition(*sm);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(".waitForTaskToken"), std::string::npos) << s.message();
  auto fine = Parse(R"j({"StartAt":"Ok","States":{
    "Ok":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","End":true}}})j");
  EXPECT_OK(CheckExpressDefinition(*fine));
}

TEST(ExpressTest, StoreKeepsTheTypeAndRefusesToRedriveAnExpressExecution) {
  testing::TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  std::string def = R"j({"StartAt":"F","States":{"F":{"Type":"Fail","Error":"E"}}})j";
  auto sm = Parse(def);
  ASSERT_NE(sm, nullptr);
  CreateExecutionRequest req{"x", "sm", def, "", Json::object(), "", "", true};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->express);
  auto sink = (*store)->Sink(rec->id);
  EngineOptions o = Options(clock, true);
  o.events = sink.get();
  ExecutionResult r = Engine(o).Run(*sm, rec->input, rec->name);
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  ASSERT_OK((*store)->Finish(rec->id, r));
  sink.reset();
  auto got = (*store)->Get("x");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->express);
  Json j = got->ToJson();
  EXPECT_EQ(j["type"], "EXPRESS");
  EXPECT_FALSE(j.contains("redriveCount"));
  EXPECT_STATUS_CODE(ExecutionStore::CheckRedrivable(*got), StatusCode::kFailedPrecondition);
  EXPECT_STATUS_CODE((*store)->BeginRedrive(rec->id), StatusCode::kFailedPrecondition);
  // Its history is kept, as CloudWatch Logs would keep an Express execution's events.
  auto history = (*store)->History(rec->id);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->back().type, "ExecutionFailed");
  // A STANDARD execution still is STANDARD.
  auto std_rec = (*store)->Create(CreateExecutionRequest{"y", "sm", def, "", Json::object()});
  ASSERT_TRUE(std_rec.ok());
  EXPECT_EQ((*store)->Get("y")->ToJson()["type"], "STANDARD");
}

}  // namespace
}  // namespace engage::flow
