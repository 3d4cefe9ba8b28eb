// Flow benchmark: state transitions per second of the ASL interpreter, with the history
// persisted in SQLite as `engage flow run` does, against a hand-written reference in one process.
//
//   flow_bench [--work DIR] [--reps R] [--chain N] [--chain-runs K] [--loop N] [--items N]
//              [--only pass_chain|choice_loop|map]
//
// Scenarios (a transition is one state entered, i.e. one *StateEntered event, Map iterations
// included):
//  - pass_chain:  K executions of a chain of N Pass states, each merging a Result into the
//                 document with ResultPath;
//  - choice_loop: a Pass incrementing a counter with States.MathAdd and a Choice looping back
//                 until the counter reaches N;
//  - map:         an inline Map over N items (ItemsPath), each iteration two Pass states.
// Each scenario runs four ways:
//  - engine+history: ExecutionStore::Open on a fresh meta.db, then per execution Create, Sink,
//    Engine with options.events = sink, Run, Flush, Finish (what the CLI's RunExecution does);
//  - engine:         options.events = nullptr;
//  - reference+history: the same data flow written directly on engage::Json, writing the same
//    events to the same tables with the same durability: each event serialized once into the
//    journal line and the batch row, the checkpoint and the entered event journalled with one
//    write(2) per top-level state, a commit (one batch row, the checkpoint) at most every
//    100 ms and every 4096 events inside a Map;
//  - reference:      the data flow only.
// Parsing the definition and opening meta.db are not timed. Each timing is the median of R
// repetitions. Prints a table, then one JSON object as the last line.
#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"
#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "engage/flow/definition.h"
#include "engage/flow/engine.h"
#include "engage/flow/store.h"

namespace {

namespace fs = std::filesystem;
using engage::Json;
using engage::Status;
namespace flow = engage::flow;

using engage::bench::Median;
using engage::bench::Seconds;

[[noreturn]] void Die(const std::string& what) { engage::bench::Die("flow_bench", what); }

void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(fmt::format("{}: {}", what, s.ToString()));
}

// ---- the engine side ---------------------------------------------------------------------

// Counts state entries and forwards every call to `inner` (nullptr: events are dropped).
class CountingSink final : public flow::EventSink {
 public:
  explicit CountingSink(flow::EventSink* inner) : inner_(inner) {}
  Status Append(const flow::Event& e) override {
    std::string_view t = e.type;
    constexpr std::string_view kSuffix = "StateEntered";
    if (t.size() > kSuffix.size() && t.substr(t.size() - kSuffix.size()) == kSuffix) ++entered;
    ++events;
    return inner_ != nullptr ? inner_->Append(e) : Status::Ok();
  }
  Status Flush() override { return inner_ != nullptr ? inner_->Flush() : Status::Ok(); }
  Status Checkpoint(const std::string& state, const Json& input, const std::string& input_json,
                    const Json& vars) override {
    return inner_ != nullptr ? inner_->Checkpoint(state, input, input_json, vars) : Status::Ok();
  }
  int64_t entered = 0;
  int64_t events = 0;

 private:
  flow::EventSink* inner_;
};

struct EngineRun {
  Json output;
  int64_t transitions = 0;
  int64_t events = 0;
};

flow::ExecutionResult RunOnce(const flow::StateMachine& sm, const Json& input,
                              flow::EventSink* sink, const std::string& name) {
  flow::EngineOptions options;
  options.events = sink;
  options.state_machine_name = "bench";
  options.map_threads = 40;  // as the CLI without mocks (pure iterations run inline anyway)
  flow::Engine engine(options);
  flow::ExecutionResult r = engine.Run(sm, input, name);
  if (r.status != flow::ExecutionStatus::kSucceeded) {
    Die(fmt::format("execution {} ended {}: {} {}", name, flow::ExecutionStatusName(r.status),
                    r.error.value_or(""), r.cause.value_or("")));
  }
  return r;
}

// `runs` executions with the history persisted as the CLI does. `count`: also count events.
EngineRun RunWithHistory(flow::ExecutionStore& store, const std::string& definition_text,
                         const flow::StateMachine& sm, const Json& input, int runs, bool count) {
  EngineRun out;
  for (int i = 0; i < runs; ++i) {
    flow::CreateExecutionRequest req;
    req.state_machine = "bench";
    req.definition = definition_text;
    req.input = input;
    auto rec = store.Create(req);
    Check(rec.status(), "create");
    auto sink = store.Sink(rec->id);
    CountingSink counter(sink.get());
    flow::ExecutionResult r =
        RunOnce(sm, input, count ? static_cast<flow::EventSink*>(&counter) : sink.get(), rec->name);
    Check(sink->Flush(), "flush");
    Check(store.Finish(rec->id, r), "finish");
    out.output = std::move(r.output);
    out.transitions += counter.entered;
    out.events += counter.events;
  }
  return out;
}

Json RunWithoutHistory(const flow::StateMachine& sm, const Json& input, int runs) {
  Json out;
  for (int i = 0; i < runs; ++i) out = RunOnce(sm, input, nullptr, fmt::format("run-{}", i)).output;
  return out;
}

// ---- the reference side ------------------------------------------------------------------

// The bare minimum history writes: one connection with the pragmas Engage uses (WAL,
// synchronous=NORMAL, wal_autocheckpoint=4000), one prepared INSERT per event row inside an open
// transaction, and on entering each top-level state the checkpoint row, the state-entered row and a
// COMMIT, as the store's durability contract asks (see store.h).
class RefHistory {
 public:
  RefHistory(sqlite3* db, std::string execution_id) : db_(db), id_(std::move(execution_id)) {
    insert_ = Prepare(
        "INSERT INTO flow_event_batches (execution_id, first_id, last_id, events) "
        "VALUES (?, ?, ?, ?)");
    checkpoint_ = Prepare(
        "INSERT INTO flow_checkpoints (execution_id, state, input, variables) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (execution_id) DO UPDATE SET state = excluded.state, input = excluded.input, "
        "variables = excluded.variables");
    begin_ = Prepare("BEGIN IMMEDIATE");
    commit_ = Prepare("COMMIT");
    Run(begin_, "begin");
    std::string journal = std::string(sqlite3_db_filename(db_, "main")) + "-ref-journal";
    journal_fd_ = ::open(journal.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
    if (journal_fd_ < 0) Die("open reference journal");
  }
  ~RefHistory() {
    for (sqlite3_stmt* st : {insert_, checkpoint_, begin_, commit_}) sqlite3_finalize(st);
    ::close(journal_fd_);
  }

  // Serializes the event into the batch and its journal line (written with the next
  // top-level state's checkpoint).
  void Event(const char* type, const Json& details) {
    int64_t id = next_id_++;
    std::string text = fmt::format(R"({{"id":{},"previousEventId":{},"timestamp":{},"type":"{}")",
                                   id, id - 1, clock_.NowMicros(), type);
    if (!details.is_null()) {
      text += ",\"details\":";
      engage::AppendJson(&text, details);
    }
    text += "}";
    if (batch_.empty()) {
      batch_ = "[";
      first_id_ = id;
    } else {
      batch_ += ",";
    }
    batch_ += text;
    last_id_ = id;
    journal_ += "E\t" + text + "\n";
    // A long state (a Map) still reaches disk regularly, as the sink does.
    if (++events_in_batch_ >= 4096) {
      WriteJournal();
      Commit();
    }
  }

  // Entering a top-level state: the checkpoint (where a redrive resumes) and the entered event
  // go to a journal in one write(2), and everything since the last commit is committed at most
  // every 100 ms: the durability the engine's store gives (see store.h).
  void EnterTopLevel(const char* type, const std::string& state, const Json& input) {
    checkpoint_input_ = engage::DumpJson(input);
    checkpoint_state_ = state;
    Entered(type, state, checkpoint_input_);
    journal_ += "C\t\"" + state + "\"\t" + checkpoint_input_ + "\t{}\n";
    WriteJournal();
    auto now = std::chrono::steady_clock::now();
    if (now - last_commit_ >= std::chrono::milliseconds(100)) {
      Commit();
      if (::ftruncate(journal_fd_, 0) != 0) Die("truncate reference journal");
      last_commit_ = now;
    }
  }

  void Finish() {
    Commit();
    Run(commit_, "commit");
  }

  // {"input": "<json>", "inputDetails": {"truncated": false}, "name": ...}: as the engine's
  // state-entered details, and the same shape for exits.
  void Entered(const char* type, const std::string& name, const Json& doc) {
    Entered(type, name, engage::DumpJson(doc));
  }
  void Entered(const char* type, const std::string& name, std::string doc_text) {
    Json d = Json::object();
    d["input"] = std::move(doc_text);
    d["inputDetails"] = Json{{"truncated", false}};
    d["name"] = name;
    Event(type, d);
  }
  void Exited(const char* type, const std::string& name, const Json& doc) {
    Json d = Json::object();
    d["name"] = name;
    d["output"] = engage::DumpJson(doc);
    d["outputDetails"] = Json{{"truncated", false}};
    Event(type, d);
  }

 private:
  sqlite3_stmt* Prepare(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
      Die(fmt::format("prepare: {}", sqlite3_errmsg(db_)));
    }
    return st;
  }
  void Run(sqlite3_stmt* st, const char* what) {
    if (sqlite3_step(st) != SQLITE_DONE) Die(fmt::format("{}: {}", what, sqlite3_errmsg(db_)));
    sqlite3_reset(st);
  }
  void WriteJournal() {
    if (::write(journal_fd_, journal_.data(), journal_.size()) !=
        static_cast<ssize_t>(journal_.size())) {
      Die("write reference journal");
    }
    journal_.clear();
  }
  // Inserts the batch and the checkpoint and commits.
  void Commit() {
    if (!batch_.empty()) {
      batch_ += "]";
      sqlite3_bind_text(insert_, 1, id_.data(), static_cast<int>(id_.size()), SQLITE_STATIC);
      sqlite3_bind_int64(insert_, 2, first_id_);
      sqlite3_bind_int64(insert_, 3, last_id_);
      sqlite3_bind_text(insert_, 4, batch_.data(), static_cast<int>(batch_.size()), SQLITE_STATIC);
      Run(insert_, "insert batch");
      batch_.clear();
    }
    if (!checkpoint_state_.empty()) {
      sqlite3_bind_text(checkpoint_, 1, id_.data(), static_cast<int>(id_.size()), SQLITE_STATIC);
      sqlite3_bind_text(checkpoint_, 2, checkpoint_state_.data(),
                        static_cast<int>(checkpoint_state_.size()), SQLITE_STATIC);
      sqlite3_bind_text(checkpoint_, 3, checkpoint_input_.data(),
                        static_cast<int>(checkpoint_input_.size()), SQLITE_STATIC);
      sqlite3_bind_text(checkpoint_, 4, "{}", 2, SQLITE_STATIC);
      Run(checkpoint_, "checkpoint");
    }
    Run(commit_, "commit");
    Run(begin_, "begin");
    events_in_batch_ = 0;
  }

  sqlite3* db_;
  std::string id_;
  int journal_fd_ = -1;
  std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::now();
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* checkpoint_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  int64_t next_id_ = 1;
  int64_t events_in_batch_ = 0;
  std::string batch_, journal_, checkpoint_state_, checkpoint_input_;
  int64_t first_id_ = 0, last_id_ = 0;
  const engage::SystemClock& clock_ = engage::SystemClock::Default();
};

// One reference execution: `body` does the data flow (and, given a history, its events).
using RefBody = std::function<Json(const Json& input, RefHistory* h)>;

sqlite3* OpenRefDb(const std::string& path) {
  {
    // The same tables as Engage's meta.db.
    auto store = flow::ExecutionStore::Open(path, engage::SystemClock::Default());
    Check(store.status(), "open reference store");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    Die("open reference db");
  }
  // The settings of ExecutionStore's connection (see store.cc).
  sqlite3_exec(
      db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=4000;",
      nullptr, nullptr, nullptr);
  return db;
}

Json RefWithHistory(sqlite3* db, const std::string& definition, const RefBody& body,
                    const Json& input, int runs, int64_t* seq) {
  Json out;
  const auto& clock = engage::SystemClock::Default();
  for (int i = 0; i < runs; ++i) {
    std::string id = fmt::format("ref-{}", (*seq)++);
    std::string in = engage::DumpJson(input);
    sqlite3_stmt* ins = nullptr;
    sqlite3_prepare_v2(db,
                       "INSERT INTO flow_executions (id, name, state_machine, definition, input, "
                       "status, start_micros) VALUES (?, ?, 'bench', ?, ?, 'RUNNING', ?)",
                       -1, &ins, nullptr);
    sqlite3_bind_text(ins, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, definition.data(), static_cast<int>(definition.size()),
                      SQLITE_STATIC);
    sqlite3_bind_text(ins, 4, in.data(), static_cast<int>(in.size()), SQLITE_STATIC);
    sqlite3_bind_int64(ins, 5, clock.NowMicros());
    if (sqlite3_step(ins) != SQLITE_DONE) Die("insert reference execution");
    sqlite3_finalize(ins);
    {
      RefHistory h(db, id);
      Json started = Json::object();
      started["input"] = in;
      started["inputDetails"] = Json{{"truncated", false}};
      h.Event("ExecutionStarted", started);
      out = body(input, &h);
      h.Event("ExecutionSucceeded",
              Json{{"output", engage::DumpJson(out)}, {"outputDetails", {{"truncated", false}}}});
      h.Finish();
    }
    std::string o = engage::DumpJson(out);
    sqlite3_stmt* up = nullptr;
    sqlite3_prepare_v2(db,
                       "UPDATE flow_executions SET status = 'SUCCEEDED', output = ?, "
                       "stop_micros = ? WHERE id = ?",
                       -1, &up, nullptr);
    sqlite3_bind_text(up, 1, o.data(), static_cast<int>(o.size()), SQLITE_STATIC);
    sqlite3_bind_int64(up, 2, clock.NowMicros());
    sqlite3_bind_text(up, 3, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    if (sqlite3_step(up) != SQLITE_DONE) Die("finish reference execution");
    sqlite3_finalize(up);
  }
  return out;
}

Json RefWithoutHistory(const RefBody& body, const Json& input, int runs) {
  Json out;
  for (int i = 0; i < runs; ++i) out = body(input, nullptr);
  return out;
}

// ---- scenarios ---------------------------------------------------------------------------

struct Scenario {
  std::string name;
  Json definition;
  Json input;
  int runs = 1;                  // executions per repetition
  int64_t expected_transitions;  // per repetition
  RefBody reference;
};

std::string StateName(int i) { return fmt::format("Step{:05d}", i); }

Scenario PassChain(int n, int runs) {
  Scenario s;
  s.name = "pass_chain";
  Json states = Json::object();
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    Json st = Json::object();
    st["Type"] = "Pass";
    st["Result"] = i;
    st["ResultPath"] = "$.step";
    if (i + 1 < n) {
      st["Next"] = StateName(i + 1);
    } else {
      st["End"] = true;
    }
    states[StateName(i)] = std::move(st);
    names.push_back(StateName(i));
  }
  s.definition = Json{{"StartAt", StateName(0)}, {"States", std::move(states)}};
  s.input = Json::parse(R"json({"order": {"id": "A-1001", "customer": "c-42", "currency": "EUR",
    "lines": [{"sku": "X1", "qty": 2, "price": 9.5}, {"sku": "Y7", "qty": 1, "price": 80.5}],
    "total": 99.5}, "step": null})json");
  s.runs = runs;
  s.expected_transitions = static_cast<int64_t>(n) * runs;
  s.reference = [names](const Json& input, RefHistory* h) {
    Json doc = input;
    for (size_t i = 0; i < names.size(); ++i) {
      if (h != nullptr) {
        h->EnterTopLevel("PassStateEntered", names[i], doc);
      }
      Json out = doc;  // ResultPath merges into a copy of the state input
      out["step"] = static_cast<int64_t>(i);
      doc = std::move(out);
      if (h != nullptr) h->Exited("PassStateExited", names[i], doc);
    }
    return doc;
  };
  return s;
}

Scenario ChoiceLoop(int n) {
  Scenario s;
  s.name = "choice_loop";
  s.definition = Json::parse(R"json({
    "StartAt": "Increment",
    "States": {
      "Increment": {"Type": "Pass",
                    "Parameters": {"counter.$": "States.MathAdd($.counter, 1)", "n.$": "$.n"},
                    "Next": "Check"},
      "Check": {"Type": "Choice",
                "Choices": [{"Variable": "$.counter", "NumericLessThanPath": "$.n",
                             "Next": "Increment"}],
                "Default": "Done"},
      "Done": {"Type": "Succeed"}
    }})json");
  s.input = Json{{"counter", 0}, {"n", n}};
  s.expected_transitions = 2 * static_cast<int64_t>(n) + 1;
  s.reference = [](const Json& input, RefHistory* h) {
    static const std::string kInc = "Increment", kCheck = "Check", kDone = "Done";
    Json doc = input;
    while (true) {
      if (h != nullptr) {
        h->EnterTopLevel("PassStateEntered", kInc, doc);
      }
      Json next = Json::object();
      next["counter"] = doc["counter"].get<int64_t>() + 1;
      next["n"] = doc["n"];
      doc = std::move(next);
      if (h != nullptr) {
        h->Exited("PassStateExited", kInc, doc);
        h->EnterTopLevel("ChoiceStateEntered", kCheck, doc);
      }
      bool again = doc["counter"].get<int64_t>() < doc["n"].get<int64_t>();
      if (h != nullptr) h->Exited("ChoiceStateExited", kCheck, doc);
      if (!again) break;
    }
    if (h != nullptr) {
      h->EnterTopLevel("SucceedStateEntered", kDone, doc);
      h->Exited("SucceedStateExited", kDone, doc);
    }
    return doc;
  };
  return s;
}

Scenario MapItems(int n) {
  Scenario s;
  s.name = "map";
  s.definition = Json::parse(R"json({
    "StartAt": "Fan",
    "States": {
      "Fan": {"Type": "Map", "ItemsPath": "$.items",
              "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Inc",
                "States": {
                  "Inc": {"Type": "Pass",
                          "Parameters": {"id.$": "$.id", "v.$": "States.MathAdd($.id, 1)"},
                          "Next": "Project"},
                  "Project": {"Type": "Pass", "OutputPath": "$.v", "End": true}}},
              "End": true}
    }})json");
  Json list = Json::array();
  for (int i = 0; i < n; ++i) list.push_back(Json{{"id", i}});
  s.input = Json{{"items", std::move(list)}};
  s.expected_transitions = 2 * static_cast<int64_t>(n) + 1;
  s.reference = [](const Json& input, RefHistory* h) {
    static const std::string kFan = "Fan", kInc = "Inc", kProject = "Project";
    if (h != nullptr) {
      h->EnterTopLevel("MapStateEntered", kFan, input);
      h->Event("MapStateStarted", Json{{"length", input["items"].size()}});
    }
    const Json& items = input["items"];
    Json results = Json::array();
    for (size_t i = 0; i < items.size(); ++i) {
      const Json& item = items[i];
      if (h != nullptr) {
        h->Event("MapIterationStarted", Json{{"index", i}, {"name", kFan}});
        h->Entered("PassStateEntered", kInc, item);
      }
      Json inc = Json::object();
      inc["id"] = item["id"];
      inc["v"] = item["id"].get<int64_t>() + 1;
      if (h != nullptr) {
        h->Exited("PassStateExited", kInc, inc);
        h->Entered("PassStateEntered", kProject, inc);
      }
      Json v = inc["v"];
      if (h != nullptr) {
        h->Exited("PassStateExited", kProject, v);
        h->Event("MapIterationSucceeded", Json{{"index", i}, {"name", kFan}});
      }
      results.push_back(std::move(v));
    }
    if (h != nullptr) {
      h->Event("MapStateSucceeded", Json());
      h->Exited("MapStateExited", kFan, results);
    }
    return results;
  };
  return s;
}

struct Figures {
  std::string name;
  int64_t transitions = 0;  // per repetition
  int64_t events = 0;
  double engine_hist_s = 0, engine_s = 0, ref_hist_s = 0, ref_s = 0;
  double Tps(double s) const { return static_cast<double>(transitions) / s; }
};

Figures RunScenario(const Scenario& sc, const std::string& work, int reps) {
  std::vector<flow::Diagnostic> problems;
  auto sm = flow::ParseDefinition(sc.definition, &problems);
  if (sm == nullptr) {
    Die(fmt::format("{}: invalid definition: {}", sc.name,
                    problems.empty() ? "" : problems.front().ToString()));
  }
  std::string text = engage::DumpJson(sc.definition);
  Figures f;
  f.name = sc.name;

  // Untimed check: the engine and the reference agree, and the transitions are as expected.
  std::string dir = fmt::format("{}/{}", work, sc.name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    auto store = flow::ExecutionStore::Open(dir + "/check.db", engage::SystemClock::Default());
    Check(store.status(), "open store");
    EngineRun r = RunWithHistory(**store, text, *sm, sc.input, sc.runs, true);
    Json ref = RefWithoutHistory(sc.reference, sc.input, 1);
    if (!(r.output == ref)) {
      Die(fmt::format("{}: engine output {} differs from the reference {}", sc.name,
                      engage::DumpJson(r.output).substr(0, 200),
                      engage::DumpJson(ref).substr(0, 200)));
    }
    if (r.transitions != sc.expected_transitions) {
      Die(fmt::format("{}: {} transitions, expected {}", sc.name, r.transitions,
                      sc.expected_transitions));
    }
    f.transitions = r.transitions;
    f.events = r.events;
  }

  std::vector<double> eh, e, rh, r;
  int64_t seq = 0;
  for (int rep = 0; rep < reps; ++rep) {
    std::string db_path = fmt::format("{}/engine-{}.db", dir, rep);
    auto store = flow::ExecutionStore::Open(db_path, engage::SystemClock::Default());
    Check(store.status(), "open store");
    eh.push_back(Seconds([&] { RunWithHistory(**store, text, *sm, sc.input, sc.runs, false); }));
    e.push_back(Seconds([&] { RunWithoutHistory(*sm, sc.input, sc.runs); }));
    sqlite3* db = OpenRefDb(fmt::format("{}/ref-{}.db", dir, rep));
    rh.push_back(Seconds([&] { RefWithHistory(db, text, sc.reference, sc.input, sc.runs, &seq); }));
    sqlite3_close(db);
    r.push_back(Seconds([&] { RefWithoutHistory(sc.reference, sc.input, sc.runs); }));
  }
  fs::remove_all(dir);
  f.engine_hist_s = Median(eh);
  f.engine_s = Median(e);
  f.ref_hist_s = Median(rh);
  f.ref_s = Median(r);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::string work = "bench-work";
  int reps = 5, chain = 1000, chain_runs = 10, loop = 10000, items = 10000;
  std::string only;  // run one scenario (for profiling)
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--work")
      work = argv[i + 1];
    else if (a == "--reps")
      reps = std::stoi(argv[i + 1]);
    else if (a == "--chain")
      chain = std::stoi(argv[i + 1]);
    else if (a == "--chain-runs")
      chain_runs = std::stoi(argv[i + 1]);
    else if (a == "--loop")
      loop = std::stoi(argv[i + 1]);
    else if (a == "--items")
      items = std::stoi(argv[i + 1]);
    else if (a == "--only")
      only = argv[i + 1];
  }
  work = fmt::format("{}/flow-{}", work, getpid());
  fs::create_directories(work);

  std::vector<Figures> all;
  for (const Scenario& sc : {PassChain(chain, chain_runs), ChoiceLoop(loop), MapItems(items)}) {
    if (!only.empty() && sc.name != only) continue;
    all.push_back(RunScenario(sc, work, reps));
  }
  fs::remove_all(work);

  std::printf("transitions/s (median of %d), ratio = reference speed / engine speed\n", reps);
  std::printf("%-12s %8s %14s %14s %7s %12s %12s %7s %9s\n", "scenario", "trans", "engine+hist",
              "ref+hist", "ratio", "engine", "ref", "ratio", "hist_cost");
  for (const Figures& f : all) {
    std::printf("%-12s %8ld %14.0f %14.0f %7.2f %12.0f %12.0f %7.2f %8.2fx\n", f.name.c_str(),
                static_cast<long>(f.transitions), f.Tps(f.engine_hist_s), f.Tps(f.ref_hist_s),
                f.engine_hist_s / f.ref_hist_s, f.Tps(f.engine_s), f.Tps(f.ref_s),
                f.engine_s / f.ref_s, f.engine_hist_s / f.engine_s);
  }
  double min_hist = 1e300;
  for (const Figures& f : all) min_hist = std::min(min_hist, f.Tps(f.engine_hist_s));
  std::printf("goal: >= 50000 transitions/s with history persisted; slowest scenario: %.0f (%s)\n",
              min_hist, min_hist >= 50000 ? "met" : "not met");

  std::string json = fmt::format("{{\"reps\": {}, \"goal_tps_with_history\": 50000", reps);
  for (const Figures& f : all) {
    json += fmt::format(
        ", \"{}\": {{\"transitions\": {}, \"events\": {}, \"engine_history_tps\": {:.0f}, "
        "\"engine_tps\": {:.0f}, \"reference_history_tps\": {:.0f}, \"reference_tps\": {:.0f}, "
        "\"history_ratio\": {:.3f}, \"ratio\": {:.3f}, \"history_cost\": {:.3f}}}",
        f.name, f.transitions, f.events, f.Tps(f.engine_hist_s), f.Tps(f.engine_s),
        f.Tps(f.ref_hist_s), f.Tps(f.ref_s), f.engine_hist_s / f.ref_hist_s, f.engine_s / f.ref_s,
        f.engine_hist_s / f.engine_s);
  }
  json += fmt::format(", \"goal_met\": {}}}", min_hist >= 50000 ? "true" : "false");
  std::printf("%s\n", json.c_str());
  return 0;
}
