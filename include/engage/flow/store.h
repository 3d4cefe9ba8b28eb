// Executions and their event histories, persisted in meta.db.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto store, ExecutionStore::Open(home.meta_db(), clock));
//   ENGAGE_ASSIGN_OR_RETURN(ExecutionRecord rec, store->Create(req));
//   auto sink = store->Sink(rec.id);           // pass to EngineOptions::events
//   ExecutionResult r = engine.Run(...);
//   ENGAGE_RETURN_IF_ERROR(sink->Flush());
//   ENGAGE_RETURN_IF_ERROR(store->Finish(rec.id, r));
//
// Durability: when a top-level state is entered, the events appended since the previous one
// and the redrive checkpoint go to the execution's journal (<home>/flow-journal/<id>.jsonl)
// in one write(2), which survives the process being killed. The sink commits the journalled
// events to meta.db in one transaction at most every 100 ms, before the execution blocks (a
// Wait, a Task, a retry interval) so `flow history` shows the state it is in, and at the end;
// then it empties the journal. A killed process loses at most the later events of the state
// it was running, and the checkpoint always matches the history: RecoverInterrupted() replays
// the journal first. (A power loss can lose the journal's last writes; it is not fsynced.)
// RecoverInterrupted() marks executions whose process died as FAILED
// ("Engage.ExecutionInterrupted") so they can be redriven.
//
// Thread-safety: one ExecutionStore per thread; several processes may share meta.db.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "engage/core/sqlite.h"
#include "engage/core/status.h"
#include "engage/flow/engine.h"

namespace engage::flow {

struct ExecutionRecord {
  std::string id;    // unique, e.g. "20241201T101500-3fa2b1c0"
  std::string name;  // unique per state machine
  std::string state_machine;
  std::string definition;  // the definition text the execution ran
  std::string definition_path;
  Json input;
  std::string status = "RUNNING";  // RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED
  std::optional<Json> output;
  std::optional<std::string> error, cause;
  int64_t start_micros = 0;
  std::optional<int64_t> stop_micros;
  int64_t redrive_count = 0;
  std::string mock_case;  // mock test case the execution ran with, if any
  std::string mock_path;  // mock file the execution ran with, if any (reused by redrive)
  // An EXPRESS execution (`engage flow run --type EXPRESS`): runs with EngineOptions::express
  // and cannot be redriven, as on AWS.
  bool express = false;
  // Redrive checkpoint: the top-level state last entered, its input and the variables.
  std::string resume_state;
  Json resume_input;
  Json resume_variables;

  // {"executionId", "name", "stateMachine", "status", "startDate", ...} as DescribeExecution.
  Json ToJson() const;
  // For people: one "field: value" line per field that is set.
  std::string ToText() const;
};

// Executions as a table: id, name, state machine, status, started, duration, error; and as a
// JSON array of ToJson() without the input and output (as ListExecutions).
std::string ExecutionsTable(const std::vector<ExecutionRecord>& executions);
Json ExecutionsJson(const std::vector<ExecutionRecord>& executions);
// An execution's events as a table: id, previous id, time, type, state name / error / index.
std::string HistoryTable(const std::vector<Event>& events);
// The events as a JSON array (each Event::ToJson), as GetExecutionHistory's "events".
Json HistoryJson(const std::vector<Event>& events);

struct CreateExecutionRequest {
  std::string name;  // empty: generated
  std::string state_machine;
  std::string definition;
  std::string definition_path;
  Json input;
  std::string mock_case;
  std::string mock_path;
  bool express = false;  // an EXPRESS execution (default STANDARD)
};

class ExecutionStore {
 public:
  // Opens meta.db (creating the flow tables when missing).
  static Result<std::unique_ptr<ExecutionStore>> Open(const std::string& meta_db_path,
                                                      const Clock& clock);

  // kAlreadyExists when an execution with that name exists for the state machine.
  Result<ExecutionRecord> Create(const CreateExecutionRequest& request);

  // A sink appending to the history of `execution_id`. Events are numbered by the engine.
  std::unique_ptr<EventSink> Sink(const std::string& execution_id);

  // Records the terminal result.
  Status Finish(const std::string& execution_id, const ExecutionResult& result);

  // Marks the execution RUNNING again for a redrive and returns where it resumes.
  // kFailedPrecondition unless it is FAILED, TIMED_OUT or ABORTED, and for an EXPRESS execution
  // (AWS does not redrive those).
  Result<RedrivePoint> BeginRedrive(const std::string& execution_id);
  // The same precondition, checked on a record: OK when BeginRedrive may succeed.
  static Status CheckRedrivable(const ExecutionRecord& record);

  // By id or by name (newest first when a name exists for several state machines).
  Result<ExecutionRecord> Get(const std::string& id_or_name);
  // Newest first. `status` empty: any.
  Result<std::vector<ExecutionRecord>> List(int64_t limit, const std::string& status);
  Result<std::vector<Event>> History(const std::string& execution_id);

  // How many times each state's task was invoked so far (TaskScheduled events, retries
  // included), by state name: mocks of a redriven execution continue from these counts.
  Result<std::map<std::string, int64_t>> TaskInvocations(const std::string& execution_id);

  // Executions left RUNNING by a process that no longer exists become FAILED with error
  // "Engage.ExecutionInterrupted"; returns how many.
  Result<int64_t> RecoverInterrupted();

  SqliteDb& db() { return db_; }
  const Clock& clock() const { return clock_; }

 private:
  ExecutionStore(SqliteDb db, const Clock& clock, std::string journal_dir)
      : db_(std::move(db)), clock_(clock), journal_dir_(std::move(journal_dir)) {}
  // Replays the journal of a dead execution into meta.db and removes it.
  Status ReplayJournal(const std::string& execution_id);
  SqliteDb db_;
  const Clock& clock_;
  std::string journal_dir_;  // <meta.db's directory>/flow-journal
};

}  // namespace engage::flow
