#include "engage/flow/store.h"

#include <gtest/gtest.h>

#include "engage/flow/tasks.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

std::shared_ptr<const StateMachine> Parse(const std::string& text) {
  std::vector<Diagnostic> problems;
  return ParseDefinition(Json::parse(text), &problems);
}

TEST(ExecutionStoreTest, PersistsExecutionAndHistory) {
  testing::TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::string def = R"j({"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}})j";
  CreateExecutionRequest req{"run-1", "sm", def, "", Json{{"a", 1}}, ""};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  auto sink = (*store)->Sink(rec->id);
  EngineOptions o;
  o.clock = &clock;
  o.events = sink.get();
  Engine engine(o);
  ExecutionResult r = engine.Run(*Parse(def), rec->input, rec->name);
  ASSERT_OK((*store)->Finish(rec->id, r));
  auto got = (*store)->Get("run-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, "SUCCEEDED");
  EXPECT_EQ(*got->output, Json({{"a", 1}}));
  auto history = (*store)->History(rec->id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 4u);
  EXPECT_EQ((*history)[0].type, "ExecutionStarted");
  EXPECT_EQ((*history)[3].type, "ExecutionSucceeded");
}

TEST(ExecutionStoreTest, DuplicateNameIsAlreadyExists) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  CreateExecutionRequest req{"same", "sm", "{}", "", Json::object(), ""};
  ASSERT_TRUE((*store)->Create(req).ok());
  clock.AdvanceMicros(1000000);
  EXPECT_STATUS_CODE((*store)->Create(req), StatusCode::kAlreadyExists);
}

TEST(ExecutionStoreTest, UnknownExecutionIsNotFound) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  EXPECT_STATUS_CODE((*store)->Get("nope"), StatusCode::kNotFound);
}

TEST(ExecutionStoreTest, RedriveResumesFromFailedStateWithVariables) {
  testing::TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  std::string def = R"j({"StartAt":"A","States":{
    "A":{"Type":"Pass","Assign":{"v":7},"Next":"B"},
    "B":{"Type":"Task","Resource":"engage:step","Parameters":{"v.$":"$v"},"End":true}}})j";
  auto sm = Parse(def);
  ASSERT_NE(sm, nullptr);
  CreateExecutionRequest req{"r", "sm", def, "", Json::object(), ""};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok());
  bool fail = true;
  TaskRegistry tasks;
  tasks.RegisterStep(
      "step",
      [&](const Json& p) -> Result<Json> {
        if (fail) return UnavailableError("down");
        return p;
      },
      "");
  auto sink = (*store)->Sink(rec->id);
  EngineOptions o;
  o.clock = &clock;
  o.events = sink.get();
  o.tasks = &tasks;
  ExecutionResult r = Engine(o).Run(*sm, rec->input, rec->name);
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  ASSERT_OK((*store)->Finish(rec->id, r));

  fail = false;
  auto point = (*store)->BeginRedrive(rec->id);
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  EXPECT_EQ(point->state, "B");
  EXPECT_EQ(point->variables, Json({{"v", 7}}));
  auto sink2 = (*store)->Sink(rec->id);
  o.events = sink2.get();
  ExecutionResult r2 = Engine(o).Redrive(*sm, rec->input, rec->name, *point);
  ASSERT_EQ(r2.status, ExecutionStatus::kSucceeded) << r2.cause.value_or("");
  EXPECT_EQ(r2.output, Json({{"v", 7}}));
  ASSERT_OK((*store)->Finish(rec->id, r2));
  auto got = (*store)->Get(rec->id);
  EXPECT_EQ(got->redrive_count, 1);
  auto history = (*store)->History(rec->id);
  ASSERT_TRUE(history.ok());
  bool redriven = false;
  for (size_t i = 0; i < history->size(); ++i) {
    EXPECT_EQ((*history)[i].id, static_cast<int64_t>(i + 1));  // ids continue without gaps
    redriven |= (*history)[i].type == "ExecutionRedriven";
  }
  EXPECT_TRUE(redriven);
  // A succeeded execution cannot be redriven.
  EXPECT_STATUS_CODE((*store)->BeginRedrive(rec->id), StatusCode::kFailedPrecondition);
}

TEST(ExecutionStoreTest, ExecutionOfDeadProcessIsMarkedInterrupted) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  CreateExecutionRequest req{"x", "sm", "{}", "", Json::object(), ""};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok());
  // Still owned by this (live) process: not touched.
  EXPECT_EQ(*(*store)->RecoverInterrupted(), 0);
  // Pretend the owner was a process that is gone.
  ASSERT_OK((*store)->db().Exec("UPDATE flow_executions SET owner_pid = 999999999"));
  EXPECT_EQ(*(*store)->RecoverInterrupted(), 1);
  auto got = (*store)->Get("x");
  EXPECT_EQ(got->status, "FAILED");
  EXPECT_EQ(got->error, "Engage.ExecutionInterrupted");
  auto history = (*store)->History(rec->id);
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].type, "ExecutionFailed");
}

}  // namespace
}  // namespace engage::flow
