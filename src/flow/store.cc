#include "engage/flow/store.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "engage/core/ids.h"

namespace engage::flow {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS flow_executions (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  state_machine TEXT NOT NULL,
  definition TEXT NOT NULL,
  definition_path TEXT NOT NULL DEFAULT '',
  input TEXT NOT NULL,
  status TEXT NOT NULL,
  output TEXT,
  error TEXT,
  cause TEXT,
  start_micros INTEGER NOT NULL,
  stop_micros INTEGER,
  redrive_count INTEGER NOT NULL DEFAULT 0,
  mock_case TEXT NOT NULL DEFAULT '',
  owner_pid INTEGER,
  owner_start TEXT,
  resume_state TEXT NOT NULL DEFAULT '',
  resume_input TEXT,
  resume_variables TEXT,
  UNIQUE (state_machine, name)
);
CREATE INDEX IF NOT EXISTS flow_executions_start ON flow_executions(start_micros);
CREATE TABLE IF NOT EXISTS flow_events (
  execution_id TEXT NOT NULL REFERENCES flow_executions(id),
  id INTEGER NOT NULL,
  previous_id INTEGER NOT NULL,
  ts_micros INTEGER NOT NULL,
  type TEXT NOT NULL,
  details TEXT,
  PRIMARY KEY (execution_id, id)
) WITHOUT ROWID;
)sql";

constexpr const char* kColumns =
    "id, name, state_machine, definition, definition_path, input, status, output, error, cause, "
    "start_micros, stop_micros, redrive_count, mock_case, resume_state, resume_input, "
    "resume_variables";

// The start time of process `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), so a
// reused pid is not mistaken for the original owner. Empty when the process does not exist.
std::string ProcessStart(int64_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  if (!in) return "";
  std::string line;
  std::getline(in, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  // Fields after the command: state(3) ... starttime(22).
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

Json ParseOr(const std::string& text, Json fallback) {
  Json j = Json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

ExecutionRecord ReadRecord(const SqliteStmt& st) {
  ExecutionRecord r;
  r.id = st.Text(0);
  r.name = st.Text(1);
  r.state_machine = st.Text(2);
  r.definition = st.Text(3);
  r.definition_path = st.Text(4);
  r.input = ParseOr(st.Text(5), Json());
  r.status = st.Text(6);
  if (!st.IsNull(7)) r.output = ParseOr(st.Text(7), Json());
  if (!st.IsNull(8)) r.error = st.Text(8);
  if (!st.IsNull(9)) r.cause = st.Text(9);
  r.start_micros = st.Int(10);
  if (!st.IsNull(11)) r.stop_micros = st.Int(11);
  r.redrive_count = st.Int(12);
  r.mock_case = st.Text(13);
  r.resume_state = st.Text(14);
  r.resume_input = st.IsNull(15) ? Json() : ParseOr(st.Text(15), Json());
  r.resume_variables = st.IsNull(16) ? Json::object() : ParseOr(st.Text(16), Json::object());
  return r;
}

// Buffers events and writes them with the checkpoint in one transaction.
class StoreSink final : public EventSink {
 public:
  StoreSink(SqliteDb& db, std::string execution_id)
      : db_(db), execution_id_(std::move(execution_id)) {}

  Status Append(const Event& event) override {
    pending_.push_back(Pending{event.id, event.previous_event_id, event.timestamp_micros,
                               event.type,
                               event.details.is_null() ? std::string() : DumpJson(event.details)});
    // Long-running states (a Map over many items) still reach disk regularly.
    if (pending_.size() >= 4096) return Write(nullptr);
    return Status::Ok();
  }

  Status Checkpoint(const std::string& state, const Json& input, const Json& variables) override {
    CheckpointData c{state, DumpJson(input), DumpJson(variables)};
    return Write(&c);
  }

  Status Flush() override { return Write(nullptr); }

 private:
  struct Pending {
    int64_t id, previous_id, ts;
    std::string type, details;
  };
  struct CheckpointData {
    std::string state, input, variables;
  };

  Status Write(const CheckpointData* c) {
    if (pending_.empty() && c == nullptr) return Status::Ok();
    ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
    if (!insert_) {
      ENGAGE_ASSIGN_OR_RETURN(
          SqliteStmt ins,
          db_.Prepare("INSERT OR REPLACE INTO flow_events (execution_id, id, previous_id, "
                      "ts_micros, type, details) VALUES (?, ?, ?, ?, ?, ?)"));
      insert_ = std::make_unique<SqliteStmt>(std::move(ins));
    }
    for (const Pending& p : pending_) {
      insert_->Reset();
      insert_->Bind(1, execution_id_).Bind(2, p.id).Bind(3, p.previous_id).Bind(4, p.ts);
      insert_->Bind(5, p.type);
      if (p.details.empty()) {
        insert_->BindNull(6);
      } else {
        insert_->Bind(6, p.details);
      }
      ENGAGE_RETURN_IF_ERROR(insert_->Run());
    }
    if (c != nullptr) {
      ENGAGE_ASSIGN_OR_RETURN(
          SqliteStmt up,
          db_.Prepare("UPDATE flow_executions SET resume_state = ?, resume_input = ?, "
                      "resume_variables = ? WHERE id = ?"));
      up.Bind(1, c->state).Bind(2, c->input).Bind(3, c->variables).Bind(4, execution_id_);
      ENGAGE_RETURN_IF_ERROR(up.Run());
    }
    ENGAGE_RETURN_IF_ERROR(txn->Commit());
    pending_.clear();
    return Status::Ok();
  }

  SqliteDb& db_;
  std::string execution_id_;
  std::vector<Pending> pending_;
  std::unique_ptr<SqliteStmt> insert_;
};

}  // namespace

Json ExecutionRecord::ToJson() const {
  Json j = Json::object();
  j["executionId"] = id;
  j["name"] = name;
  j["stateMachine"] = state_machine;
  j["status"] = status;
  j["startDate"] = FormatIsoUtc(start_micros);
  if (stop_micros) j["stopDate"] = FormatIsoUtc(*stop_micros);
  j["input"] = input;
  if (output) j["output"] = *output;
  if (error) j["error"] = *error;
  if (cause) j["cause"] = *cause;
  j["redriveCount"] = redrive_count;
  if (!definition_path.empty()) j["definitionPath"] = definition_path;
  if (!mock_case.empty()) j["mockCase"] = mock_case;
  return j;
}

Result<std::unique_ptr<ExecutionStore>> ExecutionStore::Open(const std::string& meta_db_path,
                                                             const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_path));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  return std::unique_ptr<ExecutionStore>(new ExecutionStore(std::move(db), clock));
}

Result<ExecutionRecord> ExecutionStore::Create(const CreateExecutionRequest& req) {
  ExecutionRecord r;
  r.id = NewId(clock_);
  r.name = req.name.empty() ? r.id : req.name;
  r.state_machine = req.state_machine;
  r.definition = req.definition;
  r.definition_path = req.definition_path;
  r.input = req.input;
  r.start_micros = clock_.NowMicros();
  r.mock_case = req.mock_case;
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt exists,
      db_.Prepare("SELECT 1 FROM flow_executions WHERE state_machine = ? AND name = ?"));
  exists.Bind(1, r.state_machine).Bind(2, r.name);
  ENGAGE_ASSIGN_OR_RETURN(bool dup, exists.Step());
  if (dup) {
    return AlreadyExistsError(
        fmt::format("an execution named '{}' already exists for state machine '{}' "
                    "(names are unique per state machine, as in AWS)",
                    r.name, r.state_machine));
  }
  int64_t pid = static_cast<int64_t>(getpid());
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt ins,
      db_.Prepare("INSERT INTO flow_executions (id, name, state_machine, definition, "
                  "definition_path, input, status, start_micros, mock_case, owner_pid, "
                  "owner_start) VALUES (?, ?, ?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?)"));
  ins.Bind(1, r.id).Bind(2, r.name).Bind(3, r.state_machine).Bind(4, r.definition);
  ins.Bind(5, r.definition_path).Bind(6, DumpJson(r.input)).Bind(7, r.start_micros);
  ins.Bind(8, r.mock_case).Bind(9, pid).Bind(10, ProcessStart(pid));
  ENGAGE_RETURN_IF_ERROR(ins.Run());
  return r;
}

std::unique_ptr<EventSink> ExecutionStore::Sink(const std::string& execution_id) {
  return std::make_unique<StoreSink>(db_, execution_id);
}

Status ExecutionStore::Finish(const std::string& execution_id, const ExecutionResult& result) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt up,
      db_.Prepare("UPDATE flow_executions SET status = ?, output = ?, error = ?, cause = ?, "
                  "stop_micros = ?, owner_pid = NULL WHERE id = ?"));
  up.Bind(1, std::string(ExecutionStatusName(result.status)));
  if (result.status == ExecutionStatus::kSucceeded) {
    up.Bind(2, DumpJson(result.output));
  } else {
    up.BindNull(2);
  }
  if (result.error) {
    up.Bind(3, *result.error);
  } else {
    up.BindNull(3);
  }
  if (result.cause) {
    up.Bind(4, *result.cause);
  } else {
    up.BindNull(4);
  }
  up.Bind(5, clock_.NowMicros()).Bind(6, execution_id);
  ENGAGE_RETURN_IF_ERROR(up.Run());
  if (db_.Changes() == 0) {
    return NotFoundError(fmt::format("execution '{}' does not exist", execution_id));
  }
  return Status::Ok();
}

Result<RedrivePoint> ExecutionStore::BeginRedrive(const std::string& execution_id) {
  ENGAGE_ASSIGN_OR_RETURN(ExecutionRecord r, Get(execution_id));
  if (r.status != "FAILED" && r.status != "TIMED_OUT" && r.status != "ABORTED") {
    return FailedPreconditionError(fmt::format(
        "execution '{}' is {}; only FAILED, TIMED_OUT or ABORTED executions can be redriven",
        r.name, r.status));
  }
  if (r.resume_state.empty()) {
    return FailedPreconditionError(
        fmt::format("execution '{}' failed before its first state; start a new execution", r.name));
  }
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt last,
                          db_.Prepare("SELECT COALESCE(MAX(id), 0) FROM flow_events WHERE "
                                      "execution_id = ?"));
  last.Bind(1, r.id);
  ENGAGE_ASSIGN_OR_RETURN(bool row, last.Step());
  RedrivePoint p;
  p.state = r.resume_state;
  p.input = r.resume_input;
  p.variables = r.resume_variables;
  p.redrive_count = r.redrive_count + 1;
  p.next_event_id = (row ? last.Int(0) : 0) + 1;
  int64_t pid = static_cast<int64_t>(getpid());
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt up,
      db_.Prepare("UPDATE flow_executions SET status = 'RUNNING', redrive_count = ?, output = "
                  "NULL, error = NULL, cause = NULL, stop_micros = NULL, owner_pid = ?, "
                  "owner_start = ? WHERE id = ? AND status = ?"));
  up.Bind(1, p.redrive_count).Bind(2, pid).Bind(3, ProcessStart(pid)).Bind(4, r.id);
  up.Bind(5, r.status);
  ENGAGE_RETURN_IF_ERROR(up.Run());
  if (db_.Changes() == 0) {
    return AbortedError(fmt::format("execution '{}' changed while starting the redrive", r.name));
  }
  return p;
}

Result<ExecutionRecord> ExecutionStore::Get(const std::string& id_or_name) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare(fmt::format("SELECT {} FROM flow_executions WHERE id = ? OR name = ? ORDER BY "
                              "(id = ?) DESC, start_micros DESC LIMIT 1",
                              kColumns)));
  st.Bind(1, id_or_name).Bind(2, id_or_name).Bind(3, id_or_name);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    return NotFoundError(
        fmt::format("no execution with id or name '{}' (see engage flow list)", id_or_name));
  }
  return ReadRecord(st);
}

Result<std::vector<ExecutionRecord>> ExecutionStore::List(int64_t limit,
                                                          const std::string& status) {
  std::string sql = fmt::format(
      "SELECT {} FROM flow_executions {} ORDER BY start_micros DESC, id "
      "DESC LIMIT ?",
      kColumns, status.empty() ? "" : "WHERE status = ?");
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st, db_.Prepare(sql));
  int idx = 1;
  if (!status.empty()) st.Bind(idx++, status);
  st.Bind(idx, limit);
  std::vector<ExecutionRecord> out;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(ReadRecord(st));
  }
  return out;
}

Result<std::vector<Event>> ExecutionStore::History(const std::string& execution_id) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("SELECT id, previous_id, ts_micros, type, details FROM flow_events WHERE "
                  "execution_id = ? ORDER BY id"));
  st.Bind(1, execution_id);
  std::vector<Event> out;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Event e;
    e.id = st.Int(0);
    e.previous_event_id = st.Int(1);
    e.timestamp_micros = st.Int(2);
    e.type = st.Text(3);
    if (!st.IsNull(4)) e.details = ParseOr(st.Text(4), Json());
    out.push_back(std::move(e));
  }
  return out;
}

Result<int64_t> ExecutionStore::RecoverInterrupted() {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st, db_.Prepare("SELECT id, owner_pid, owner_start, name FROM flow_executions "
                                 "WHERE status = 'RUNNING'"));
  struct Dead {
    std::string id, name;
    int64_t pid;
  };
  std::vector<Dead> dead;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    int64_t pid = st.IsNull(1) ? 0 : st.Int(1);
    std::string start = st.Text(2);
    if (pid != 0 && ProcessStart(pid) == start && !start.empty()) continue;  // still running
    dead.push_back(Dead{st.Text(0), st.Text(3), pid});
  }
  for (const Dead& d : dead) {
    ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
    ENGAGE_ASSIGN_OR_RETURN(SqliteStmt last,
                            db_.Prepare("SELECT COALESCE(MAX(id), 0) FROM flow_events WHERE "
                                        "execution_id = ?"));
    last.Bind(1, d.id);
    ENGAGE_ASSIGN_OR_RETURN(bool row, last.Step());
    int64_t last_id = row ? last.Int(0) : 0;
    std::string cause = fmt::format(
        "The process running the execution (pid {}) stopped before it finished; the history "
        "holds every event up to #{}. Run 'engage flow redrive {}' to resume from the last "
        "state entered.",
        d.pid, last_id, d.name);
    int64_t now = clock_.NowMicros();
    ENGAGE_ASSIGN_OR_RETURN(
        SqliteStmt ev,
        db_.Prepare("INSERT INTO flow_events (execution_id, id, previous_id, ts_micros, type, "
                    "details) VALUES (?, ?, ?, ?, 'ExecutionFailed', ?)"));
    ev.Bind(1, d.id).Bind(2, last_id + 1).Bind(3, last_id).Bind(4, now);
    ev.Bind(5, DumpJson(Json{{"error", "Engage.ExecutionInterrupted"}, {"cause", cause}}));
    ENGAGE_RETURN_IF_ERROR(ev.Run());
    ENGAGE_ASSIGN_OR_RETURN(
        SqliteStmt up,
        db_.Prepare("UPDATE flow_executions SET status = 'FAILED', error = "
                    "'Engage.ExecutionInterrupted', cause = ?, stop_micros = ?, owner_pid = NULL "
                    "WHERE id = ? AND status = 'RUNNING'"));
    up.Bind(1, cause).Bind(2, now).Bind(3, d.id);
    ENGAGE_RETURN_IF_ERROR(up.Run());
    ENGAGE_RETURN_IF_ERROR(txn->Commit());
  }
  return static_cast<int64_t>(dead.size());
}

}  // namespace engage::flow
