#include "engage/flow/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
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
  mock_path TEXT NOT NULL DEFAULT '',
  owner_pid INTEGER,
  owner_start TEXT,
  resume_state TEXT NOT NULL DEFAULT '',
  resume_input TEXT,
  resume_variables TEXT,
  type TEXT NOT NULL DEFAULT 'STANDARD',
  UNIQUE (state_machine, name)
);
CREATE INDEX IF NOT EXISTS flow_executions_start ON flow_executions(start_micros);
-- The history, in batches: each row holds the events one commit wrote, as a JSON array of
-- {"id", "previousEventId", "timestamp" (micros), "type", "details"} in id order. One row per
-- commit instead of one per event makes persisting the history several times cheaper; the
-- flow_events view (created in Open) shows one row per event for SQL readers.
CREATE TABLE IF NOT EXISTS flow_event_batches (
  execution_id TEXT NOT NULL REFERENCES flow_executions(id),
  first_id INTEGER NOT NULL,
  last_id INTEGER NOT NULL,
  events TEXT NOT NULL,
  PRIMARY KEY (execution_id, first_id)
);
-- The redrive checkpoint, rewritten before every top-level state: kept apart from
-- flow_executions so each write touches a small row, not one that also holds the definition and
-- the execution input. (The resume_* columns above are only read, for older databases.)
CREATE TABLE IF NOT EXISTS flow_checkpoints (
  execution_id TEXT PRIMARY KEY REFERENCES flow_executions(id),
  state TEXT NOT NULL,
  input TEXT,
  variables TEXT
);
)sql";

constexpr const char* kColumns =
    "e.id, e.name, e.state_machine, e.definition, e.definition_path, e.input, e.status, e.output, "
    "e.error, e.cause, e.start_micros, e.stop_micros, e.redrive_count, e.mock_case, "
    "COALESCE(c.state, e.resume_state), CASE WHEN c.execution_id IS NULL THEN e.resume_input ELSE "
    "c.input END, CASE WHEN c.execution_id IS NULL THEN e.resume_variables ELSE c.variables END, "
    "e.mock_path, e.type";
// Executions with their checkpoints, for kColumns.
constexpr const char* kFrom =
    "flow_executions e LEFT JOIN flow_checkpoints c ON c.execution_id = e.id";

// The start time of process `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), so a
// reused pid is not mistaken for the original owner. Empty when the process does not exist or
// is a zombie (killed but not yet reaped by its parent): either way it runs no execution.
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
    if (i == 3 && (field == "Z" || field == "X" || field == "x")) return "";
    if (i == 22) return field;
  }
  return "";
}

Json ParseOr(const std::string& text, Json fallback) {
  // Written by the engine, which keeps every value within kMaxJsonDepth; checked all the same.
  if (JsonTextDepth(text) > kMaxJsonDepth) return fallback;
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
  r.mock_path = st.Text(17);
  r.express = st.Text(18) == "EXPRESS";
  return r;
}

// An event as stored: {"id":..,"previousEventId":..,"timestamp":..,"type":"..","details":..}
// ("details" left out when null). Event types are ASL identifiers: no escaping needed.
void AppendStoredEvent(std::string* out, int64_t id, int64_t prev, int64_t ts,
                       std::string_view type, const Json& details) {
  fmt::format_to(std::back_inserter(*out),
                 R"({{"id":{},"previousEventId":{},"timestamp":{},)"
                 R"("type":"{}")",
                 id, prev, ts, type);
  if (!details.is_null()) {
    out->append(",\"details\":");
    AppendJson(out, details);
  }
  out->push_back('}');
}

// Reads a stored event; false when `j` is not one.
bool ReadStoredEvent(const Json& j, Event* e) {
  if (!j.is_object()) return false;
  auto id = j.find("id"), prev = j.find("previousEventId"), ts = j.find("timestamp"),
       type = j.find("type");
  if (id == j.end() || !id->is_number_integer() || prev == j.end() || !prev->is_number_integer() ||
      ts == j.end() || !ts->is_number_integer() || type == j.end() || !type->is_string()) {
    return false;
  }
  e->id = id->get<int64_t>();
  e->previous_event_id = prev->get<int64_t>();
  e->timestamp_micros = ts->get<int64_t>();
  e->type = type->get<std::string>();
  auto d = j.find("details");
  e->details = d == j.end() ? Json() : *d;
  return true;
}

// The journal holds one line per event ("E\t<stored event>") and per checkpoint
// ("C\t<state as a JSON string>\t<input>\t<variables>"). Events, input and variables are
// compact JSON, which never holds a raw tab or newline.
void JournalCheckpoint(std::string* out, const std::string& state, const std::string& input,
                       const std::string& variables) {
  fmt::format_to(std::back_inserter(*out), "C\t{}\t{}\t{}\n", DumpJson(Json(state)), input,
                 variables);
}

// Inserts `events` (a JSON array of stored events, ids first_id..last_id) as one batch.
Status InsertBatch(SqliteStmt& insert, const std::string& execution_id, int64_t first_id,
                   int64_t last_id, const std::string& events) {
  insert.Reset();
  insert.Bind(1, execution_id).Bind(2, first_id).Bind(3, last_id).Bind(4, events);
  return insert.Run();
}

constexpr const char* kLastEventId =
    "SELECT COALESCE(MAX(last_id), 0) FROM flow_event_batches WHERE execution_id = ?";

constexpr const char* kInsertBatch =
    "INSERT OR REPLACE INTO flow_event_batches (execution_id, first_id, last_id, events) VALUES "
    "(?, ?, ?, ?)";

// Splits a journal line into exactly `n` tab-separated fields (the last takes the rest).
bool SplitJournalLine(std::string_view line, size_t n, std::vector<std::string_view>* fields) {
  fields->clear();
  for (size_t i = 0; i + 1 < n; ++i) {
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) return false;
    fields->push_back(line.substr(0, tab));
    line.remove_prefix(tab + 1);
  }
  fields->push_back(line);
  return true;
}

// Buffers events; journals them with the checkpoint at every top-level state and commits them
// to meta.db as one batch row at most every 100 ms (see store.h). Each event is serialized once:
// the same text goes to the journal and to the batch. Statements are prepared once per sink.
class StoreSink final : public EventSink {
 public:
  StoreSink(SqliteDb& db, std::string execution_id, std::string journal_path)
      : db_(db), execution_id_(std::move(execution_id)), journal_path_(std::move(journal_path)) {}
  ~StoreSink() override {
    if (journal_fd_ >= 0) ::close(journal_fd_);
  }

  Status Append(const Event& event) override {
    size_t start = batch_.size();
    batch_.push_back(batch_.empty() ? '[' : ',');
    AppendStoredEvent(&batch_, event.id, event.previous_event_id, event.timestamp_micros,
                      event.type, event.details);
    if (batch_events_ == 0) first_id_ = event.id;
    last_id_ = event.id;
    ++batch_events_;
    journal_.append("E\t");
    journal_.append(batch_, start + 1, batch_.size() - start - 1);
    journal_.push_back('\n');
    ++unjournaled_;
    if (checkpoint_) {
      // The top-level state's "...StateEntered": the point a redrive resumes from.
      ENGAGE_RETURN_IF_ERROR(Journal());
      if (std::chrono::steady_clock::now() - last_commit_ >= kCommitEvery) return Write();
      return Status::Ok();
    }
    // Long-running states (a Map over many items) still reach disk regularly.
    if (unjournaled_ >= 4096) {
      ENGAGE_RETURN_IF_ERROR(Journal());
      if (std::chrono::steady_clock::now() - last_commit_ >= kCommitEvery) return Write();
    }
    return Status::Ok();
  }

  Status Checkpoint(const std::string& state, const Json& input, const std::string& input_json,
                    const Json& variables) override {
    (void)input;
    checkpoint_ = CheckpointData{state, input_json, DumpJson(variables)};
    return Status::Ok();
  }

  Status Sync() override { return Write(); }

  Status Flush() override {
    ENGAGE_RETURN_IF_ERROR(Write());
    if (journal_fd_ >= 0) {
      ::close(journal_fd_);
      journal_fd_ = -1;
      ::unlink(journal_path_.c_str());
    }
    return Status::Ok();
  }

 private:
  static constexpr std::chrono::milliseconds kCommitEvery{100};

  struct CheckpointData {
    std::string state, input, variables;
  };

  // Appends the events not journalled yet, and the checkpoint, in one write.
  Status Journal() {
    if (checkpoint_) {
      JournalCheckpoint(&journal_, checkpoint_->state, checkpoint_->input, checkpoint_->variables);
      committed_checkpoint_ = std::move(checkpoint_);
      checkpoint_.reset();
    }
    unjournaled_ = 0;
    if (journal_.empty()) return Status::Ok();
    if (journal_fd_ < 0) {
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(journal_path_).parent_path(), ec);
      journal_fd_ = ::open(journal_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (journal_fd_ < 0) {
        return UnavailableError(fmt::format("cannot open the execution journal '{}': {}",
                                            journal_path_, std::strerror(errno)));
      }
    }
    const char* data = journal_.data();
    size_t left = journal_.size();
    while (left > 0) {
      ssize_t n = ::write(journal_fd_, data, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return UnavailableError(fmt::format("cannot write the execution journal '{}': {}",
                                            journal_path_, std::strerror(errno)));
      }
      data += n;
      left -= static_cast<size_t>(n);
    }
    journal_.clear();
    return Status::Ok();
  }

  Status Prepare() {
    if (insert_) return Status::Ok();
    ENGAGE_ASSIGN_OR_RETURN(begin_, db_.Prepare("BEGIN IMMEDIATE"));
    ENGAGE_ASSIGN_OR_RETURN(commit_, db_.Prepare("COMMIT"));
    ENGAGE_ASSIGN_OR_RETURN(
        checkpoint_stmt_,
        db_.Prepare("INSERT INTO flow_checkpoints (execution_id, state, input, variables) VALUES "
                    "(?, ?, ?, ?) ON CONFLICT (execution_id) DO UPDATE SET state = "
                    "excluded.state, input = excluded.input, variables = excluded.variables"));
    ENGAGE_ASSIGN_OR_RETURN(SqliteStmt ins, db_.Prepare(kInsertBatch));
    insert_ = std::make_unique<SqliteStmt>(std::move(ins));
    return Status::Ok();
  }

  // Commits the buffered events and the latest checkpoint, then empties the journal.
  Status Write() {
    if (checkpoint_) {
      committed_checkpoint_ = std::move(checkpoint_);
      checkpoint_.reset();
    }
    if (batch_events_ == 0 && !committed_checkpoint_) return Status::Ok();
    ENGAGE_RETURN_IF_ERROR(Prepare());
    begin_.Reset();
    ENGAGE_RETURN_IF_ERROR(begin_.Run());
    Status s = WriteRows();
    if (s.ok()) {
      commit_.Reset();
      s = commit_.Run();
    }
    if (!s.ok()) {
      if (!batch_.empty() && batch_.back() == ']') batch_.pop_back();  // added by WriteRows
      (void)db_.Exec("ROLLBACK");
      return s;
    }
    batch_.clear();
    batch_events_ = 0;
    journal_.clear();
    unjournaled_ = 0;
    committed_checkpoint_.reset();
    last_commit_ = std::chrono::steady_clock::now();
    if (journal_fd_ >= 0 && ::ftruncate(journal_fd_, 0) != 0) {
      return UnavailableError(fmt::format("cannot empty the execution journal '{}': {}",
                                          journal_path_, std::strerror(errno)));
    }
    return Status::Ok();
  }

  // The batch and the checkpoint, inside Write's transaction.
  Status WriteRows() {
    if (batch_events_ > 0) {
      batch_.push_back(']');
      ENGAGE_RETURN_IF_ERROR(InsertBatch(*insert_, execution_id_, first_id_, last_id_, batch_));
    }
    if (committed_checkpoint_) {
      const CheckpointData& c = *committed_checkpoint_;
      checkpoint_stmt_.Reset();
      checkpoint_stmt_.Bind(1, execution_id_).Bind(2, c.state).Bind(3, c.input);
      checkpoint_stmt_.Bind(4, c.variables);
      ENGAGE_RETURN_IF_ERROR(checkpoint_stmt_.Run());
    }
    return Status::Ok();
  }

  SqliteDb& db_;
  std::string execution_id_;
  std::string journal_path_;
  int journal_fd_ = -1;
  std::string batch_;  // "[e1,e2,..." : the events not committed yet
  int64_t batch_events_ = 0, first_id_ = 0, last_id_ = 0;
  std::string journal_;  // their journal lines not written yet
  size_t unjournaled_ = 0;
  std::optional<CheckpointData> checkpoint_;            // journalled with the next event
  std::optional<CheckpointData> committed_checkpoint_;  // journalled, not yet in meta.db
  std::unique_ptr<SqliteStmt> insert_;
  SqliteStmt begin_, commit_, checkpoint_stmt_;
  std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::now();
};

// meta.db files from before the batches kept a row per event in a table flow_events: their
// events become one batch per execution, and flow_events becomes a view of the batches.
Status MigrateEventRows(SqliteDb& db) {
  auto kind = [&db]() -> Result<std::string> {
    ENGAGE_ASSIGN_OR_RETURN(
        SqliteStmt st, db.Prepare("SELECT type FROM sqlite_master WHERE name = 'flow_events'"));
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    return row ? st.Text(0) : std::string();
  };
  ENGAGE_ASSIGN_OR_RETURN(std::string before, kind());
  if (before == "view") return Status::Ok();
  ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db));
  // Another process may have migrated meanwhile: look again inside the transaction.
  ENGAGE_ASSIGN_OR_RETURN(std::string now, kind());
  if (now == "view") return txn->Commit();
  if (now == "table") {
    ENGAGE_RETURN_IF_ERROR(db.Exec(R"sql(
INSERT OR REPLACE INTO flow_event_batches (execution_id, first_id, last_id, events)
SELECT execution_id, MIN(id), MAX(id),
       json_group_array(json_object('id', id, 'previousEventId', previous_id,
                                    'timestamp', ts_micros, 'type', type,
                                    'details', json(COALESCE(details, 'null'))))
FROM (SELECT * FROM flow_events ORDER BY execution_id, id)
GROUP BY execution_id;
DROP TABLE flow_events;
)sql"));
  }
  ENGAGE_RETURN_IF_ERROR(db.Exec(R"sql(
CREATE VIEW flow_events AS
SELECT b.execution_id AS execution_id,
       json_extract(e.value, '$.id') AS id,
       json_extract(e.value, '$.previousEventId') AS previous_id,
       json_extract(e.value, '$.timestamp') AS ts_micros,
       json_extract(e.value, '$.type') AS type,
       json_extract(e.value, '$.details') AS details
FROM flow_event_batches b, json_each(b.events) e;
)sql"));
  return txn->Commit();
}

std::string JournalPath(const std::string& dir, const std::string& execution_id) {
  return dir + "/" + execution_id + ".jsonl";
}

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
  j["type"] = express ? "EXPRESS" : "STANDARD";
  if (!express) j["redriveCount"] = redrive_count;
  if (!definition_path.empty()) j["definitionPath"] = definition_path;
  if (!mock_case.empty()) j["mockCase"] = mock_case;
  if (!mock_path.empty()) j["mockPath"] = mock_path;
  return j;
}

Result<std::unique_ptr<ExecutionStore>> ExecutionStore::Open(const std::string& meta_db_path,
                                                             const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_path));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  // An execution commits once per top-level state. Checkpointing the WAL into the database
  // every 4000 pages (16 MiB) instead of SQLite's 1000 makes the two fsyncs of each checkpoint
  // rarer, which made the history-persisting benchmark (bench/flow) ~40% faster. Durability is
  // unchanged: commits do not wait for checkpoints (WAL, synchronous=NORMAL), and the WAL is
  // removed when the last connection closes. The setting applies to this connection only.
  ENGAGE_RETURN_IF_ERROR(db.Exec("PRAGMA wal_autocheckpoint=4000"));
  // meta.db files from before mock_path or type existed: add the columns.
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt cols, db.Prepare("PRAGMA table_info(flow_executions)"));
  bool has_mock_path = false, has_type = false;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, cols.Step());
    if (!row) break;
    has_mock_path |= cols.Text(1) == "mock_path";
    has_type |= cols.Text(1) == "type";
  }
  if (!has_mock_path) {
    ENGAGE_RETURN_IF_ERROR(
        db.Exec("ALTER TABLE flow_executions ADD COLUMN mock_path TEXT NOT NULL DEFAULT ''"));
  }
  if (!has_type) {
    ENGAGE_RETURN_IF_ERROR(
        db.Exec("ALTER TABLE flow_executions ADD COLUMN type TEXT NOT NULL DEFAULT 'STANDARD'"));
  }
  ENGAGE_RETURN_IF_ERROR(MigrateEventRows(db));
  std::string journal_dir =
      (std::filesystem::path(meta_db_path).parent_path() / "flow-journal").string();
  return std::unique_ptr<ExecutionStore>(
      new ExecutionStore(std::move(db), clock, std::move(journal_dir)));
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
  r.mock_path = req.mock_path;
  r.express = req.express;
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
                  "owner_start, mock_path, type) VALUES (?, ?, ?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?, "
                  "?, ?)"));
  ins.Bind(1, r.id).Bind(2, r.name).Bind(3, r.state_machine).Bind(4, r.definition);
  ins.Bind(5, r.definition_path).Bind(6, DumpJson(r.input)).Bind(7, r.start_micros);
  ins.Bind(8, r.mock_case).Bind(9, pid).Bind(10, ProcessStart(pid)).Bind(11, r.mock_path);
  ins.Bind(12, std::string(r.express ? "EXPRESS" : "STANDARD"));
  ENGAGE_RETURN_IF_ERROR(ins.Run());
  return r;
}

std::unique_ptr<EventSink> ExecutionStore::Sink(const std::string& execution_id) {
  return std::make_unique<StoreSink>(db_, execution_id, JournalPath(journal_dir_, execution_id));
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
  // The sink empties and removes the journal when flushed; a run that stopped on an error
  // before flushing must not leave one behind for a finished execution.
  std::error_code ec;
  std::filesystem::remove(JournalPath(journal_dir_, execution_id), ec);
  return Status::Ok();
}

Status ExecutionStore::CheckRedrivable(const ExecutionRecord& r) {
  if (r.express) {
    // AWS: RedriveExecution "is not supported by EXPRESS state machines".
    return FailedPreconditionError(
        fmt::format("execution '{}' is an EXPRESS execution, and AWS does not redrive EXPRESS "
                    "executions; start a new execution",
                    r.name));
  }
  if (r.status != "FAILED" && r.status != "TIMED_OUT" && r.status != "ABORTED") {
    return FailedPreconditionError(fmt::format(
        "execution '{}' is {}; only FAILED, TIMED_OUT or ABORTED executions can be redriven",
        r.name, r.status));
  }
  if (r.resume_state.empty()) {
    return FailedPreconditionError(
        fmt::format("execution '{}' failed before its first state; start a new execution", r.name));
  }
  return Status::Ok();
}

Result<RedrivePoint> ExecutionStore::BeginRedrive(const std::string& execution_id) {
  ENGAGE_ASSIGN_OR_RETURN(ExecutionRecord r, Get(execution_id));
  ENGAGE_RETURN_IF_ERROR(CheckRedrivable(r));
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt last, db_.Prepare(kLastEventId));
  last.Bind(1, r.id);
  ENGAGE_ASSIGN_OR_RETURN(bool row, last.Step());
  RedrivePoint p;
  p.state = r.resume_state;
  p.input = r.resume_input;
  p.variables = r.resume_variables;
  p.redrive_count = r.redrive_count + 1;
  p.next_event_id = (row ? last.Int(0) : 0) + 1;
  {
    // A Map resumed at keeps the outputs of its iterations that succeeded (see
    // SucceededMapIterations); they are read from the history, which holds them already.
    ENGAGE_ASSIGN_OR_RETURN(std::vector<Event> history, History(r.id));
    p.succeeded_iterations = SucceededMapIterations(history, p.state);
  }
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
      db_.Prepare(fmt::format("SELECT {} FROM {} WHERE e.id = ? OR e.name = ? ORDER BY "
                              "(e.id = ?) DESC, e.start_micros DESC LIMIT 1",
                              kColumns, kFrom)));
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
  std::string sql =
      fmt::format("SELECT {} FROM {} {} ORDER BY e.start_micros DESC, e.id DESC LIMIT ?", kColumns,
                  kFrom, status.empty() ? "" : "WHERE e.status = ?");
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
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          db_.Prepare("SELECT events FROM flow_event_batches WHERE execution_id = "
                                      "? ORDER BY first_id"));
  st.Bind(1, execution_id);
  std::vector<Event> out;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Json batch = Json::parse(st.Text(0), nullptr, false);
    if (!batch.is_array()) {
      return DataLossError(fmt::format(
          "the history of execution '{}' in meta.db is damaged (a batch is not a JSON array)",
          execution_id));
    }
    for (const Json& j : batch) {
      Event e;
      if (!ReadStoredEvent(j, &e)) {
        return DataLossError(
            fmt::format("the history of execution '{}' in meta.db is damaged (an event lacks id, "
                        "previousEventId, timestamp or type)",
                        execution_id));
      }
      out.push_back(std::move(e));
    }
  }
  return out;
}

Result<std::map<std::string, int64_t>> ExecutionStore::TaskInvocations(
    const std::string& execution_id) {
  ENGAGE_ASSIGN_OR_RETURN(std::vector<Event> events, History(execution_id));
  std::map<int64_t, size_t> by_id;
  for (size_t i = 0; i < events.size(); ++i) by_id[events[i].id] = i;
  std::map<std::string, int64_t> out;
  for (const Event& e : events) {
    if (e.type != "TaskScheduled") continue;
    // Follow previousEventId back to the TaskStateEntered of this attempt's state (retries
    // chain through the failed attempts).
    int64_t prev = e.previous_event_id;
    for (size_t steps = 0; steps < events.size(); ++steps) {
      auto it = by_id.find(prev);
      if (it == by_id.end()) break;
      const Event& p = events[it->second];
      if (p.type == "TaskStateEntered") {
        if (p.details.is_object() && p.details.contains("name") && p.details["name"].is_string()) {
          ++out[p.details["name"].get<std::string>()];
        }
        break;
      }
      if (p.previous_event_id >= p.id) break;
      prev = p.previous_event_id;
    }
  }
  return out;
}

Status ExecutionStore::ReplayJournal(const std::string& execution_id) {
  std::string path = JournalPath(journal_dir_, execution_id);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Ok();  // nothing journalled since the last commit
  ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
  // Events already committed (the process died between the commit and emptying the journal)
  // are not added twice.
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt last, db_.Prepare(kLastEventId));
  last.Bind(1, execution_id);
  ENGAGE_ASSIGN_OR_RETURN(bool has_last, last.Step());
  int64_t committed = has_last ? last.Int(0) : 0;
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt cp,
      db_.Prepare("INSERT INTO flow_checkpoints (execution_id, state, input, variables) VALUES "
                  "(?, ?, ?, ?) ON CONFLICT (execution_id) DO UPDATE SET state = "
                  "excluded.state, input = excluded.input, variables = excluded.variables"));
  std::string batch;
  int64_t first_id = 0, last_id = 0;
  std::string line;
  std::vector<std::string_view> f;
  // A torn last line (the process died inside write) ends the replay: everything before it
  // counts.
  while (std::getline(in, line)) {
    std::string_view l(line);
    if (l.rfind("E\t", 0) == 0) {
      Json j = Json::parse(l.substr(2), nullptr, false);
      Event e;
      if (!ReadStoredEvent(j, &e)) break;
      if (e.id <= committed || e.id <= last_id) continue;
      if (first_id == 0) first_id = e.id;
      last_id = e.id;
      batch.push_back(batch.empty() ? '[' : ',');
      batch.append(l.substr(2));
    } else if (l.rfind("C\t", 0) == 0 && SplitJournalLine(l.substr(2), 3, &f)) {
      Json state = Json::parse(f[0], nullptr, false);
      if (!state.is_string() || Json::parse(f[1], nullptr, false).is_discarded() ||
          Json::parse(f[2], nullptr, false).is_discarded()) {
        break;
      }
      cp.Reset();
      cp.Bind(1, execution_id).Bind(2, state.get<std::string>());
      cp.Bind(3, std::string(f[1])).Bind(4, std::string(f[2]));
      ENGAGE_RETURN_IF_ERROR(cp.Run());
    } else {
      break;
    }
  }
  if (!batch.empty()) {
    batch.push_back(']');
    ENGAGE_ASSIGN_OR_RETURN(SqliteStmt ins, db_.Prepare(kInsertBatch));
    ENGAGE_RETURN_IF_ERROR(InsertBatch(ins, execution_id, first_id, last_id, batch));
  }
  ENGAGE_RETURN_IF_ERROR(txn->Commit());
  std::error_code ec;
  std::filesystem::remove(path, ec);
  return Status::Ok();
}

Result<int64_t> ExecutionStore::RecoverInterrupted() {
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          db_.Prepare("SELECT id, owner_pid, owner_start, name, type FROM "
                                      "flow_executions WHERE status = 'RUNNING'"));
  struct Dead {
    std::string id, name;
    int64_t pid;
    bool express;
  };
  std::vector<Dead> dead;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    int64_t pid = st.IsNull(1) ? 0 : st.Int(1);
    std::string start = st.Text(2);
    if (pid != 0 && ProcessStart(pid) == start && !start.empty()) continue;  // still running
    dead.push_back(Dead{st.Text(0), st.Text(3), pid, st.Text(4) == "EXPRESS"});
  }
  for (const Dead& d : dead) {
    ENGAGE_RETURN_IF_ERROR(ReplayJournal(d.id));
    ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
    ENGAGE_ASSIGN_OR_RETURN(SqliteStmt last, db_.Prepare(kLastEventId));
    last.Bind(1, d.id);
    ENGAGE_ASSIGN_OR_RETURN(bool row, last.Step());
    int64_t last_id = row ? last.Int(0) : 0;
    std::string cause = fmt::format(
        "The process running the execution (pid {}) stopped before it finished; the history "
        "holds every event up to #{}. {}",
        d.pid, last_id,
        d.express ? "It was an EXPRESS execution, which cannot be redriven: start a new one."
                  : fmt::format("Run 'engage flow redrive {}' to resume from the last state "
                                "entered.",
                                d.name));
    int64_t now = clock_.NowMicros();
    std::string failed = "[";
    AppendStoredEvent(&failed, last_id + 1, last_id, now, "ExecutionFailed",
                      Json{{"error", "Engage.ExecutionInterrupted"}, {"cause", cause}});
    failed.push_back(']');
    ENGAGE_ASSIGN_OR_RETURN(SqliteStmt ev, db_.Prepare(kInsertBatch));
    ENGAGE_RETURN_IF_ERROR(InsertBatch(ev, d.id, last_id + 1, last_id + 1, failed));
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
