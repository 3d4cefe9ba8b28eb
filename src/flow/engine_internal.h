// Private to the ASL interpreter (src/flow/engine.cc and state_*.cc): the engine's state
// (Engine::Impl) and the types its parts share. engine.cc holds the execution loop, the
// history, the context object and the data flow common to every state (InputPath, Parameters,
// ResultSelector, ResultPath, OutputPath, Arguments, Output, Assign, Retry, Catch); each
// state_*.cc file holds the work of its state types, as DuckDB gives each operator its own file.
//
// Failures travel as Flow<T> (a value or an ASL Failure), never as exceptions; Engine::Run and
// Engine::Redrive turn them into an ExecutionResult.
//
// Thread-safety: Map iterations and Parallel branches may run on several threads; Emit,
// SyncSink and SinkOk serialize on emit_mu, everything else a lane touches is its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/flow/definition.h"
#include "engage/flow/engine.h"
#include "flow/item_io_internal.h"

namespace engage::flow {
namespace internal {

// An ASL error in flight: a name and a cause, either of which AWS may leave out.
struct Failure {
  std::optional<std::string> error;
  std::optional<std::string> cause;
};

template <typename T>
class [[nodiscard]] Flow {
 public:
  Flow(T v) : v_(std::move(v)) {}        // NOLINT: implicit by design
  Flow(Failure f) : v_(std::move(f)) {}  // NOLINT: implicit by design
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  Failure& failure() { return std::get<1>(v_); }

 private:
  std::variant<T, Failure> v_;
};

#define FLOW_CONCAT_INNER_(a, b) a##b
#define FLOW_CONCAT_(a, b) FLOW_CONCAT_INNER_(a, b)
#define FLOW_ASSIGN_OR_RETURN(lhs, expr) \
  FLOW_ASSIGN_OR_RETURN_IMPL_(FLOW_CONCAT_(flow_result_, __LINE__), lhs, expr)
#define FLOW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp.failure());   \
  lhs = std::move(tmp.value())

// Variables visible to a state: its own scope and, read-only, the enclosing ones (a Map
// iteration or Parallel branch sees the variables of the state machine around it).
struct VarScope {
  Json vars = Json::object();
  const VarScope* parent = nullptr;

  const Json* Find(const std::string& name) const {
    for (const VarScope* s = this; s != nullptr; s = s->parent) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &*it;
    }
    return nullptr;
  }
  // Every visible variable, inner scopes shadowing outer ones.
  Json Flatten() const {
    Json out = parent != nullptr ? parent->Flatten() : Json::object();
    for (auto it = vars.begin(); it != vars.end(); ++it) out[it.key()] = it.value();
    return out;
  }
};

// Raised by a Map or Parallel state when one of its iterations or branches fails (and the failure
// is not tolerated): the others stop (AWS's ASL specification: the state fails and "all its
// branches are stopped"; likewise a Map's iterations). Lanes nested deeper see their ancestors'
// signals through `parent`.
struct StopSignal {
  std::atomic<bool> raised{false};
  const StopSignal* parent = nullptr;

  bool Raised() const {
    for (const StopSignal* s = this; s != nullptr; s = s->parent) {
      if (s->raised.load()) return true;
    }
    return false;
  }
};

// The error of a lane stopped by its Map or Parallel state (a sibling failed). It ends the lane
// like States.Aborted (no Retry, no Catch) but never reaches the execution: the Map or Parallel
// state fails with its sibling's error.
inline constexpr char kStoppedError[] = "Engage.Stopped";

// One thread of execution (the top level, a Parallel branch or a Map iteration).
struct Lane {
  int64_t prev_event = 0;
  VarScope* vars = nullptr;
  bool top_level = false;
  bool record_events = true;  // false inside distributed Map child executions
  // Inside a distributed Map child execution: the events of that child (which on AWS has a
  // history, and a history quota, of its own). Shared by the lanes nested in the child.
  std::shared_ptr<std::atomic<int64_t>> child_events;
  // Set inside Map iterations and Parallel branches that run on threads: raised when the lane
  // must stop (see StopSignal). nullptr: nothing but the execution's stop ends it.
  const StopSignal* stop = nullptr;
};

// Whether `f` is a lane stopped by its Map or Parallel state, or the execution's stop.
inline bool IsAbort(const Failure& f) {
  return f.error == std::optional<std::string>(kStoppedError) ||
         f.error == std::optional<std::string>("States.Aborted");
}

// What the state being run needs to build error texts and its context object.
struct StateRun {
  const State* state = nullptr;
  int64_t entered_event_id = 0;
  int64_t entered_micros = 0;
  int retry_count = 0;
  const Json* map_item_value = nullptr;  // only while evaluating a Map's ItemSelector
  int64_t map_item_index = -1;
  int64_t output_bytes = -1;  // size of the serialized output, once the exit event has it
};

struct StepResult {
  Json output;
  std::string next;  // empty: the machine ends here
};

// The $states variable of a JSONata expression.
struct StatesVar {
  const Json* input = nullptr;
  const Json* result = nullptr;
  const Json* error_output = nullptr;
};

// "An error occurred while executing the state 'X' (entered at the event id #N). "
std::string Prefix(const StateRun& sr);
// States.Runtime with the state's prefix.
Failure RuntimeError(const StateRun& sr, const std::string& message);
// A JSONPath or JSONata result that would pass the payload limit (or take unbounded work to
// compute): kResourceExhausted from the evaluator.
bool IsDataLimit(const Status& s);
Failure DataLimitFailure(const StateRun& sr, const Status& s);
// States.QueryEvaluationError with the state's prefix.
Failure QueryError(const StateRun& sr, const std::string& message);
// "null", "boolean", "string", "array", "object" or "number".
const char* JsonTypeName(const Json& v);

// Calls `fn` (returning Status), code outside the engine: an EventSink's method, say. Nothing
// in flow throws on purpose, but such code may (a library call that throws, a bug); its
// exception becomes kInternal naming `what`, so that none crosses a thread or Engine's API.
template <typename Fn>
Status Caught(Fn&& fn, const char* what) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return InternalError(std::string(what) + " threw: " + e.what());
  }
}

}  // namespace internal

// The engine's parts name these unqualified (this header is private to them).
using internal::DataLimitFailure;
using internal::Failure;
using internal::Flow;
using internal::IsAbort;
using internal::IsDataLimit;
using internal::JsonTypeName;
using internal::kStoppedError;
using internal::Lane;
using internal::Prefix;
using internal::QueryError;
using internal::RuntimeError;
using internal::StateRun;
using internal::StatesVar;
using internal::StepResult;
using internal::StopSignal;
using internal::VarScope;

struct Engine::Impl {
  EngineOptions opt;
  const Clock* clock = nullptr;
  int64_t next_event_id = 1;
  Status sink_status;
  // Execution-wide context members, built once.
  Json ctx_execution;
  Json ctx_state_machine;
  Json final_vars = Json::object();
  int64_t start_micros = 0;
  std::optional<int64_t> deadline_micros;
  // Whether the deadline is the maximum execution duration (not the TimeoutSeconds).
  bool deadline_is_max_duration = false;
  // The maximum execution duration in force (EngineOptions::max_execution_seconds, or five
  // minutes for an EXPRESS execution).
  int64_t max_duration_seconds = 0;
  // Set once an event was refused because the history reached max_history_events.
  std::atomic<bool> history_full{false};
  std::string failed_state;
  Json failed_input;
  // A redrive that resumes at a Map state: its name and the outputs of its iterations that
  // succeeded before (RedrivePoint::succeeded_iterations), handed to that Map the first time it
  // runs at the top level, then dropped.
  std::string redrive_map_state;
  std::map<int64_t, Json> redrive_iterations;

  explicit Impl(EngineOptions o) : opt(std::move(o)) {
    clock = opt.clock != nullptr ? opt.clock : &SystemClock::Default();
  }

  // ---- events ----

  // Map iterations may run on several threads: event ids and the sink are shared.
  std::mutex emit_mu;

  // Lets the sink publish the history before the execution blocks.
  void SyncSink();

  bool SinkOk();

  int64_t Emit(Lane& lane, std::string type, Json details, bool advance = true);

  static Json Payload(const char* key, const Json& v);

  // Sleeps in slices of at most an hour, so that no duration overflows a conversion (to
  // nanoseconds, say) and a stop is noticed between slices; in a lane that its Map or Parallel
  // state may stop, in slices of kStopPollMicros so that the stop ends the wait soon.
  void Sleep(int64_t micros, const Lane& lane);

  // Whether `lane` must stop now: the execution was stopped, or its Map/Parallel state stopped
  // it.
  bool Stopping(const Lane& lane) const {
    return Cancelled() || (lane.stop != nullptr && lane.stop->Raised());
  }

  // The failure that ends a stopping lane.
  Failure StopFailure(const Lane& lane) const;

  bool Cancelled() const { return opt.cancel != nullptr && opt.cancel->load(); }

  bool PastDeadline() const { return deadline_micros && clock->NowMicros() > *deadline_micros; }

  // A failure that ends the whole execution and no Retry or Catch may handle: a stop, or the
  // state machine's TimeoutSeconds running out.
  bool EndsExecution(const Failure& f) const;

  // Whether the history of `lane`'s execution (or of its distributed Map child execution) is
  // full: nothing more may run in it.
  bool HistoryFull(const Lane& lane) const;

  Failure HistoryLimitFailure() const;

  Failure TimeoutFailure() const;

  // Waits `micros` (a Wait state or a retry interval) but no longer than the execution may
  // run; fails when the execution timed out or was stopped meanwhile.
  Flow<bool> WaitFor(int64_t micros, const Lane& lane);

  // ---- context object ----

  Json Context(const StateRun& sr) const;

  // ---- JSONPath evaluation ----

  // Resolves `path` with `$` = input; nullopt-like failure when the path selects nothing.
  Result<Json> ResolvePath(const JsonPath& path, const Json& input, const StateRun& sr,
                           const VarScope& vars) const;

  // Evaluates a template's objects and arrays, handing every other node to `leaf`.
  template <typename Leaf>
  static Flow<Json> Walk(const Template& t, const Leaf& leaf);

  Flow<Json> EvalPathTemplate(const Template& tmpl, const Json& input, const StateRun& sr,
                              const VarScope& vars) const;

  Flow<Json> EvalPathLeaf(const Template& t, const Json& input, const StateRun& sr,
                          const VarScope& vars) const;

  // ---- JSONata evaluation ----

  Flow<Json> EvalJsonata(const Template& tmpl, const StatesVar& sv, const StateRun& sr,
                         const VarScope& vars) const;

  Flow<Json> EvalJsonataLeaf(const Template& t, const StatesVar& sv, const StateRun& sr,
                             const VarScope& vars) const;

  // ---- assignments ----

  Flow<Json> EvalAssign(const Template& t, const Json& path_input, const StatesVar& sv,
                        const StateRun& sr, const VarScope& vars) const;

  static void Commit(VarScope& vars, const Json& assigned);

  static Json AssignedDetails(const Json& assigned);

  // ---- JSONPath data-flow helpers ----

  // InputPath / OutputPath: null gives {}, absent or "$" the value itself, else the path's
  // value (States.Runtime when it selects nothing).
  Flow<Json> ApplySelectPath(bool is_null, const std::optional<JsonPath>& path, const Json& v,
                             const StateRun& sr, const VarScope& vars) const;

  Flow<Json> ApplyInputPath(const State& st, const Json& raw, const StateRun& sr,
                            const VarScope& vars) const;

  Flow<Json> ApplyResultPath(const State& st, const Json& raw, Json result,
                             const StateRun& sr) const;

  Flow<Json> ApplyOutputPath(const State& st, const Json& v, const StateRun& sr,
                             const VarScope& vars) const;

  // ---- the state loop ----

  // Runs `sm` from `start` until a terminal state. On failure, records the failing state.
  Flow<Json> RunMachine(const StateMachine& sm, Json input, Lane& lane, std::string start);

  // RunMachine, with an exception from code the engine calls turned into States.Runtime (an
  // exception must not leave a Map or Parallel thread, nor the Engine). Map iterations,
  // Parallel branches and the top level run through it.
  Flow<Json> RunMachineCaught(const StateMachine& sm, Json input, Lane& lane, std::string start);

  Status Checkpoint(const State& st, const Json& input, const std::string& input_text,
                    const Lane& lane);

  // Whether events of `lane` reach a sink: when not, their details are not built.
  bool Recording(const Lane& lane) const { return opt.events != nullptr && lane.record_events; }

  // `raw_text`: DumpJson(raw) when the caller has it already (empty or nullptr: not yet).
  Flow<StepResult> RunState(const State& st, const Json& raw, Lane& lane,
                            std::string* raw_text = nullptr);

  // Records <Type>StateAborted when `f` stopped `st` (see Stopping).
  void EmitAborted(const State& st, Lane& lane, const Failure& f);

  // Runs the body with Retry and Catch around it.
  Flow<StepResult> Execute(const State& st, const Json& raw, Lane& lane, StateRun& sr);

  Flow<StepResult> ApplyCatch(const State& st, const Catcher& c, const Json& raw, const Failure& f,
                              Lane& lane, const StateRun& sr);

  // One attempt of the state's work. Assignments go to `assigned` (committed by the caller).
  Flow<StepResult> Body(const State& st, const Json& raw, Lane& lane, StateRun& sr, Json* assigned);

  // True when `sm` (or a machine nested in it) has a Task or Wait state: its Map iterations or
  // Parallel branches spend their time waiting, so running them side by side pays.
  static bool Waits(const StateMachine& sm);

  // ---- Choice, Wait, Pass, Succeed, Fail (state_choice_wait_pass.cc) ----

  Flow<bool> EvalRule(const ChoiceRule& rule, const Json& input, const StateRun& sr,
                      const VarScope& vars, const StatesVar& sv) const;

  Flow<StepResult> RunChoice(const State& st, const Json& raw, Lane& lane, StateRun& sr,
                             Json* assigned);

  Flow<StepResult> RunWait(const State& st, const Json& raw, Lane& lane, StateRun& sr,
                           Json* assigned);

  Flow<std::optional<std::string>> FailField(const State& st, const std::optional<Template>& t,
                                             bool from_path, const Json& raw, const StateRun& sr,
                                             const VarScope& vars) const;

  // Succeed: InputPath and OutputPath (JSONPath) or Output (JSONata); the machine ends.
  Flow<StepResult> RunSucceed(const State& st, const Json& raw, Lane& lane, const StateRun& sr);

  // A JSONPath Pass state's result: Result if given, else its effective input after
  // Parameters. (A JSONata Pass yields its input; Output, Assign and the rest of the data flow
  // are Body's, as for Task, Parallel and Map.)
  Flow<Json> PassResult(const State& st, const Json& eff, const StateRun& sr,
                        const VarScope& vars) const;

  Flow<StepResult> RunFail(const State& st, const Json& raw, const StateRun& sr,
                           const VarScope& vars);

  // ---- Task (state_task.cc) ----

  Flow<std::optional<int64_t>> TaskSeconds(const State& st, const std::optional<Template>& t,
                                           const Json& eff, const Json& raw, const StateRun& sr,
                                           const VarScope& vars) const;

  Flow<Json> RunTask(const State& st, const Json& params, const Json& eff, Lane& lane,
                     const StateRun& sr);

  // ---- Parallel (state_parallel.cc) ----

  Flow<Json> RunParallel(const State& st, const Json& input, Lane& lane, const StateRun& sr);

  // ---- Map (state_map.cc) ----

  // Reads an integer-valued Map setting from its literal, path or expression form.
  Flow<std::optional<double>> MapNumber(const std::optional<Template>& literal,
                                        const std::optional<JsonPath>& path,
                                        const std::string& path_name, bool integer, const Json& eff,
                                        const Json& raw, const StateRun& sr,
                                        const VarScope& vars) const;

  Flow<Json> RunMap(const State& st, const Json& raw, const Json& eff, Lane& lane, StateRun& sr);

  // The kept iteration outputs when `st` is the Map a redrive resumes at and `lane` the top
  // level (once; empty otherwise).
  std::map<int64_t, Json> TakeRedriveIterations(const State& st, const Lane& lane);

  // Threads for a Map's iterations: 1 (inline) unless the options allow more and the
  // iterations wait; then MaxConcurrency (0: unlimited) capped by the options and the items.
  size_t MapThreads(const State& st, std::optional<double> max_concurrency, size_t items) const;

  // ---- distributed Map's readers and writers, local S3 stand-in (state_map_io.cc) ----

  // An ItemReader/ResultWriter parameters object, evaluated.
  Flow<Json> IoParameters(const std::optional<Template>& t, const Json& raw, const Json& eff,
                          const StateRun& sr, const VarScope& vars);

  // A count of ReaderConfig/ItemBatcher: literal, JSONata expression or <field>Path.
  Flow<int64_t> IoCount(const Json& obj, const std::string& field, int64_t absent, const Json& raw,
                        const Json& eff, const StateRun& sr, const VarScope& vars);

  Flow<std::string> BucketDir(const std::string& bucket, const char* error, bool for_write,
                              const StateRun& sr);

  Flow<Json> ReadItems(const State& st, const Json& raw, const Json& eff, const StateRun& sr,
                       const VarScope& vars);

  // ItemSelector per item, then ItemBatcher's grouping.
  Flow<Json> BatchMapItems(const State& st, Json items, const Json& raw, const Json& eff,
                           const StateRun& sr, const VarScope& vars);

  Flow<Json> WriteMapResults(const State& st, const std::vector<internal::ChildOutcome>& outcomes,
                             const std::string& map_run_id, const Json& raw, const Json& eff,
                             const StateRun& sr, const VarScope& vars);
};

}  // namespace engage::flow
