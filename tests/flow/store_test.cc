#include "engage/flow/store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

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

TEST(ExecutionStoreTest, EnteredEventOfATopLevelStateIsDurableAtOnce) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  CreateExecutionRequest req{"x", "sm", "{}", "", Json::object(), ""};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok());
  auto sink = (*store)->Sink(rec->id);
  Event started{1, 0, 0, "ExecutionStarted", Json::object()};
  ASSERT_OK(sink->Append(started));
  ASSERT_OK(sink->Checkpoint("Pause", Json::object(), Json::object()));
  Event entered{2, 1, 0, "WaitStateEntered", Json{{"name", "Pause"}}};
  ASSERT_OK(sink->Append(entered));
  // Another process reading meta.db now sees where the execution is.
  auto other = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(other.ok());
  auto history = (*other)->History(rec->id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].type, "WaitStateEntered");
  EXPECT_EQ((*other)->Get("x")->resume_state, "Pause");
  // Later events of the state are buffered until the next checkpoint or Flush.
  Event exited{3, 2, 0, "WaitStateExited", Json{{"name", "Pause"}}};
  ASSERT_OK(sink->Append(exited));
  EXPECT_EQ((*other)->History(rec->id)->size(), 2u);
  ASSERT_OK(sink->Flush());
  EXPECT_EQ((*other)->History(rec->id)->size(), 3u);
}

TEST(ExecutionStoreTest, TaskInvocationsCountAttemptsPerState) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  std::string def = R"j({"StartAt":"A","States":{
    "A":{"Type":"Task","Resource":"engage:flaky","Retry":[{"ErrorEquals":["States.ALL"],
         "IntervalSeconds":1,"MaxAttempts":3}],"Next":"M"},
    "M":{"Type":"Map","ItemsPath":"$.items","ItemProcessor":{"StartAt":"B","States":{
         "B":{"Type":"Task","Resource":"engage:ok","End":true}}},"End":true}}})j";
  auto sm = Parse(def);
  ASSERT_NE(sm, nullptr);
  CreateExecutionRequest req{"t", "sm", def, "", Json{{"items", {1, 2, 3}}}, ""};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok());
  int calls = 0;
  TaskRegistry tasks;
  tasks.RegisterStep(
      "flaky",
      [&](const Json& p) -> Result<Json> {
        if (++calls < 3) return UnavailableError("busy");
        return p;
      },
      "");
  tasks.RegisterStep(
      "ok", [](const Json& p) -> Result<Json> { return p; }, "");
  auto sink = (*store)->Sink(rec->id);
  EngineOptions o;
  o.clock = &clock;
  o.sleep = [&](int64_t us) { clock.AdvanceMicros(us); };
  o.events = sink.get();
  o.tasks = &tasks;
  ExecutionResult r = Engine(o).Run(*sm, rec->input, rec->name);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.cause.value_or("");
  auto counts = (*store)->TaskInvocations(rec->id);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(*counts, (std::map<std::string, int64_t>{{"A", 3}, {"B", 3}}));
}

TEST(ExecutionStoreTest, MockPathIsKeptAndOldDatabasesAreMigrated) {
  testing::TempDir dir;
  FakeClock clock(0);
  std::string path = dir.path() + "/meta.db";
  {
    // A meta.db written before the mock_path column existed.
    auto db = SqliteDb::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_OK(db->Exec(
        "CREATE TABLE flow_executions (id TEXT PRIMARY KEY, name TEXT NOT NULL, state_machine "
        "TEXT NOT NULL, definition TEXT NOT NULL, definition_path TEXT NOT NULL DEFAULT '', "
        "input TEXT NOT NULL, status TEXT NOT NULL, output TEXT, error TEXT, cause TEXT, "
        "start_micros INTEGER NOT NULL, stop_micros INTEGER, redrive_count INTEGER NOT NULL "
        "DEFAULT 0, mock_case TEXT NOT NULL DEFAULT '', owner_pid INTEGER, owner_start TEXT, "
        "resume_state TEXT NOT NULL DEFAULT '', resume_input TEXT, resume_variables TEXT, "
        "UNIQUE (state_machine, name));"
        "INSERT INTO flow_executions (id, name, state_machine, definition, input, status, "
        "start_micros) VALUES ('old', 'old', 'sm', '{}', '{}', 'SUCCEEDED', 1);"));
  }
  auto store = ExecutionStore::Open(path, clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto old = (*store)->Get("old");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->mock_path, "");
  CreateExecutionRequest req{"new", "sm", "{}", "", Json::object(), "Happy", "/tmp/mocks.json"};
  ASSERT_TRUE((*store)->Create(req).ok());
  auto got = (*store)->Get("new");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->mock_case, "Happy");
  EXPECT_EQ(got->mock_path, "/tmp/mocks.json");
  EXPECT_EQ(got->ToJson()["mockPath"], "/tmp/mocks.json");
  // Opening again does not try to add the column twice.
  EXPECT_TRUE(ExecutionStore::Open(path, clock).ok());
}

// Field 22 (start time) of /proc/<pid>/stat, and field 3 (state).
std::pair<std::string, std::string> StartAndState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return {"", ""};
  std::istringstream rest(line.substr(close + 2));
  std::string field, state, start;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3) state = field;
    if (i == 22) start = field;
  }
  return {start, state};
}

TEST(ExecutionStoreTest, ExecutionOfAKilledButUnreapedProcessIsInterrupted) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  CreateExecutionRequest req{"z", "sm", "{}", "", Json::object(), ""};
  ASSERT_TRUE((*store)->Create(req).ok());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  // Wait until the child is a zombie (dead, not yet reaped).
  std::pair<std::string, std::string> ss;
  for (int i = 0; i < 1000; ++i) {
    ss = StartAndState(child);
    if (ss.second == "Z") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(ss.second, "Z");
  ASSERT_OK((*store)->db().Exec("UPDATE flow_executions SET owner_pid = " + std::to_string(child) +
                                ", owner_start = '" + ss.first + "'"));
  EXPECT_EQ(*(*store)->RecoverInterrupted(), 1);
  EXPECT_EQ((*store)->Get("z")->error, "Engage.ExecutionInterrupted");
  int status = 0;
  ::waitpid(child, &status, 0);
}

TEST(ExecutionStoreTest, CheckpointIsWrittenWithTheEnteredEventAndOldCheckpointsStillRead) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  CreateExecutionRequest req{"c", "sm", "{}", "", Json::object(), ""};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok());
  // An execution checkpointed by an older Engage, in the execution row.
  ASSERT_OK((*store)->db().Exec(
      "UPDATE flow_executions SET resume_state = 'Old', resume_input = '{\"a\":1}', "
      "resume_variables = '{\"v\":2}'"));
  EXPECT_EQ((*store)->Get("c")->resume_state, "Old");
  EXPECT_EQ((*store)->Get("c")->resume_input, (Json{{"a", 1}}));
  EXPECT_EQ((*store)->List(10, "")->front().resume_variables, (Json{{"v", 2}}));
  auto sink = (*store)->Sink(rec->id);
  ASSERT_OK(sink->Append(Event{1, 0, 0, "ExecutionStarted", Json::object()}));
  ASSERT_OK(sink->Checkpoint("Next", Json{{"b", 2}}, Json{{"w", 3}}));
  // Nothing is written until the state's entered event arrives, then both at once.
  EXPECT_EQ((*store)->History(rec->id)->size(), 0u);
  EXPECT_EQ((*store)->Get("c")->resume_state, "Old");
  ASSERT_OK(sink->Append(Event{2, 1, 0, "PassStateEntered", Json{{"name", "Next"}}}));
  EXPECT_EQ((*store)->History(rec->id)->size(), 2u);
  auto got = (*store)->Get("c");
  EXPECT_EQ(got->resume_state, "Next");
  EXPECT_EQ(got->resume_input, (Json{{"b", 2}}));
  EXPECT_EQ(got->resume_variables, (Json{{"w", 3}}));
  // A checkpoint with no event after it is written by Flush.
  ASSERT_OK(sink->Checkpoint("Last", Json::object(), Json::object()));
  ASSERT_OK(sink->Flush());
  EXPECT_EQ((*store)->Get("c")->resume_state, "Last");
}

}  // namespace
}  // namespace engage::flow
