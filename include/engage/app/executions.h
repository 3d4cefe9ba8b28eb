// The execution runner: starts state machine executions from parsed definitions, runs each on a
// thread it owns, stops one on request and, on shutdown, waits for or aborts what is running.
//
//   ExecutionRunner runner(home);
//   ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, runner.Start(std::move(request)));
//   ENGAGE_ASSIGN_OR_RETURN(ExecutionOutcome out, runner.Wait(rec.id));   // the CLI
//   ... or let it run (the server) and Stop(rec.id) / Shutdown(kAbort, 10000) later.
//
// Every execution is recorded in the home's meta.db with its history (flow::ExecutionStore).
// Its Tasks run Engage's steps (engage:query, engage:ingest, engage:train, ...), local commands
// mapped in [flow] and mocks. An execution with a role (started over HTTP) has every Task
// checked against the role and reads ingest inputs only inside [flow] input_dirs.
//
// Stopping (AWS StopExecution): an execution running in this process stops at once; one running
// in another process (an `engage flow run` in another terminal, a server) is asked through
// meta.db, and its runner stops it within a fraction of a second. Either way it ends ABORTED
// with an ExecutionAborted event, as on AWS.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "engage/app/read_side.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/flow/definition.h"
#include "engage/flow/engine.h"
#include "engage/flow/store.h"

namespace engage::serve {
class Policy;
}  // namespace engage::serve

namespace engage::app {

struct ExecutionRequest {
  std::string state_machine;                          // its name
  std::shared_ptr<const flow::StateMachine> machine;  // parsed
  std::string definition;                             // text, stored with the execution
  std::string definition_path;                        // the file it came from, if any
  std::string name;                                   // execution name; empty: the id
  Json input = Json::object();
  // Mocked Task results (Step Functions Local mock config) and the test case in it.
  std::string mock_path;
  std::string mock_case;
  bool express = false;  // an EXPRESS workflow execution (AWS's Express semantics)
  // Every Task is checked against this role and engage:ingest reads only [flow] input_dirs (an
  // execution started over HTTP). Null: the local CLI user, trusted.
  std::shared_ptr<const serve::Policy> role;
  // Called with each history event as it happens, on the thread running the execution (e.g. a
  // progress display). Must not block for long.
  std::function<void(const flow::Event&)> on_event;
  // Nobody will Wait for it (an execution started over HTTP): the runner forgets it once it
  // has ended and recorded its result.
  bool background = false;
};

struct RedriveRequest {
  std::string execution;  // id or name
  // Mocks to use; empty: those the execution ran with, continuing their invocation numbering.
  std::string mock_path;
  std::string mock_case;
  std::function<void(const flow::Event&)> on_event;
};

struct ExecutionOutcome {
  flow::ExecutionRecord record;
  flow::ExecutionResult result;
  // The result's JSON ({"status", "output"} or {"status", "error", "cause"}) with "executionId"
  // and "name".
  Json ToJson() const;
  // "execution NAME (ID): STATUS", then the output, or the error, cause and the history command.
  std::string ToText() const;
  // Ok when it SUCCEEDED, else kAborted naming the execution and how it ended.
  Status ToStatus() const;
};

class ExecutionRunner;
class Monitoring;

// Blocks SIGINT and SIGTERM in the calling thread, and so in the threads it starts, for its
// lifetime. A command that runs an execution in the foreground opens the App (whose query engine
// starts threads) under it, so that only RunInForeground's own thread takes those signals.
class BlockStopSignals {
 public:
  BlockStopSignals();
  ~BlockStopSignals();
  BlockStopSignals(const BlockStopSignals&) = delete;
  BlockStopSignals& operator=(const BlockStopSignals&) = delete;

 private:
  sigset_t previous_;
};

// Starts an execution with `start` (which calls runner.Start or StartRedrive) and waits for it,
// for a command in the foreground: SIGINT and SIGTERM stop it cleanly (it ends ABORTED, recorded)
// instead of killing the process mid-state. The signals are blocked in the threads the runner
// starts meanwhile and taken by a thread of this call; the caller's mask is restored after.
Result<ExecutionOutcome> RunInForeground(
    ExecutionRunner& runner, const std::function<Result<flow::ExecutionRecord>()>& start);

class ExecutionRunner {
 public:
  // `reads` (optional): the process's query engine, for the steps' queries; without it each step
  // opens its own.
  // `monitoring` (optional): each step and execution goes into the cost ledger, failed executions
  // raise alerts, and a crossed hard budget refuses to start an execution.
  explicit ExecutionRunner(HomePaths home, std::shared_ptr<ReadSides> reads = nullptr,
                           std::shared_ptr<Monitoring> monitoring = nullptr);
  // Aborts whatever still runs and joins every thread.
  ~ExecutionRunner();
  ExecutionRunner(const ExecutionRunner&) = delete;
  ExecutionRunner& operator=(const ExecutionRunner&) = delete;

  // Records the execution and starts it on a runner thread; returns its record (RUNNING) at once.
  // Errors (nothing recorded): a bad config or mock file, kAlreadyExists for a taken name,
  // kFailedPrecondition without an Engage home.
  Result<flow::ExecutionRecord> Start(ExecutionRequest request);
  // Resumes a FAILED, TIMED_OUT or ABORTED execution at the state that failed (AWS
  // RedriveExecution); kFailedPrecondition when it cannot be redriven. `point` (optional)
  // receives where it resumes.
  Result<flow::ExecutionRecord> StartRedrive(const RedriveRequest& request,
                                             flow::RedrivePoint* point = nullptr);
  // Waits for an execution started by this runner to end and returns how it ended.
  // kNotFound when this runner did not start it (or it was already waited for).
  Result<ExecutionOutcome> Wait(const std::string& id);

  // Stops an execution (id or name): ABORTED. In this process at once; in another, through a
  // request in meta.db that its runner honours. kFailedPrecondition when it is not running,
  // kNotFound when there is no such execution.
  Status Stop(const std::string& id_or_name);
  // Stops every execution this runner runs.
  void StopAll();
  // Waits up to `timeout_ms` for an execution run by any process to reach a terminal status;
  // its record then (still RUNNING when the time ran out).
  Result<flow::ExecutionRecord> AwaitEnd(const std::string& id_or_name, int64_t timeout_ms);

  enum class ShutdownMode { kWait, kAbort };
  // kAbort stops every running execution first; then waits up to `wait_ms` for them to end and
  // record it. Returns how many are still running. Start refuses new executions afterwards.
  int64_t Shutdown(ShutdownMode mode, int64_t wait_ms);

  // Executions running on this runner's threads.
  int64_t running() const;
  // The home's execution store; executions whose process died are marked FAILED first (logged as
  // a warning), and `*recovered` (optional) receives how many. kFailedPrecondition without an
  // Engage home.
  Result<std::unique_ptr<flow::ExecutionStore>> OpenStore(int64_t* recovered = nullptr) const;
  const HomePaths& home() const { return home_; }

 private:
  struct Run;
  Result<flow::ExecutionRecord> Launch(std::unique_ptr<flow::ExecutionStore> store,
                                       std::shared_ptr<Run> run,
                                       std::optional<flow::RedrivePoint> redrive);
  void Execute(const std::shared_ptr<Run>& run, std::unique_ptr<flow::ExecutionStore> store,
               std::optional<flow::RedrivePoint> redrive);
  void Watch();  // the stop-request watcher thread
  void ReapLocked();

  HomePaths home_;
  std::shared_ptr<ReadSides> reads_;
  std::shared_ptr<Monitoring> monitoring_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<Run>> runs_;  // by execution id
  bool shutting_down_ = false;
  std::thread watcher_;
};

}  // namespace engage::app
