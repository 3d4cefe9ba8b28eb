#include "engage/flow/store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "engage/flow/registry.h"
#include "engage/flow/tasks.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

std::shared_ptr<const StateMachine> Parse(const std::string& text) {
  std::vector<Diagnostic> problems;
  return ParseDefinition(Json::parse(text), &problems);
}

TEST(StateMachineRegistryTest, NamesFollowAwsRules) {
  for (const char* ok : {"a", "daily", "Daily_2-x", "A1"}) {
    EXPECT_OK(ValidateStateMachineName(ok));
  }
  EXPECT_OK(ValidateStateMachineName(std::string(80, 'x')));
  for (const std::string& bad :
       {std::string(""), std::string(81, 'x'), std::string("../../outside/pwned"),
        std::string("a/b"), std::string("caf\xc3\xa9"), std::string("a b"), std::string(".."),
        std::string("a\0b", 3)}) {
    Status s = ValidateStateMachineName(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("1 to 80 characters"), std::string::npos) << s.message();
  }
}

TEST(StateMachineRegistryTest, PutGetListAndVersions) {
  testing::TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  auto reg = StateMachineRegistry::Open(dir.path() + "/meta.db", clock);
  ASSERT_OK(reg);
  EXPECT_EQ((*reg)->Get("daily").status().code(), StatusCode::kNotFound);
  auto m = (*reg)->Put("daily", R"({"StartAt":"A"})", R"({"Statement":[]})", "key k1");
  ASSERT_OK(m);
  EXPECT_EQ(m->version, 1);
  clock.AdvanceMicros(1000000);
  m = (*reg)->Put("daily", R"({"StartAt":"B"})", R"({"Statement":[]})", "key k2");
  ASSERT_OK(m);
  EXPECT_EQ(m->version, 2);
  EXPECT_EQ(m->registered_by, "key k2");
  EXPECT_EQ(m->definition, R"({"StartAt":"B"})");
  EXPECT_LT(m->created_micros, m->updated_micros);
  EXPECT_EQ((*reg)->Put("../x", "{}", "{}", "k").status().code(), StatusCode::kInvalidArgument);
  ASSERT_OK((*reg)->Put("alpha", "{}", "{}", "k"));
  auto list = (*reg)->List();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpha");
  Json j = (*list)[1].ToJson(true);
  EXPECT_EQ(j["definition"], Json::parse(R"({"StartAt":"B"})"));
  EXPECT_FALSE((*list)[1].ToJson(false).contains("definition"));
}

TEST(TaskRegistryTest, AnAuthorizerBoundsStepsAndCommandsWithAccessDenied) {
  TaskRegistry tasks;
  int ran = 0;
  tasks.RegisterStep(
      "train",
      [&ran](const Json&) -> Result<Json> {
        ++ran;
        return Json{{"trained", true}};
      },
      "trains",
      [](const Json& p) -> Result<std::vector<std::string>> {
        return std::vector<std::string>{"model/" + p.value("model", std::string("engagement"))};
      });
  tasks.RegisterStep(
      "notify",
      [&ran](const Json&) -> Result<Json> {
        ++ran;
        return Json(true);
      },
      "notifies");
  std::vector<std::string> asked;
  tasks.SetAuthorizer([&asked](std::string_view action, const std::string& resource) -> Status {
    asked.push_back(std::string(action) + " " + resource);
    if (action == "engage:train" && resource == "model/engagement") return Status::Ok();
    return PermissionDeniedError(fmt::format("no {} on {}", action, resource));
  });
  TaskRequest req;
  req.state_name = "T";
  req.resource = "engage:train";
  req.parameters = Json::object();
  auto ok = tasks.Run(req);
  ASSERT_TRUE(std::holds_alternative<Json>(ok));
  req.parameters = Json{{"model", "other"}};
  auto denied = tasks.Run(req);
  ASSERT_TRUE(std::holds_alternative<TaskError>(denied));
  EXPECT_EQ(std::get<TaskError>(denied).error, "Engage.AccessDenied");
  EXPECT_NE(std::get<TaskError>(denied).cause.find("engage:train on model/other"),
            std::string::npos);
  req.resource = "engage:notify";
  auto star = tasks.Run(req);
  ASSERT_TRUE(std::holds_alternative<TaskError>(star));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(asked.back(), "engage:notify *");
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

TEST(ExecutionStoreTest, SyncShowsTheStateTheExecutionIsIn) {
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
  ASSERT_OK(sink->Checkpoint("Pause", Json::object(), DumpJson(Json::object()), Json::object()));
  Event entered{2, 1, 0, "WaitStateEntered", Json{{"name", "Pause"}}};
  ASSERT_OK(sink->Append(entered));
  // The engine syncs before it blocks (here: the Wait); another process then sees where the
  // execution is.
  ASSERT_OK(sink->Sync());
  auto other = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(other.ok());
  auto history = (*other)->History(rec->id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].type, "WaitStateEntered");
  EXPECT_EQ((*other)->Get("x")->resume_state, "Pause");
}

TEST(ExecutionStoreTest, KilledProcessLosesNoJournalledEvent) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  CreateExecutionRequest req{"k", "sm", "{}", "", Json::object(), ""};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok());
  {
    auto sink = (*store)->Sink(rec->id);
    ASSERT_OK(sink->Append(Event{1, 0, 0, "ExecutionStarted", Json::object()}));
    ASSERT_OK(sink->Checkpoint("A", Json{{"a", 1}}, DumpJson(Json{{"a", 1}}), Json::object()));
    ASSERT_OK(sink->Append(Event{2, 1, 0, "PassStateEntered", Json{{"name", "A"}}}));
    ASSERT_OK(sink->Append(Event{3, 2, 0, "PassStateExited", Json{{"name", "A"}}}));
    ASSERT_OK(sink->Checkpoint("B", Json{{"b", 2}}, DumpJson(Json{{"b", 2}}), Json{{"v", 1}}));
    ASSERT_OK(sink->Append(Event{4, 3, 0, "TaskStateEntered", Json{{"name", "B"}}}));
    // The process dies here: no Sync, no Flush (the sink's destructor only closes the file).
  }
  ASSERT_OK((*store)->db().Exec("UPDATE flow_executions SET owner_pid = 999999999"));
  EXPECT_EQ(*(*store)->RecoverInterrupted(), 1);
  auto history = (*store)->History(rec->id);
  ASSERT_TRUE(history.ok());
  std::vector<std::string> types;
  for (const Event& e : *history) types.push_back(e.type);
  EXPECT_EQ(types,
            (std::vector<std::string>{"ExecutionStarted", "PassStateEntered", "PassStateExited",
                                      "TaskStateEntered", "ExecutionFailed"}));
  auto got = (*store)->Get("k");
  EXPECT_EQ(got->resume_state, "B");
  EXPECT_EQ(got->resume_input, (Json{{"b", 2}}));
  EXPECT_EQ(got->resume_variables, (Json{{"v", 1}}));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/flow-journal/" + rec->id + ".jsonl"));
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
  ASSERT_OK(sink->Checkpoint("Next", Json{{"b", 2}}, DumpJson(Json{{"b", 2}}), Json{{"w", 3}}));
  // Nothing reaches meta.db before the state's entered event and a sync (the journal holds
  // them meanwhile), then both at once.
  EXPECT_EQ((*store)->History(rec->id)->size(), 0u);
  EXPECT_EQ((*store)->Get("c")->resume_state, "Old");
  ASSERT_OK(sink->Append(Event{2, 1, 0, "PassStateEntered", Json{{"name", "Next"}}}));
  ASSERT_OK(sink->Sync());
  EXPECT_EQ((*store)->History(rec->id)->size(), 2u);
  auto got = (*store)->Get("c");
  EXPECT_EQ(got->resume_state, "Next");
  EXPECT_EQ(got->resume_input, (Json{{"b", 2}}));
  EXPECT_EQ(got->resume_variables, (Json{{"w", 3}}));
  // A checkpoint with no event after it is written by Flush.
  ASSERT_OK(sink->Checkpoint("Last", Json::object(), DumpJson(Json::object()), Json::object()));
  ASSERT_OK(sink->Flush());
  EXPECT_EQ((*store)->Get("c")->resume_state, "Last");
}

TEST(ExecutionStoreTest, HistoryIsStoredInBatchesAndReadableOneRowPerEvent) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  auto rec = (*store)->Create(CreateExecutionRequest{"b", "sm", "{}", "", Json::object(), ""});
  ASSERT_TRUE(rec.ok());
  auto sink = (*store)->Sink(rec->id);
  ASSERT_OK(sink->Append(Event{1, 0, 5, "ExecutionStarted", Json{{"input", "{}"}}}));
  ASSERT_OK(sink->Append(Event{2, 1, 6, "PassStateEntered", Json{{"name", "A\t\"x\""}}}));
  ASSERT_OK(sink->Sync());
  ASSERT_OK(sink->Append(Event{3, 2, 7, "ParallelStateSucceeded", Json()}));
  ASSERT_OK(sink->Flush());
  // Two commits: two batch rows.
  SqliteStmt batches =
      *(*store)->db().Prepare("SELECT first_id, last_id FROM flow_event_batches ORDER BY 1");
  std::vector<std::pair<int64_t, int64_t>> ranges;
  while (*batches.Step()) ranges.emplace_back(batches.Int(0), batches.Int(1));
  EXPECT_EQ(ranges, (std::vector<std::pair<int64_t, int64_t>>{{1, 2}, {3, 3}}));
  // The history reads back exactly, null details included.
  auto history = (*store)->History(rec->id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[1].details, (Json{{"name", "A\t\"x\""}}));
  EXPECT_EQ((*history)[1].timestamp_micros, 6);
  EXPECT_TRUE((*history)[2].details.is_null());
  // SQL readers see one row per event in the flow_events view.
  SqliteStmt rows = *(*store)->db().Prepare(
      "SELECT id, previous_id, ts_micros, type, details FROM flow_events WHERE execution_id = ? "
      "ORDER BY id");
  rows.Bind(1, rec->id);
  std::vector<std::string> seen;
  while (*rows.Step()) {
    seen.push_back(fmt::format("{} {} {} {} {}", rows.Int(0), rows.Int(1), rows.Int(2),
                               rows.Text(3), rows.IsNull(4) ? "null" : rows.Text(4)));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{R"(1 0 5 ExecutionStarted {"input":"{}"})",
                                            R"(2 1 6 PassStateEntered {"name":"A\t\"x\""})",
                                            "3 2 7 ParallelStateSucceeded null"}));
}

TEST(ExecutionStoreTest, OlderMetaDbWithOneRowPerEventIsMigrated) {
  testing::TempDir dir;
  std::string path = dir.path() + "/meta.db";
  FakeClock clock(0);
  {
    // A meta.db as Engage wrote it before the history went into batches: the executions, and
    // a table flow_events with a row per event.
    auto store = ExecutionStore::Open(path, clock);
    ASSERT_TRUE(store.ok());
    for (const char* name : {"e1", "e2"}) {
      auto rec = (*store)->Create(CreateExecutionRequest{name, "sm", "{}", "", Json(), ""});
      ASSERT_TRUE(rec.ok());
      ASSERT_OK((*store)->db().Exec(
          fmt::format("UPDATE flow_executions SET id = '{}' WHERE name = '{}'", name, name)));
    }
    ASSERT_OK((*store)->db().Exec(R"sql(
DROP VIEW flow_events;
CREATE TABLE flow_events (execution_id TEXT NOT NULL, id INTEGER NOT NULL,
  previous_id INTEGER NOT NULL, ts_micros INTEGER NOT NULL, type TEXT NOT NULL, details TEXT,
  PRIMARY KEY (execution_id, id)) WITHOUT ROWID;
INSERT INTO flow_events VALUES ('e1', 2, 1, 20, 'PassStateEntered', '{"name":"A"}');
INSERT INTO flow_events VALUES ('e1', 1, 0, 10, 'ExecutionStarted', '{"input":"{}"}');
INSERT INTO flow_events VALUES ('e1', 3, 2, 30, 'ParallelStateStarted', NULL);
INSERT INTO flow_events VALUES ('e2', 1, 0, 40, 'ExecutionStarted', '{}');
)sql"));
  }
  for (int open = 0; open < 2; ++open) {  // the second open finds the migration done
    auto store = ExecutionStore::Open(path, clock);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto h1 = (*store)->History("e1");
    ASSERT_TRUE(h1.ok()) << h1.status().ToString();
    ASSERT_EQ(h1->size(), 3u);
    EXPECT_EQ((*h1)[0].type, "ExecutionStarted");
    EXPECT_EQ((*h1)[1].details, (Json{{"name", "A"}}));
    EXPECT_EQ((*h1)[1].timestamp_micros, 20);
    EXPECT_TRUE((*h1)[2].details.is_null());
    EXPECT_EQ((*store)->History("e2")->size(), 1u);
    SqliteStmt kind =
        *(*store)->db().Prepare("SELECT type FROM sqlite_master WHERE name = 'flow_events'");
    ASSERT_TRUE(*kind.Step());
    EXPECT_EQ(kind.Text(0), "view");
  }
}

TEST(ExecutionStoreTest, ReplayDoesNotRepeatEventsCommittedBeforeTheJournalWasEmptied) {
  testing::TempDir dir;
  FakeClock clock(0);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  auto rec = (*store)->Create(CreateExecutionRequest{"r", "sm", "{}", "", Json::object(), ""});
  ASSERT_TRUE(rec.ok());
  std::string journal = dir.path() + "/flow-journal/" + rec->id + ".jsonl";
  std::string kept;
  {
    auto sink = (*store)->Sink(rec->id);
    ASSERT_OK(sink->Append(Event{1, 0, 0, "ExecutionStarted", Json::object()}));
    ASSERT_OK(sink->Checkpoint("A", Json::object(), "{}", Json::object()));
    ASSERT_OK(sink->Append(Event{2, 1, 0, "PassStateEntered", Json{{"name", "A"}}}));
    std::ifstream in(journal);
    kept.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    ASSERT_NE(kept.find("PassStateEntered"), std::string::npos);
    ASSERT_OK(sink->Sync());  // commits events 1 and 2 and empties the journal
    ASSERT_OK(sink->Append(Event{3, 2, 0, "PassStateExited", Json{{"name", "A"}}}));
    ASSERT_OK(sink->Checkpoint("B", Json::object(), "{}", Json::object()));
    ASSERT_OK(sink->Append(Event{4, 3, 0, "PassStateEntered", Json{{"name", "B"}}}));
  }
  // The process died after the commit but before the journal was emptied: the journal still
  // starts with the committed events.
  std::string rest;
  {
    std::ifstream in(journal);
    rest.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  {
    std::ofstream out(journal, std::ios::trunc);
    out << kept << rest;
  }
  ASSERT_OK((*store)->db().Exec("UPDATE flow_executions SET owner_pid = 999999999"));
  EXPECT_EQ(*(*store)->RecoverInterrupted(), 1);
  auto history = (*store)->History(rec->id);
  ASSERT_TRUE(history.ok());
  std::vector<int64_t> ids;
  for (const Event& e : *history) ids.push_back(e.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ((*store)->Get("r")->resume_state, "B");
}

}  // namespace
}  // namespace engage::flow
