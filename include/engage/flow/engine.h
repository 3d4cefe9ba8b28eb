// The ASL interpreter: runs a parsed StateMachine to a terminal state with AWS Step Functions
// semantics, emitting the execution history as AWS event types.
//
//   Engine engine(options);
//   ExecutionResult r = engine.Run(*machine, input, "my-run");
//   if (r.status == ExecutionStatus::kSucceeded) Use(r.output);
//
// Tasks are delegated to a TaskRunner (Engage steps, local commands, mocks). Time comes from
// the injected Clock and waits go through `sleep`, so tests can use a virtual clock.
//
// Thread-safety: an Engine runs one execution at a time per Run call; several Run calls on
// different Engine objects may proceed concurrently. The EventSink is called from the thread
// running the execution.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "engage/flow/definition.h"

namespace engage::flow {

// AWS's maximum duration of an Express Workflow execution: five minutes.
inline constexpr int64_t kMaxExpressSeconds = 300;

enum class ExecutionStatus { kRunning, kSucceeded, kFailed, kTimedOut, kAborted };
const char* ExecutionStatusName(ExecutionStatus s);  // "SUCCEEDED", ...

// One history event, shaped like AWS GetExecutionHistory's entries.
struct Event {
  int64_t id = 0;
  int64_t previous_event_id = 0;
  int64_t timestamp_micros = 0;
  std::string type;  // e.g. "PassStateEntered"
  Json details;      // the "...EventDetails" object
  // The AWS member name for `details`, e.g. "stateEnteredEventDetails".
  std::string DetailsKey() const;
  Json ToJson() const;  // {"id", "previousEventId", "timestamp", "type", "<x>EventDetails"}
};

// Receives every event in order. Return a non-OK Status to abort the execution (e.g. the
// history store failed): the run then ends as kAborted with that message.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual Status Append(const Event& event) = 0;
  // Called before each top-level state runs, with its raw input and the variables visible
  // then: where a redrive resumes. Sinks that persist should make everything appended so far
  // durable here.
  // Makes every appended event durable; called when the execution stops.
  virtual Status Flush() { return Status::Ok(); }
  // Called before the execution blocks (a Wait, a retry interval, a Task): make every event
  // appended so far visible to readers of the history.
  virtual Status Sync() { return Status::Ok(); }
  // `input_json` is DumpJson(input), so a sink that persists it need not serialize it again.
  virtual Status Checkpoint(const std::string& state, const Json& input,
                            const std::string& input_json, const Json& variables) {
    (void)state;
    (void)input;
    (void)input_json;
    (void)variables;
    return Status::Ok();
  }
};

// An error raised by a task, with its ASL error name and cause.
struct TaskError {
  std::string error;
  std::string cause;
};

struct TaskRequest {
  std::string state_name;
  std::string resource;
  Json parameters;  // after Parameters/Arguments
  std::optional<int64_t> timeout_seconds;
  std::optional<int64_t> heartbeat_seconds;
  const Json* context = nullptr;  // the context object
  // True once the task should end early: its Map iteration or Parallel branch was stopped
  // because another one failed, or the execution was stopped. A runner that can (a local
  // command) polls it and ends the task; the engine then records the task as aborted.
  std::function<bool()> stopped;
};

// Runs Task states. Returns the task result or a TaskError (retriable/catchable by name).
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  // The resource type recorded in TaskScheduled events ("lambda", "engage", ...).
  virtual std::string ResourceType(const std::string& resource) const;
  virtual std::variant<Json, TaskError> Run(const TaskRequest& request) = 0;
};

struct ExecutionResult {
  ExecutionStatus status = ExecutionStatus::kRunning;
  Json output;                       // SUCCEEDED
  std::optional<std::string> error;  // FAILED: nullopt when the definition gave none
  std::optional<std::string> cause;
  // For redrive: the state that failed at the top level and the input it was entered with.
  std::string failed_state;
  Json failed_state_input;
  Json ToJson() const;  // {"status", "output"|"error","cause"}
};

struct EngineOptions {
  const Clock* clock = nullptr;  // nullptr: SystemClock::Default()
  // Blocks for `micros` (Wait states, retry intervals); nullptr: real sleep.
  std::function<void(int64_t micros)> sleep;
  TaskRunner* tasks = nullptr;  // nullptr: every Task fails with States.TaskFailed
  EventSink* events = nullptr;  // nullptr: history is not kept
  std::atomic<bool>* cancel = nullptr;
  // Identity used for the context object and ARNs.
  std::string region = "local";
  std::string account = "000000000000";
  std::string state_machine_name = "StateMachine";
  std::string role_arn = "arn:aws:iam::000000000000:role/engage-local";
  // EXPRESS workflow semantics, as AWS runs an Express execution: its ARN (the context object's
  // Execution.Id) is arn:aws:states:<region>:<account>:express:<machine>:<name>:<execution_id>,
  // the context has no Execution.RedriveCount, it runs at most five minutes (AWS's limit for
  // Express Workflows; a longer run times out with States.Timeout), and it cannot be redriven
  // (Redrive fails it at once). ExpressProblems (definition.h) lists what AWS refuses in an
  // EXPRESS definition.
  bool express = false;
  // The execution's id, the last part of an EXPRESS execution's ARN (AWS puts a generated id
  // there). Empty: one is generated.
  std::string execution_id;
  // Payload size limit per state input/output, as AWS enforces (256 KiB): a bigger state
  // output, or a JSONPath/JSONata result that would be bigger, fails the state with
  // States.DataLimitExceeded.
  int64_t max_payload_bytes = 262144;
  // AWS's history quota: the execution fails with States.Runtime ("The execution reached the
  // maximum number of history events (25000).") when an event other than ExecutionSucceeded
  // would get this id; that ExecutionFailed event is the last one. <= 0: no limit.
  int64_t max_history_events = 25000;
  // AWS's maximum execution duration (one year for standard workflows): an execution still
  // running then times out (ExecutionTimedOut), as with the state machine's TimeoutSeconds.
  // <= 0: no limit.
  int64_t max_execution_seconds = 31536000;
  // Threads a Map state may use for iterations that run Task or Wait states (bounded further
  // by its MaxConcurrency). 1 runs every iteration inline, in order: deterministic histories
  // and mock invocation order, which tests and --mock runs want. The CLI uses 40 (AWS's
  // effective inline Map concurrency) unless mocks are loaded.
  int map_threads = 1;
  // JSONata evaluation guard.
  jsonata::EvalOptions jsonata;
  // The local stand-in for Amazon S3 used by a distributed Map's ItemReader and ResultWriter:
  // the directory holding a bucket's objects (object keys are paths below it); `for_write` for
  // ResultWriter. nullptr: every S3 access fails (States.ItemReaderFailed /
  // States.ResultWriterFailed).
  std::function<Result<std::string>(const std::string& bucket, bool for_write)> bucket_dir;
  // Reads a Parquet file's rows as JSON objects (at most `max_items`, < 0: all) for ItemReader
  // InputType PARQUET; the CLI wires it to DuckDB. nullptr: PARQUET input fails.
  std::function<Result<Json>(const std::string& path, int64_t max_items)> read_parquet;
};

// Where a redriven execution resumes.
struct RedrivePoint {
  std::string state;  // top-level state that failed
  Json input;         // its raw input
  Json variables;     // variables visible at that point (object)
  int64_t redrive_count = 1;
  int64_t next_event_id = 1;  // first id for new events
  // When `state` is a Map: the outputs of its iterations that succeeded (index -> output). The
  // redrive keeps them and runs only the others, as AWS RedriveExecution "reschedules and
  // redrives only the iterations and branches that failed or aborted". (Distributed Map child
  // executions keep no history here, so a redriven distributed Map runs every item again.)
  std::map<int64_t, Json> succeeded_iterations;
};

// The iterations of the top-level Map state `state` that succeeded, read from an execution's
// history (index -> the output of the iteration, which is the output of its last state's
// ...StateExited event). Counts its last visit: the last MapStateEntered of `state` that does not
// follow ExecutionRedriven directly, and every redrive of it since. ASL state names are unique
// in a state machine, so the name identifies the Map.
std::map<int64_t, Json> SucceededMapIterations(const std::vector<Event>& history,
                                               const std::string& state);

class Engine {
 public:
  explicit Engine(EngineOptions options);
  ~Engine();

  // Runs `machine` on `input`. `execution_name` names the execution in its ARN. Never throws:
  // every failure, including an exception from a TaskRunner, an EventSink or a library call,
  // ends up in the result (a task's exception is a States.TaskFailed the machine may catch;
  // anything else fails the execution with States.Runtime).
  ExecutionResult Run(const StateMachine& machine, const Json& input,
                      const std::string& execution_name);

  // Resumes a failed execution at `point` (AWS RedriveExecution). Never throws, as Run.
  ExecutionResult Redrive(const StateMachine& machine, const Json& original_input,
                          const std::string& execution_name, const RedrivePoint& point);

  // Variables visible at the top level when the last Run/Redrive stopped (for redrive).
  const Json& final_variables() const;

  struct Impl;

 private:
  ExecutionResult RedriveUnguarded(const StateMachine& machine, const Json& original_input,
                                   const std::string& execution_name, const RedrivePoint& point);

  std::unique_ptr<Impl> impl_;
};

}  // namespace engage::flow
