#include "engage/flow/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>

#include "engage/core/fs.h"
#include "engage/core/ids.h"
#include "flow/item_io_internal.h"
#include "flow/util_internal.h"

namespace engage::flow {

const char* ExecutionStatusName(ExecutionStatus s) {
  switch (s) {
    case ExecutionStatus::kRunning:
      return "RUNNING";
    case ExecutionStatus::kSucceeded:
      return "SUCCEEDED";
    case ExecutionStatus::kFailed:
      return "FAILED";
    case ExecutionStatus::kTimedOut:
      return "TIMED_OUT";
    case ExecutionStatus::kAborted:
      return "ABORTED";
  }
  return "?";
}

std::string Event::DetailsKey() const {
  // AWS names the details member after the event family, e.g. PassStateEntered ->
  // stateEnteredEventDetails, MapIterationStarted -> mapIterationStartedEventDetails.
  static const std::pair<const char*, const char*> kFamilies[] = {
      {"StateEntered", "stateEnteredEventDetails"},
      {"StateExited", "stateExitedEventDetails"},
  };
  for (const auto& [suffix, key] : kFamilies) {
    std::string_view t(type), s(suffix);
    if (t.size() > s.size() && t.substr(t.size() - s.size()) == s) return key;
  }
  std::string key = type;
  if (!key.empty()) key[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(key[0])));
  return key + "EventDetails";
}

Json Event::ToJson() const {
  Json j = Json::object();
  j["id"] = id;
  j["previousEventId"] = previous_event_id;
  j["timestamp"] = FormatIsoUtc(timestamp_micros);
  j["type"] = type;
  if (!details.is_null()) j[DetailsKey()] = details;
  return j;
}

std::string TaskRunner::ResourceType(const std::string& resource) const {
  // arn:aws:states:::lambda:invoke -> "lambda"; engage:ingest -> "engage".
  if (resource.rfind("arn:", 0) == 0) {
    size_t p = resource.find(":::");
    if (p != std::string::npos) {
      std::string rest = resource.substr(p + 3);
      return rest.substr(0, rest.find(':'));
    }
  }
  return resource.substr(0, resource.find(':'));
}

Json ExecutionResult::ToJson() const {
  Json j = Json::object();
  j["status"] = ExecutionStatusName(status);
  if (status == ExecutionStatus::kSucceeded) {
    j["output"] = output;
  } else {
    if (error) j["error"] = *error;
    if (cause) j["cause"] = *cause;
  }
  return j;
}

namespace {

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

// One thread of execution (the top level, a Parallel branch or a Map iteration).
struct Lane {
  int64_t prev_event = 0;
  VarScope* vars = nullptr;
  bool top_level = false;
  bool record_events = true;  // false inside distributed Map child executions
  // Inside a distributed Map child execution: the events of that child (which on AWS has a
  // history, and a history quota, of its own). Shared by the lanes nested in the child.
  std::shared_ptr<std::atomic<int64_t>> child_events;
};

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

std::string Prefix(const StateRun& sr) {
  return fmt::format(
      "An error occurred while executing the state '{}' (entered at the event id #{}). ",
      sr.state->name, sr.entered_event_id);
}

Failure RuntimeError(const StateRun& sr, const std::string& message) {
  return Failure{"States.Runtime", Prefix(sr) + message};
}

// A JSONPath or JSONata result that would pass the payload limit (or take unbounded work to
// compute): kResourceExhausted from the evaluator.
bool IsDataLimit(const Status& s) { return s.code() == StatusCode::kResourceExhausted; }

Failure DataLimitFailure(const StateRun& sr, const Status& s) {
  return Failure{"States.DataLimitExceeded", Prefix(sr) + s.message()};
}

Failure QueryError(const StateRun& sr, const std::string& message) {
  return Failure{"States.QueryEvaluationError", Prefix(sr) + message};
}

// A number with no fraction from `lo` to `hi` (as read at run time, where 5.0 is 5); never
// converts an out-of-range value.
bool WholeNumberIn(const Json& v, int64_t lo, int64_t hi) {
  if (!v.is_number()) return false;
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(hi) && lo <= 0;
  if (v.is_number_integer()) return v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  double d = v.get<double>();
  return std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(lo) &&
         d <= static_cast<double>(hi);
}

const char* JsonTypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::string:
      return "string";
    case Json::value_t::array:
      return "array";
    case Json::value_t::object:
      return "object";
    default:
      return "number";
  }
}

bool ErrorMatches(const std::vector<std::string>& names, const std::optional<std::string>& error) {
  std::string e = error.value_or("");
  for (const std::string& n : names) {
    if (n == e) return true;
    // States.ALL matches every error except States.Runtime and States.DataLimitExceeded,
    // which AWS never retries or catches by wildcard.
    if (n == "States.ALL" && e != "States.Runtime" && e != "States.DataLimitExceeded") {
      return true;
    }
    if (n == "States.TaskFailed" && e.rfind("States.", 0) != 0) return true;
  }
  return false;
}

// Matches `s` against a StringMatches pattern: '*' is any run of characters, "\*" a star and
// "\\" a backslash.
bool WildcardMatch(std::string_view s, std::string_view p) {
  size_t si = 0, pi = 0, star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
      continue;
    }
    if (pi < p.size()) {
      char want = p[pi];
      size_t adv = 1;
      if (want == '\\' && pi + 1 < p.size()) {
        want = p[pi + 1];
        adv = 2;
      }
      if (want == s[si]) {
        pi += adv;
        ++si;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace

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
  // Set once an event was refused because the history reached max_history_events.
  std::atomic<bool> history_full{false};
  std::string failed_state;
  Json failed_input;

  explicit Impl(EngineOptions o) : opt(std::move(o)) {
    clock = opt.clock != nullptr ? opt.clock : &SystemClock::Default();
  }

  // ---- events ----

  // Map iterations may run on several threads: event ids and the sink are shared.
  std::mutex emit_mu;

  // Lets the sink publish the history before the execution blocks.
  void SyncSink() {
    std::lock_guard<std::mutex> lock(emit_mu);
    if (opt.events != nullptr && sink_status.ok()) sink_status = opt.events->Sync();
  }

  bool SinkOk() {
    std::lock_guard<std::mutex> lock(emit_mu);
    return sink_status.ok();
  }

  int64_t Emit(Lane& lane, std::string type, Json details, bool advance = true) {
    std::lock_guard<std::mutex> lock(emit_mu);
    if (opt.max_history_events > 0) {
      if (!lane.record_events) {
        if (lane.child_events && lane.child_events->fetch_add(1) + 1 >= opt.max_history_events) {
          return lane.prev_event;  // the child execution is over its quota (RunMachine stops it)
        }
      } else if ((history_full.load() || next_event_id >= opt.max_history_events) &&
                 type != "ExecutionSucceeded" && type != "ExecutionFailed" &&
                 type != "ExecutionTimedOut" && type != "ExecutionAborted") {
        // AWS: event number max_history_events is ExecutionSucceeded or ExecutionFailed; any
        // other event ends the execution instead of being recorded.
        history_full.store(true);
        return lane.prev_event;
      }
    }
    int64_t id = next_event_id++;
    if (opt.events != nullptr && lane.record_events && sink_status.ok()) {
      Event e;
      e.id = id;
      e.previous_event_id = lane.prev_event;
      e.timestamp_micros = clock->NowMicros();
      e.type = std::move(type);
      e.details = std::move(details);
      sink_status = opt.events->Append(e);
    }
    if (advance) lane.prev_event = id;
    return id;
  }

  static Json Payload(const char* key, const Json& v) {
    Json d = Json::object();
    d[key] = DumpJson(v);
    d[std::string(key) + "Details"] = Json{{"truncated", false}};
    return d;
  }

  // Sleeps in slices of at most an hour, so that no duration overflows a conversion (to
  // nanoseconds, say) and a stop is noticed between slices.
  void Sleep(int64_t micros) {
    constexpr int64_t kSliceMicros = int64_t{3600} * 1000000;
    while (micros > 0 && !Cancelled()) {
      int64_t slice = std::min(micros, kSliceMicros);
      if (opt.sleep) {
        opt.sleep(slice);
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(slice));
      }
      micros -= slice;
    }
  }

  bool Cancelled() const { return opt.cancel != nullptr && opt.cancel->load(); }

  bool PastDeadline() const { return deadline_micros && clock->NowMicros() > *deadline_micros; }

  // A failure that ends the whole execution and no Retry or Catch may handle: a stop, or the
  // state machine's TimeoutSeconds running out.
  bool EndsExecution(const Failure& f) const {
    return f.error == std::optional<std::string>("States.Aborted") ||
           (f.error == std::optional<std::string>("States.Timeout") && PastDeadline()) ||
           history_full.load();
  }

  // Whether the history of `lane`'s execution (or of its distributed Map child execution) is
  // full: nothing more may run in it.
  bool HistoryFull(const Lane& lane) const {
    if (opt.max_history_events <= 0) return false;
    if (!lane.record_events && lane.child_events) {
      return lane.child_events->load() >= opt.max_history_events;
    }
    return history_full.load();
  }

  Failure HistoryLimitFailure() const {
    return Failure{"States.Runtime",
                   fmt::format("The execution reached the maximum number of history events ({}).",
                               opt.max_history_events)};
  }

  Failure TimeoutFailure() const {
    if (deadline_is_max_duration) {
      return Failure{"States.Timeout",
                     fmt::format("The execution ran longer than the maximum execution duration "
                                 "({} s).",
                                 opt.max_execution_seconds)};
    }
    return Failure{"States.Timeout", "The execution timed out (TimeoutSeconds)."};
  }

  // Waits `micros` (a Wait state or a retry interval) but no longer than the execution may
  // run; fails when the execution timed out or was stopped meanwhile.
  Flow<bool> WaitFor(int64_t micros) {
    if (micros > 0) SyncSink();
    if (deadline_micros) {
      int64_t left = *deadline_micros - clock->NowMicros() + 1;
      if (micros >= left) {
        Sleep(left);
        if (Cancelled()) return Failure{"States.Aborted", "the execution was stopped"};
        return TimeoutFailure();
      }
    }
    Sleep(micros);
    if (Cancelled()) return Failure{"States.Aborted", "the execution was stopped"};
    return true;
  }

  // ---- context object ----

  Json Context(const StateRun& sr) const {
    Json ctx = Json::object();
    ctx["Execution"] = ctx_execution;
    ctx["StateMachine"] = ctx_state_machine;
    Json state = Json::object();
    state["Name"] = sr.state->name;
    state["EnteredTime"] = FormatIsoUtc(sr.entered_micros);
    if (sr.state->type == StateType::kTask) state["RetryCount"] = sr.retry_count;
    ctx["State"] = std::move(state);
    if (sr.map_item_value != nullptr) {
      ctx["Map"] =
          Json{{"Item", Json{{"Index", sr.map_item_index}, {"Value", *sr.map_item_value}}}};
    }
    return ctx;
  }

  // ---- JSONPath evaluation ----

  // Resolves `path` with `$` = input; nullopt-like failure when the path selects nothing.
  Result<Json> ResolvePath(const JsonPath& path, const Json& input, const StateRun& sr,
                           const VarScope& vars) const {
    switch (path.root()) {
      case JsonPath::Root::kInput:
        return path.Evaluate(input, opt.max_payload_bytes);
      case JsonPath::Root::kContext: {
        Json ctx = Context(sr);
        return path.Evaluate(ctx, opt.max_payload_bytes);
      }
      case JsonPath::Root::kVariable: {
        const Json* v = vars.Find(path.variable());
        if (v == nullptr) {
          return NotFoundError(fmt::format("The variable '${}' is not defined", path.variable()));
        }
        return path.Evaluate(*v, opt.max_payload_bytes);
      }
    }
    return InternalError("bad path root");
  }

  // Evaluates a template's objects and arrays, handing every other node to `leaf`.
  template <typename Leaf>
  static Flow<Json> Walk(const Template& t, const Leaf& leaf) {
    switch (t.kind) {
      case Template::Kind::kLiteral:
        return t.literal;
      case Template::Kind::kObject: {
        Json out = Json::object();
        for (const auto& [key, child] : t.fields) {
          FLOW_ASSIGN_OR_RETURN(out[key], Walk(child, leaf));
        }
        return out;
      }
      case Template::Kind::kArray: {
        Json out = Json::array();
        for (const Template& child : t.items) {
          FLOW_ASSIGN_OR_RETURN(Json v, Walk(child, leaf));
          out.push_back(std::move(v));
        }
        return out;
      }
      default:
        return leaf(t);
    }
  }

  Flow<Json> EvalPathTemplate(const Template& tmpl, const Json& input, const StateRun& sr,
                              const VarScope& vars) const {
    return Walk(tmpl, [&](const Template& t) { return EvalPathLeaf(t, input, sr, vars); });
  }

  Flow<Json> EvalPathLeaf(const Template& t, const Json& input, const StateRun& sr,
                          const VarScope& vars) const {
    switch (t.kind) {
      case Template::Kind::kLiteral:
      case Template::Kind::kObject:
      case Template::Kind::kArray:
        return EvalPathTemplate(t, input, sr, vars);
      case Template::Kind::kPath: {
        Result<Json> v = ResolvePath(*t.path, input, sr, vars);
        if (!v.ok() && IsDataLimit(v.status())) return DataLimitFailure(sr, v.status());
        if (!v.ok()) {
          if (t.path->root() == JsonPath::Root::kVariable && !vars.Find(t.path->variable())) {
            return RuntimeError(sr, v.status().message());
          }
          return RuntimeError(
              sr, fmt::format("The JSONPath '{}' specified for the field '{}' could not be found "
                              "in the input '{}'",
                              t.source, t.field, DumpJson(input)));
        }
        return std::move(v).value();
      }
      case Template::Kind::kIntrinsic: {
        Status path_error;
        PathResolver resolve = [&](const JsonPath& p) -> Result<Json> {
          return ResolvePath(p, input, sr, vars);
        };
        Result<Json> v = t.intrinsic->Evaluate(resolve, opt.max_payload_bytes);
        if (!v.ok() && IsDataLimit(v.status())) return DataLimitFailure(sr, v.status());
        if (!v.ok() && v.status().code() == StatusCode::kOutOfRange) {
          return RuntimeError(sr, v.status().message());
        }
        if (!v.ok()) {
          return Failure{"States.IntrinsicFailure",
                         Prefix(sr) + fmt::format("The intrinsic function '{}' specified for the "
                                                  "field '{}' failed: {}",
                                                  t.source, t.field, v.status().message())};
        }
        return std::move(v).value();
      }
      case Template::Kind::kJsonata:
        break;
    }
    return RuntimeError(sr, "a JSONata expression in a JSONPath state");
  }

  // ---- JSONata evaluation ----

  struct StatesVar {
    const Json* input = nullptr;
    const Json* result = nullptr;
    const Json* error_output = nullptr;
  };

  Flow<Json> EvalJsonata(const Template& tmpl, const StatesVar& sv, const StateRun& sr,
                         const VarScope& vars) const {
    return Walk(tmpl, [&](const Template& t) { return EvalJsonataLeaf(t, sv, sr, vars); });
  }

  Flow<Json> EvalJsonataLeaf(const Template& t, const StatesVar& sv, const StateRun& sr,
                             const VarScope& vars) const {
    if (t.kind != Template::Kind::kJsonata) {
      return RuntimeError(sr, "a JSONPath expression in a JSONata state");
    }
    jsonata::Bindings b;
    Json states = Json::object();
    if (sv.input != nullptr) states["input"] = *sv.input;
    states["context"] = Context(sr);
    if (sv.result != nullptr) states["result"] = *sv.result;
    if (sv.error_output != nullptr) states["errorOutput"] = *sv.error_output;
    b.emplace("states", std::move(states));
    Json flat = vars.Flatten();
    for (auto it = flat.begin(); it != flat.end(); ++it) b.emplace(it.key(), it.value());
    jsonata::EvalOptions eo = opt.jsonata;
    eo.clock = clock;
    eo.aws_functions = true;
    eo.allow_function_result = false;
    eo.max_result_bytes = opt.max_payload_bytes;
    auto r = t.expr->Evaluate(nullptr, b, eo);
    if (!r.ok() && r.error().code == jsonata::kResultTooLargeCode) {
      return Failure{"States.DataLimitExceeded",
                     Prefix(sr) + fmt::format("The JSONata expression '{}' specified for the field "
                                              "'{}' returned a result larger than {} bytes.",
                                              t.source, t.field, opt.max_payload_bytes)};
    }
    if (!r.ok() && r.error().code == "F0001") {
      return QueryError(sr, fmt::format("The JSONata expression '{}' specified for the field '{}' "
                                        "returned an unsupported result type.",
                                        t.source, t.field));
    }
    if (!r.ok()) {
      return QueryError(sr, fmt::format("The JSONata expression '{}' specified for the field '{}' "
                                        "threw an error during evaluation. {}: {}",
                                        t.source, t.field, r.error().code, r.error().message));
    }
    if (!r->has_value()) {
      return QueryError(sr, fmt::format("The JSONata expression '{}' specified for the field '{}' "
                                        "returned nothing (undefined).",
                                        t.source, t.field));
    }
    return std::move(**r);
  }

  // ---- assignments ----

  Flow<Json> EvalAssign(const Template& t, const Json& path_input, const StatesVar& sv,
                        const StateRun& sr, const VarScope& vars) const {
    if (sr.state->language == QueryLanguage::kJsonata) return EvalJsonata(t, sv, sr, vars);
    return EvalPathTemplate(t, path_input, sr, vars);
  }

  static void Commit(VarScope& vars, const Json& assigned) {
    for (auto it = assigned.begin(); it != assigned.end(); ++it) vars.vars[it.key()] = it.value();
  }

  static Json AssignedDetails(const Json& assigned) {
    Json d = Json::object();
    for (auto it = assigned.begin(); it != assigned.end(); ++it) d[it.key()] = DumpJson(it.value());
    return d;
  }

  // ---- JSONPath data-flow helpers ----

  // InputPath / OutputPath: null gives {}, absent or "$" the value itself, else the path's
  // value (States.Runtime when it selects nothing).
  Flow<Json> ApplySelectPath(bool is_null, const std::optional<JsonPath>& path, const Json& v,
                             const StateRun& sr, const VarScope& vars) const {
    if (is_null) return Json::object();
    if (!path || (path->is_root() && path->root() == JsonPath::Root::kInput)) return v;
    Result<Json> r = ResolvePath(*path, v, sr, vars);
    if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
    if (!r.ok()) {
      return RuntimeError(
          sr, fmt::format("Invalid path '{}' : {}", path->text(), r.status().message()));
    }
    return std::move(r).value();
  }

  Flow<Json> ApplyInputPath(const State& st, const Json& raw, const StateRun& sr,
                            const VarScope& vars) const {
    return ApplySelectPath(st.input_path_null, st.input_path, raw, sr, vars);
  }

  Flow<Json> ApplyResultPath(const State& st, const Json& raw, Json result,
                             const StateRun& sr) const {
    if (st.result_path_null) return raw;
    if (!st.result_path || st.result_path->is_root()) return result;
    Json out = raw;
    Status s = st.result_path->Write(out, std::move(result));
    if (!s.ok()) {
      return Failure{
          "States.ResultPathMatchFailure",
          Prefix(sr) + fmt::format("Unable to apply ResultPath '{}' to the input '{}': {}",
                                   st.result_path->text(), DumpJson(raw), s.message())};
    }
    return out;
  }

  Flow<Json> ApplyOutputPath(const State& st, const Json& v, const StateRun& sr,
                             const VarScope& vars) const {
    return ApplySelectPath(st.output_path_null, st.output_path, v, sr, vars);
  }

  // ---- the state loop ----

  // Runs `sm` from `start` until a terminal state. On failure, records the failing state.
  Flow<Json> RunMachine(const StateMachine& sm, Json input, Lane& lane, std::string start) {
    std::string current = std::move(start);
    while (true) {
      const State* st = sm.Find(current);
      if (st == nullptr) {
        return Failure{"States.Runtime", fmt::format("The state '{}' does not exist", current)};
      }
      if (!SinkOk()) return Failure{"States.Runtime", sink_status.message()};
      if (Cancelled()) return Failure{"States.Aborted", "the execution was stopped"};
      if (deadline_micros && clock->NowMicros() > *deadline_micros) return TimeoutFailure();
      if (HistoryFull(lane)) return HistoryLimitFailure();
      // The input's text serves the checkpoint and the entered event: serialized once.
      std::string input_text;
      if (lane.top_level && opt.events != nullptr) {
        input_text = DumpJson(input);
        sink_status = Checkpoint(*st, input, input_text, lane);
      }
      Flow<StepResult> r = RunState(*st, input, lane, lane.top_level ? &input_text : nullptr);
      if (!r.ok()) {
        if (lane.top_level) {
          failed_state = st->name;
          failed_input = std::move(input);
        }
        return std::move(r.failure());
      }
      if (r.value().next.empty()) return std::move(r.value().output);
      current = std::move(r.value().next);
      input = std::move(r.value().output);
    }
  }

  Status Checkpoint(const State& st, const Json& input, const std::string& input_text,
                    const Lane& lane);

  // Whether events of `lane` reach a sink: when not, their details are not built.
  bool Recording(const Lane& lane) const { return opt.events != nullptr && lane.record_events; }

  // `raw_text`: DumpJson(raw) when the caller has it already (empty or nullptr: not yet).
  Flow<StepResult> RunState(const State& st, const Json& raw, Lane& lane,
                            std::string* raw_text = nullptr) {
    StateRun sr;
    sr.state = &st;
    sr.entered_micros = clock->NowMicros();
    Json entered;
    if (Recording(lane)) {
      entered = Json::object();
      entered["input"] =
          raw_text != nullptr && !raw_text->empty() ? std::move(*raw_text) : DumpJson(raw);
      entered["inputDetails"] = Json{{"truncated", false}};
      entered["name"] = st.name;
    }
    sr.entered_event_id =
        Emit(lane, fmt::format("{}StateEntered", StateTypeName(st.type)), std::move(entered));

    Flow<StepResult> r = Execute(st, raw, lane, sr);
    if (!r.ok()) return r;
    // A state can build a value deeper than any input (a Pass wrapping its input, in a loop):
    // copying, comparing and serializing recurse once per level, so such an output must not
    // travel on. JsonDepth stops at the limit, so this is cheap.
    if (JsonDepth(r.value().output) > kMaxJsonDepth) {
      return RuntimeError(sr, fmt::format("The output of the state '{}' is nested deeper than {} "
                                          "levels.",
                                          st.name, kMaxJsonDepth));
    }
    if ((sr.output_bytes >= 0
             ? sr.output_bytes
             : static_cast<int64_t>(CompactJsonSize(r.value().output))) > opt.max_payload_bytes) {
      return Failure{"States.DataLimitExceeded",
                     fmt::format("The state/task '{}' returned a result with a size exceeding the "
                                 "maximum number of bytes service limit.",
                                 st.name)};
    }
    return r;
  }

  // Runs the body with Retry and Catch around it.
  Flow<StepResult> Execute(const State& st, const Json& raw, Lane& lane, StateRun& sr) {
    std::vector<int> attempts(st.retry.size(), 0);
    while (true) {
      Json assigned = Json::object();
      Flow<StepResult> r = Body(st, raw, lane, sr, &assigned);
      if (r.ok()) {
        Json exited;
        if (Recording(lane)) {
          exited = Json::object();
          if (!assigned.empty()) {
            exited["assignedVariables"] = AssignedDetails(assigned);
            exited["assignedVariablesDetails"] = Json{{"truncated", false}};
          }
          exited["name"] = st.name;
          std::string output_text = DumpJson(r.value().output);
          sr.output_bytes = static_cast<int64_t>(output_text.size());
          exited["output"] = std::move(output_text);
          exited["outputDetails"] = Json{{"truncated", false}};
        }
        if (st.type != StateType::kFail) {
          Commit(*lane.vars, assigned);
          Emit(lane, fmt::format("{}StateExited", StateTypeName(st.type)), std::move(exited));
        }
        return r;
      }
      Failure f = std::move(r.failure());
      if (EndsExecution(f) || HistoryFull(lane)) return f;
      // Retry.
      bool retried = false;
      for (size_t i = 0; i < st.retry.size(); ++i) {
        const Retrier& rt = st.retry[i];
        if (!ErrorMatches(rt.error_equals, f.error)) continue;
        if (attempts[i] >= rt.max_attempts) break;
        double delay = rt.interval_seconds * std::pow(rt.backoff_rate, attempts[i]);
        if (rt.max_delay_seconds) delay = std::min(delay, *rt.max_delay_seconds);
        // BackoffRate^attempts can pass any bound (even to infinity): no retry waits longer
        // than a Wait may, so the conversion to microseconds below cannot overflow.
        if (!(delay <= static_cast<double>(kMaxWaitSeconds))) {
          delay = static_cast<double>(kMaxWaitSeconds);
        }
        if (rt.full_jitter) {
          thread_local std::mt19937_64 rng{std::random_device{}()};
          delay = std::uniform_real_distribution<double>(0, delay)(rng);
        }
        ++attempts[i];
        ++sr.retry_count;
        FLOW_ASSIGN_OR_RETURN(bool waited, WaitFor(static_cast<int64_t>(delay * 1e6)));
        (void)waited;
        retried = true;
        break;
      }
      if (retried) continue;
      // Catch.
      for (const Catcher& c : st.catchers) {
        if (!ErrorMatches(c.error_equals, f.error)) continue;
        return ApplyCatch(st, c, raw, f, lane, sr);
      }
      return f;
    }
  }

  Flow<StepResult> ApplyCatch(const State& st, const Catcher& c, const Json& raw, const Failure& f,
                              Lane& lane, const StateRun& sr) {
    Json error_output = Json::object();
    error_output["Error"] = f.error.value_or("");
    error_output["Cause"] = f.cause.value_or("");
    Json output;
    Json assigned = Json::object();
    if (st.language == QueryLanguage::kJsonata) {
      StatesVar sv;
      sv.input = &raw;
      sv.error_output = &error_output;
      if (c.assign) {
        FLOW_ASSIGN_OR_RETURN(assigned, EvalJsonata(*c.assign, sv, sr, *lane.vars));
      }
      if (c.output) {
        FLOW_ASSIGN_OR_RETURN(output, EvalJsonata(*c.output, sv, sr, *lane.vars));
      } else {
        output = error_output;
      }
    } else {
      if (c.assign) {
        FLOW_ASSIGN_OR_RETURN(assigned, EvalPathTemplate(*c.assign, error_output, sr, *lane.vars));
      }
      if (c.result_path_null) {
        output = raw;
      } else if (!c.result_path || c.result_path->is_root()) {
        output = error_output;
      } else {
        output = raw;
        Status s = c.result_path->Write(output, error_output);
        if (!s.ok()) {
          return Failure{"States.ResultPathMatchFailure",
                         Prefix(sr) + fmt::format("Unable to apply ResultPath '{}': {}",
                                                  c.result_path->text(), s.message())};
        }
      }
    }
    Commit(*lane.vars, assigned);
    Json exited = Json::object();
    if (!assigned.empty()) {
      exited["assignedVariables"] = AssignedDetails(assigned);
      exited["assignedVariablesDetails"] = Json{{"truncated", false}};
    }
    exited["name"] = st.name;
    exited["output"] = DumpJson(output);
    exited["outputDetails"] = Json{{"truncated", false}};
    Emit(lane, fmt::format("{}StateExited", StateTypeName(st.type)), std::move(exited));
    return StepResult{std::move(output), c.next};
  }

  // One attempt of the state's work. Assignments go to `assigned` (committed by the caller).
  Flow<StepResult> Body(const State& st, const Json& raw, Lane& lane, StateRun& sr,
                        Json* assigned) {
    switch (st.type) {
      case StateType::kChoice:
        return RunChoice(st, raw, lane, sr, assigned);
      case StateType::kWait:
        return RunWait(st, raw, lane, sr, assigned);
      case StateType::kSucceed: {
        Json out;
        if (st.language == QueryLanguage::kJsonata) {
          if (st.output) {
            StatesVar sv;
            sv.input = &raw;
            FLOW_ASSIGN_OR_RETURN(out, EvalJsonata(*st.output, sv, sr, *lane.vars));
          } else {
            out = raw;
          }
        } else {
          FLOW_ASSIGN_OR_RETURN(Json eff, ApplyInputPath(st, raw, sr, *lane.vars));
          FLOW_ASSIGN_OR_RETURN(out, ApplyOutputPath(st, eff, sr, *lane.vars));
        }
        return StepResult{std::move(out), ""};
      }
      case StateType::kFail:
        return RunFail(st, raw, sr, *lane.vars);
      default:
        break;
    }
    // Pass, Task, Parallel, Map share the data flow.
    if (st.language == QueryLanguage::kJsonata) {
      StatesVar sv;
      sv.input = &raw;
      Json args = raw;
      bool has_args = false;
      if (st.arguments && st.type != StateType::kMap) {
        FLOW_ASSIGN_OR_RETURN(args, EvalJsonata(*st.arguments, sv, sr, *lane.vars));
        has_args = true;
      }
      Json result;
      bool has_result = st.type != StateType::kPass;
      switch (st.type) {
        case StateType::kPass:
          result = raw;
          break;
        case StateType::kTask: {
          FLOW_ASSIGN_OR_RETURN(result,
                                RunTask(st, has_args ? args : Json::object(), raw, lane, sr));
          break;
        }
        case StateType::kParallel: {
          FLOW_ASSIGN_OR_RETURN(result, RunParallel(st, args, lane, sr));
          break;
        }
        case StateType::kMap: {
          FLOW_ASSIGN_OR_RETURN(result, RunMap(st, raw, raw, lane, sr));
          break;
        }
        default:
          break;
      }
      if (has_result) sv.result = &result;
      if (st.assign) {
        FLOW_ASSIGN_OR_RETURN(*assigned, EvalJsonata(*st.assign, sv, sr, *lane.vars));
      }
      Json out;
      if (st.output) {
        FLOW_ASSIGN_OR_RETURN(out, EvalJsonata(*st.output, sv, sr, *lane.vars));
      } else {
        out = std::move(result);
      }
      return StepResult{std::move(out), st.next};
    }
    FLOW_ASSIGN_OR_RETURN(Json eff, ApplyInputPath(st, raw, sr, *lane.vars));
    Json result;
    switch (st.type) {
      case StateType::kPass:
        if (st.parameters) {
          FLOW_ASSIGN_OR_RETURN(eff, EvalPathTemplate(*st.parameters, eff, sr, *lane.vars));
        }
        result = st.result ? *st.result : eff;
        break;
      case StateType::kTask: {
        Json params = eff;
        if (st.parameters) {
          FLOW_ASSIGN_OR_RETURN(params, EvalPathTemplate(*st.parameters, eff, sr, *lane.vars));
        }
        FLOW_ASSIGN_OR_RETURN(result, RunTask(st, params, eff, lane, sr));
        break;
      }
      case StateType::kParallel: {
        Json params = eff;
        if (st.parameters) {
          FLOW_ASSIGN_OR_RETURN(params, EvalPathTemplate(*st.parameters, eff, sr, *lane.vars));
        }
        FLOW_ASSIGN_OR_RETURN(result, RunParallel(st, params, lane, sr));
        break;
      }
      case StateType::kMap: {
        FLOW_ASSIGN_OR_RETURN(result, RunMap(st, raw, eff, lane, sr));
        break;
      }
      default:
        break;
    }
    if (st.result_selector) {
      FLOW_ASSIGN_OR_RETURN(result, EvalPathTemplate(*st.result_selector, result, sr, *lane.vars));
    }
    if (st.assign) {
      FLOW_ASSIGN_OR_RETURN(*assigned, EvalPathTemplate(*st.assign, result, sr, *lane.vars));
    }
    FLOW_ASSIGN_OR_RETURN(Json merged, ApplyResultPath(st, raw, std::move(result), sr));
    FLOW_ASSIGN_OR_RETURN(Json out, ApplyOutputPath(st, merged, sr, *lane.vars));
    return StepResult{std::move(out), st.next};
  }

  // ---- Choice ----

  Flow<bool> EvalRule(const ChoiceRule& rule, const Json& input, const StateRun& sr,
                      const VarScope& vars, const StatesVar& sv) const {
    switch (rule.kind) {
      case ChoiceRule::Kind::kAnd:
        for (const ChoiceRule& c : rule.children) {
          FLOW_ASSIGN_OR_RETURN(bool v, EvalRule(c, input, sr, vars, sv));
          if (!v) return false;
        }
        return true;
      case ChoiceRule::Kind::kOr:
        for (const ChoiceRule& c : rule.children) {
          FLOW_ASSIGN_OR_RETURN(bool v, EvalRule(c, input, sr, vars, sv));
          if (v) return true;
        }
        return false;
      case ChoiceRule::Kind::kNot: {
        FLOW_ASSIGN_OR_RETURN(bool v, EvalRule(rule.children[0], input, sr, vars, sv));
        return !v;
      }
      case ChoiceRule::Kind::kJsonata: {
        FLOW_ASSIGN_OR_RETURN(Json v, EvalJsonata(*rule.condition, sv, sr, vars));
        if (!v.is_boolean()) {
          return QueryError(sr,
                            fmt::format("The Condition '{}' returned a {} value, not a boolean.",
                                        rule.condition->source, JsonTypeName(v)));
        }
        return v.get<bool>();
      }
      case ChoiceRule::Kind::kCompare:
        break;
    }
    Result<Json> var = ResolvePath(*rule.variable, input, sr, vars);
    if (!var.ok() && IsDataLimit(var.status())) return DataLimitFailure(sr, var.status());
    if (rule.op == "IsPresent") return var.ok() == rule.operand.get<bool>();
    if (!var.ok()) {
      return RuntimeError(sr, fmt::format("Invalid path '{}': The choice state's condition path "
                                          "references an invalid value.",
                                          rule.variable->text()));
    }
    const Json& v = *var;
    Json operand = rule.operand;
    if (rule.path_operand) {
      Result<Json> o = ResolvePath(*rule.path_operand, input, sr, vars);
      if (!o.ok() && IsDataLimit(o.status())) return DataLimitFailure(sr, o.status());
      if (!o.ok()) {
        return RuntimeError(sr, fmt::format("Invalid path '{}': The choice state's condition path "
                                            "references an invalid value.",
                                            rule.path_operand->text()));
      }
      operand = std::move(o).value();
    }
    const std::string& op = rule.op;
    if (op == "IsNull") return v.is_null() == operand.get<bool>();
    if (op == "IsNumeric") return v.is_number() == operand.get<bool>();
    if (op == "IsString") return v.is_string() == operand.get<bool>();
    if (op == "IsBoolean") return v.is_boolean() == operand.get<bool>();
    if (op == "IsTimestamp") {
      bool ts = v.is_string() && ParseTimestampMicros(v.get<std::string>()).has_value();
      return ts == operand.get<bool>();
    }
    if (op == "BooleanEquals") return v.is_boolean() && operand.is_boolean() && v == operand;
    if (op == "StringMatches") {
      return v.is_string() && operand.is_string() &&
             WildcardMatch(v.get<std::string>(), operand.get<std::string>());
    }
    int cmp = 0;
    if (op.rfind("String", 0) == 0) {
      if (!v.is_string() || !operand.is_string()) return false;
      int c = v.get_ref<const std::string&>().compare(operand.get_ref<const std::string&>());
      cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
    } else if (op.rfind("Numeric", 0) == 0) {
      if (!v.is_number() || !operand.is_number()) return false;
      if (v.is_number_integer() && operand.is_number_integer() && !v.is_number_unsigned() &&
          !operand.is_number_unsigned()) {
        int64_t a = v.get<int64_t>(), b = operand.get<int64_t>();
        cmp = a < b ? -1 : a > b ? 1 : 0;
      } else {
        double a = v.get<double>(), b = operand.get<double>();
        cmp = a < b ? -1 : a > b ? 1 : 0;
      }
    } else if (op.rfind("Timestamp", 0) == 0) {
      if (!v.is_string() || !operand.is_string()) return false;
      auto a = ParseTimestampMicros(v.get<std::string>());
      auto b = ParseTimestampMicros(operand.get<std::string>());
      if (!a || !b) return false;
      cmp = *a < *b ? -1 : *a > *b ? 1 : 0;
    }
    std::string_view rel = op;
    if (rel.size() >= 6 && rel.substr(rel.size() - 6) == "Equals" &&
        (rel.find("ThanEquals") == std::string_view::npos)) {
      return cmp == 0;
    }
    if (rel.find("LessThanEquals") != std::string_view::npos) return cmp <= 0;
    if (rel.find("GreaterThanEquals") != std::string_view::npos) return cmp >= 0;
    if (rel.find("LessThan") != std::string_view::npos) return cmp < 0;
    if (rel.find("GreaterThan") != std::string_view::npos) return cmp > 0;
    return false;
  }

  Flow<StepResult> RunChoice(const State& st, const Json& raw, Lane& lane, StateRun& sr,
                             Json* assigned) {
    StatesVar sv;
    sv.input = &raw;
    Json eff = raw;
    if (st.language == QueryLanguage::kJsonPath) {
      FLOW_ASSIGN_OR_RETURN(eff, ApplyInputPath(st, raw, sr, *lane.vars));
    }
    const ChoiceRule* matched = nullptr;
    for (const ChoiceRule& rule : st.choices) {
      FLOW_ASSIGN_OR_RETURN(bool ok, EvalRule(rule, eff, sr, *lane.vars, sv));
      if (ok) {
        matched = &rule;
        break;
      }
    }
    std::string next;
    const std::optional<Template>* assign = &st.assign;
    const std::optional<Template>* output = &st.output;
    if (matched != nullptr) {
      next = matched->next;
      assign = &matched->assign;
      if (matched->output) output = &matched->output;
    } else if (!st.default_next.empty()) {
      next = st.default_next;
    } else {
      return Failure{"States.NoChoiceMatched",
                     Prefix(sr) + "No Choice Rule matched and there is no Default."};
    }
    if (*assign) {
      FLOW_ASSIGN_OR_RETURN(*assigned, EvalAssign(**assign, eff, sv, sr, *lane.vars));
    }
    Json out;
    if (st.language == QueryLanguage::kJsonata) {
      if (*output) {
        FLOW_ASSIGN_OR_RETURN(out, EvalJsonata(**output, sv, sr, *lane.vars));
      } else {
        out = raw;
      }
    } else {
      FLOW_ASSIGN_OR_RETURN(out, ApplyOutputPath(st, eff, sr, *lane.vars));
    }
    return StepResult{std::move(out), next};
  }

  // ---- Wait ----

  Flow<StepResult> RunWait(const State& st, const Json& raw, Lane& lane, StateRun& sr,
                           Json* assigned) {
    StatesVar sv;
    sv.input = &raw;
    Json eff = raw;
    if (st.language == QueryLanguage::kJsonPath) {
      FLOW_ASSIGN_OR_RETURN(eff, ApplyInputPath(st, raw, sr, *lane.vars));
    }
    int64_t wait_micros = 0;
    if (st.wait_seconds) {
      Json v;
      if (st.language == QueryLanguage::kJsonata) {
        FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*st.wait_seconds, sv, sr, *lane.vars));
      } else {
        v = st.wait_seconds->literal;
      }
      if (!WholeNumberIn(v, 0, kMaxWaitSeconds)) {
        return QueryError(sr, fmt::format("The Seconds field must be an integer from 0 to {}, "
                                          "but was: {}",
                                          kMaxWaitSeconds, DumpJson(v)));
      }
      wait_micros = static_cast<int64_t>(v.get<double>()) * 1000000;
    } else if (st.seconds_path) {
      Result<Json> v = ResolvePath(*st.seconds_path, eff, sr, *lane.vars);
      if (!v.ok() && IsDataLimit(v.status())) return DataLimitFailure(sr, v.status());
      const std::string& p = st.seconds_path->text();
      if (!v.ok()) {
        return RuntimeError(
            sr, fmt::format("The SecondsPath parameter does not reference an input value: {}", p));
      }
      if (v->is_number_float()) {
        double d = v->get<double>();
        if (d != std::floor(d)) {
          return RuntimeError(sr, fmt::format("The SecondsPath parameter cannot be parsed as a "
                                              "long value: {} == {}",
                                              p, DumpJson(*v)));
        }
      } else if (!v->is_number()) {
        return RuntimeError(sr, fmt::format("The SecondsPath parameter cannot be parsed as a long "
                                            "value: {} == {}",
                                            p, DumpJson(*v)));
      }
      if (v->get<double>() < 0) {
        return RuntimeError(sr, fmt::format("The SecondsPath parameter references a negative "
                                            "value: {} == {}",
                                            p, DumpJson(*v)));
      }
      if (!WholeNumberIn(*v, 0, kMaxWaitSeconds)) {
        return RuntimeError(sr, fmt::format("The SecondsPath parameter references a value "
                                            "above the maximum of {} seconds: {} == {}",
                                            kMaxWaitSeconds, p, DumpJson(*v)));
      }
      wait_micros = static_cast<int64_t>(v->get<double>()) * 1000000;
    } else {
      std::string text;
      if (st.timestamp_path) {
        Result<Json> v = ResolvePath(*st.timestamp_path, eff, sr, *lane.vars);
        if (!v.ok() && IsDataLimit(v.status())) return DataLimitFailure(sr, v.status());
        if (!v.ok()) {
          return RuntimeError(sr, fmt::format("The TimestampPath parameter does not reference an "
                                              "input value: {}",
                                              st.timestamp_path->text()));
        }
        std::string shown = v->is_string() ? v->get<std::string>() : DumpJson(*v);
        if (!v->is_string() || !ParseTimestampMicros(v->get<std::string>())) {
          return RuntimeError(sr, fmt::format("The TimestampPath parameter does not reference a "
                                              "valid ISO-8601 extended offset date-time format "
                                              "string: {} == {}",
                                              st.timestamp_path->text(), shown));
        }
        text = v->get<std::string>();
      } else {
        Json v;
        if (st.language == QueryLanguage::kJsonata) {
          FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*st.wait_timestamp, sv, sr, *lane.vars));
        } else {
          v = st.wait_timestamp->literal;
        }
        std::string shown = v.is_string() ? v.get<std::string>() : DumpJson(v);
        if (!v.is_string() || !ParseTimestampMicros(v.get<std::string>())) {
          return QueryError(sr, fmt::format("The Timestamp field cannot be parsed as an ISO-8601 "
                                            "extended offset date-time format string: {}",
                                            shown));
        }
        text = v.get<std::string>();
      }
      wait_micros = *ParseTimestampMicros(text) - clock->NowMicros();
    }
    FLOW_ASSIGN_OR_RETURN(bool waited, WaitFor(wait_micros));
    (void)waited;
    if (st.assign) {
      FLOW_ASSIGN_OR_RETURN(*assigned, EvalAssign(*st.assign, eff, sv, sr, *lane.vars));
    }
    Json out;
    if (st.language == QueryLanguage::kJsonata) {
      if (st.output) {
        FLOW_ASSIGN_OR_RETURN(out, EvalJsonata(*st.output, sv, sr, *lane.vars));
      } else {
        out = raw;
      }
    } else {
      FLOW_ASSIGN_OR_RETURN(out, ApplyOutputPath(st, eff, sr, *lane.vars));
    }
    return StepResult{std::move(out), st.next};
  }

  // ---- Fail ----

  Flow<std::optional<std::string>> FailField(const State& st, const std::optional<Template>& t,
                                             bool from_path, const Json& raw, const StateRun& sr,
                                             const VarScope& vars) const {
    if (!t) return std::optional<std::string>();
    Json v;
    if (st.language == QueryLanguage::kJsonata) {
      StatesVar sv;
      sv.input = &raw;
      FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*t, sv, sr, vars));
    } else if (from_path && t->kind == Template::Kind::kPath) {
      Result<Json> r = ResolvePath(*t->path, raw, sr, vars);
      if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
      if (!r.ok()) {
        return RuntimeError(sr, fmt::format("The JSONPath '{}' specified for the field '{}' could "
                                            "not be found in the input '{}'",
                                            t->source, t->field, DumpJson(raw)));
      }
      v = std::move(r).value();
    } else {
      FLOW_ASSIGN_OR_RETURN(v, EvalPathTemplate(*t, raw, sr, vars));
    }
    return std::optional<std::string>(v.is_string() ? v.get<std::string>() : DumpJson(v));
  }

  Flow<StepResult> RunFail(const State& st, const Json& raw, const StateRun& sr,
                           const VarScope& vars) {
    FLOW_ASSIGN_OR_RETURN(std::optional<std::string> error,
                          FailField(st, st.error, st.error_from_path, raw, sr, vars));
    FLOW_ASSIGN_OR_RETURN(std::optional<std::string> cause,
                          FailField(st, st.cause, st.cause_from_path, raw, sr, vars));
    return Failure{std::move(error), std::move(cause)};
  }

  // ---- Task ----

  Flow<std::optional<int64_t>> TaskSeconds(const State& st, const std::optional<Template>& t,
                                           const Json& eff, const Json& raw, const StateRun& sr,
                                           const VarScope& vars) const {
    if (!t) return std::optional<int64_t>();
    Json v;
    if (t->kind == Template::Kind::kLiteral) {
      v = t->literal;
    } else if (st.language == QueryLanguage::kJsonata) {
      StatesVar sv;
      sv.input = &raw;
      FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*t, sv, sr, vars));
    } else {
      FLOW_ASSIGN_OR_RETURN(v, EvalPathTemplate(*t, eff, sr, vars));
    }
    if (!v.is_number() || v.get<double>() < 1) {
      return RuntimeError(sr, fmt::format("The field '{}' must be a positive integer, but was: {}",
                                          t->field, DumpJson(v)));
    }
    if (!(v.get<double>() <= static_cast<double>(kMaxTimeoutSeconds))) {
      return RuntimeError(sr, fmt::format("The field '{}' must be at most {}, but was: {}",
                                          t->field, kMaxTimeoutSeconds, DumpJson(v)));
    }
    return std::optional<int64_t>(static_cast<int64_t>(v.get<double>()));
  }

  Flow<Json> RunTask(const State& st, const Json& params, const Json& eff, Lane& lane,
                     const StateRun& sr) {
    TaskRequest req;
    req.state_name = st.name;
    req.resource = st.resource;
    req.parameters = params;
    FLOW_ASSIGN_OR_RETURN(req.timeout_seconds,
                          TaskSeconds(st, st.timeout_seconds, eff, eff, sr, *lane.vars));
    FLOW_ASSIGN_OR_RETURN(req.heartbeat_seconds,
                          TaskSeconds(st, st.heartbeat_seconds, eff, eff, sr, *lane.vars));
    Json ctx = Context(sr);
    req.context = &ctx;
    std::string type =
        opt.tasks != nullptr ? opt.tasks->ResourceType(st.resource) : std::string("unknown");
    Json sched = Json::object();
    sched["resourceType"] = type;
    sched["resource"] = st.resource;
    sched["region"] = opt.region;
    sched["parameters"] = DumpJson(params);
    if (req.timeout_seconds) sched["timeoutInSeconds"] = *req.timeout_seconds;
    if (req.heartbeat_seconds) sched["heartbeatInSeconds"] = *req.heartbeat_seconds;
    Emit(lane, "TaskScheduled", std::move(sched));
    Emit(lane, "TaskStarted", Json{{"resourceType", type}, {"resource", st.resource}});
    if (opt.tasks == nullptr) {
      Failure f{"States.TaskFailed",
                fmt::format("No task runner is configured for resource '{}'", st.resource)};
      Emit(lane, "TaskFailed",
           Json{{"resourceType", type},
                {"resource", st.resource},
                {"error", *f.error},
                {"cause", *f.cause}});
      return f;
    }
    SyncSink();  // a task may take long: show it started
    std::variant<Json, TaskError> r = opt.tasks->Run(req);
    if (auto* err = std::get_if<TaskError>(&r)) {
      bool timed_out = err->error == "States.Timeout";
      Emit(lane, timed_out ? "TaskTimedOut" : "TaskFailed",
           Json{{"resourceType", type},
                {"resource", st.resource},
                {"error", err->error},
                {"cause", err->cause}});
      return Failure{err->error, err->cause};
    }
    Json out = std::move(std::get<Json>(r));
    Json done = Payload("output", out);
    done["resourceType"] = type;
    done["resource"] = st.resource;
    Emit(lane, "TaskSucceeded", std::move(done));
    return out;
  }

  // ---- Parallel ----

  Flow<Json> RunParallel(const State& st, const Json& input, Lane& lane, const StateRun& sr) {
    (void)sr;
    Emit(lane, "ParallelStateStarted", Json());
    Json results = Json::array();
    // Branches that wait on tasks or timers run side by side (as on AWS); the first failing
    // branch in definition order fails the state, like the inline loop.
    bool waits = false;
    for (const auto& branch : st.branches) waits |= Waits(*branch);
    if (opt.map_threads > 1 && waits && st.branches.size() > 1) {
      const size_t n = st.branches.size();
      std::vector<std::optional<Flow<Json>>> done(n);
      std::vector<int64_t> last(n, 0);
      std::vector<std::thread> pool;
      auto run = [&](size_t i) {
        VarScope scope;
        scope.parent = lane.vars;
        Lane child;
        child.prev_event = lane.prev_event;
        child.vars = &scope;
        child.record_events = lane.record_events;
        child.child_events = lane.child_events;
        done[i].emplace(RunMachine(*st.branches[i], input, child, st.branches[i]->start_at));
        last[i] = child.prev_event;
      };
      for (size_t i = 1; i < n; ++i) pool.emplace_back(run, i);
      run(0);
      for (std::thread& t : pool) t.join();
      for (size_t i = 0; i < n; ++i) {
        lane.prev_event = std::max(lane.prev_event, last[i]);
        if (!done[i]->ok()) {
          Emit(lane, "ParallelStateFailed", Json());
          return std::move(done[i]->failure());
        }
        results.push_back(std::move(done[i]->value()));
      }
      Emit(lane, "ParallelStateSucceeded", Json(), false);
      return results;
    }
    // Every branch's first event follows ParallelStateStarted; the state's closing event
    // follows the last event of any branch.
    const int64_t started = lane.prev_event;
    for (const auto& branch : st.branches) {
      VarScope scope;
      scope.parent = lane.vars;
      Lane child;
      child.prev_event = started;
      child.vars = &scope;
      child.record_events = lane.record_events;
      child.child_events = lane.child_events;
      Flow<Json> r = RunMachine(*branch, input, child, branch->start_at);
      lane.prev_event = std::max(lane.prev_event, child.prev_event);
      if (!r.ok()) {
        Emit(lane, "ParallelStateFailed", Json());
        return std::move(r.failure());
      }
      results.push_back(std::move(r.value()));
    }
    Emit(lane, "ParallelStateSucceeded", Json(), false);
    return results;
  }

  // ---- Map ----

  // Reads an integer-valued Map setting from its literal, path or expression form.
  Flow<std::optional<double>> MapNumber(const std::optional<Template>& literal,
                                        const std::optional<JsonPath>& path,
                                        const std::string& path_name, bool integer, const Json& eff,
                                        const Json& raw, const StateRun& sr,
                                        const VarScope& vars) const {
    Json v;
    if (path) {
      Result<Json> r = ResolvePath(*path, eff, sr, vars);
      if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
      if (!r.ok()) {
        return RuntimeError(sr, fmt::format("The {} field refers to a path that does not exist: {}",
                                            path_name, path->text()));
      }
      v = std::move(r).value();
      if (v.is_string()) {
        // AWS accepts numbers written as strings ("1") here.
        Json parsed = Json::parse(v.get<std::string>(), nullptr, false);
        if (!parsed.is_discarded() && parsed.is_number()) v = std::move(parsed);
      }
      bool ok = v.is_number() && (!integer || v.is_number_integer() ||
                                  v.get<double>() == std::floor(v.get<double>()));
      if (!ok) {
        std::string shown = v.is_string() ? v.get<std::string>() : DumpJson(v);
        return RuntimeError(
            sr, fmt::format("The {} field refers to value \"{}\" which is not a "
                            "valid {}: {}",
                            path_name, shown, integer ? "integer" : "float", path->text()));
      }
      return std::optional<double>(v.get<double>());
    }
    if (!literal) return std::optional<double>();
    if (literal->kind == Template::Kind::kLiteral) {
      v = literal->literal;
    } else {
      StatesVar sv;
      sv.input = &raw;
      FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*literal, sv, sr, vars));
    }
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      return QueryError(sr, fmt::format("The {} field must be a number, but was: {}",
                                        literal->field, DumpJson(v)));
    }
    return std::optional<double>(v.get<double>());
  }

  Flow<Json> RunMap(const State& st, const Json& raw, const Json& eff, Lane& lane, StateRun& sr) {
    const bool jsonata = st.language == QueryLanguage::kJsonata;
    StatesVar sv;
    sv.input = &raw;
    // The items.
    Json items;
    if (jsonata) {
      if (st.items) {
        if (st.items->kind == Template::Kind::kJsonata) {
          FLOW_ASSIGN_OR_RETURN(items, EvalJsonata(*st.items, sv, sr, *lane.vars));
          if (!items.is_array()) {
            return QueryError(sr,
                              fmt::format("The JSONata expression '{}' specified for the field "
                                          "'Items' returned an unexpected result type. "
                                          "Expected 'array', but was '{}' for value: {}",
                                          st.items->source, JsonTypeName(items), DumpJson(items)));
          }
        } else {
          FLOW_ASSIGN_OR_RETURN(items, EvalJsonata(*st.items, sv, sr, *lane.vars));
        }
      } else {
        items = raw;
      }
    } else if (st.items_path) {
      Result<Json> r = ResolvePath(*st.items_path, eff, sr, *lane.vars);
      if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
      if (!r.ok()) {
        return RuntimeError(
            sr, fmt::format("Invalid path '{}' : {}", st.items_path->text(), r.status().message()));
      }
      items = std::move(r).value();
    } else {
      items = eff;
    }
    if (!st.item_reader.is_null()) {
      FLOW_ASSIGN_OR_RETURN(items, ReadItems(st, raw, eff, sr, *lane.vars));
    }
    if (!items.is_array()) {
      return QueryError(
          sr, fmt::format("Map state input must be an array but was: {}", DumpJson(items)));
    }
    // Settings.
    FLOW_ASSIGN_OR_RETURN(std::optional<double> max_concurrency,
                          MapNumber(st.max_concurrency, st.max_concurrency_path,
                                    "MaxConcurrencyPath", true, eff, raw, sr, *lane.vars));
    FLOW_ASSIGN_OR_RETURN(std::optional<double> tolerated_count,
                          MapNumber(st.tolerated_failure_count, st.tolerated_count_path,
                                    "ToleratedFailureCountPath", true, eff, raw, sr, *lane.vars));
    FLOW_ASSIGN_OR_RETURN(
        std::optional<double> tolerated_pct,
        MapNumber(st.tolerated_failure_percentage, st.tolerated_pct_path,
                  "ToleratedFailurePercentagePath", false, eff, raw, sr, *lane.vars));
    Emit(lane, "MapStateStarted", Json{{"length", items.size()}});
    // Counts beyond any item count act alike: clamped, they convert to integers safely.
    if (max_concurrency) {
      max_concurrency = std::min(*max_concurrency, static_cast<double>(kMaxMapCount));
    }
    if (tolerated_count) {
      tolerated_count = std::min(*tolerated_count, static_cast<double>(kMaxMapCount));
    }
    if (tolerated_count && *tolerated_count < 0) {
      return RuntimeError(sr, "ToleratedFailureCount cannot be negative.");
    }
    if (tolerated_pct && (*tolerated_pct < 0 || *tolerated_pct > 100)) {
      return RuntimeError(sr, "ToleratedFailurePercentage must be between 0 and 100.");
    }
    if (st.distributed) {
      Emit(lane, "MapRunStarted", Json::object());
    }
    const bool batched = !st.item_batcher.is_null();
    if (batched) {
      FLOW_ASSIGN_OR_RETURN(items, BatchMapItems(st, std::move(items), raw, eff, sr, *lane.vars));
    }
    const bool writer = !st.result_writer.is_null();
    std::vector<internal::ChildOutcome> outcomes;
    const std::string map_run_id = NewId(*clock);
    Json results = Json::array();
    int64_t failures = 0;
    const size_t n = items.size();
    // Iterations that wait on tasks or timers run on up to MaxConcurrency threads; pure data
    // flow runs inline, where threads would cost more than they save.
    const size_t threads = MapThreads(st, max_concurrency, n);
    std::vector<std::optional<Flow<Json>>> done;
    std::vector<int64_t> done_prev, done_start, done_stop;
    if (threads > 1) {
      std::vector<Json> inputs(n);
      for (size_t i = 0; i < n; ++i) {
        inputs[i] = items[i];
        if (!batched && (st.parameters || st.arguments)) {
          StateRun isr = sr;
          isr.map_item_value = &items[i];
          isr.map_item_index = static_cast<int64_t>(i);
          if (jsonata) {
            FLOW_ASSIGN_OR_RETURN(inputs[i], EvalJsonata(*st.arguments, sv, isr, *lane.vars));
          } else {
            FLOW_ASSIGN_OR_RETURN(inputs[i],
                                  EvalPathTemplate(*st.parameters, eff, isr, *lane.vars));
          }
        }
      }
      done.resize(n);
      done_prev.assign(n, 0);
      done_start.assign(n, 0);
      done_stop.assign(n, 0);
      std::atomic<size_t> next{0};
      std::atomic<bool> stop{false};
      std::atomic<int64_t> failed{0};
      const bool tolerant = tolerated_count || tolerated_pct;
      auto worker = [&] {
        for (size_t i = next++; i < n && !stop.load(); i = next++) {
          VarScope scope;
          scope.parent = st.distributed ? nullptr : lane.vars;
          Lane child;
          child.vars = &scope;
          child.prev_event = lane.prev_event;
          child.record_events = lane.record_events && !st.distributed;
          child.child_events = lane.record_events && st.distributed
                                   ? std::make_shared<std::atomic<int64_t>>(0)
                                   : lane.child_events;
          done_start[i] = clock->NowMicros();
          if (!st.distributed) {
            Emit(child, "MapIterationStarted",
                 Json{{"index", static_cast<int64_t>(i)}, {"name", st.name}});
          }
          Flow<Json> r =
              RunMachine(*st.processor, std::move(inputs[i]), child, st.processor->start_at);
          if (!st.distributed) {
            Emit(child, r.ok() ? "MapIterationSucceeded" : "MapIterationFailed",
                 Json{{"index", static_cast<int64_t>(i)}, {"name", st.name}}, !r.ok());
          }
          if (!r.ok()) {
            // Fatal once neither tolerance can hold any more (failures only grow).
            int64_t f = ++failed;
            bool over_count = !tolerated_count || f > static_cast<int64_t>(*tolerated_count);
            bool over_pct =
                !tolerated_pct ||
                static_cast<double>(f) * 100.0 / static_cast<double>(n) > *tolerated_pct;
            bool fatal = !tolerant || (over_count && over_pct) ||
                         r.failure().error == std::optional<std::string>("States.Aborted");
            if (fatal) stop.store(true);
          }
          done_stop[i] = clock->NowMicros();
          done_prev[i] = child.prev_event;
          done[i].emplace(std::move(r));
        }
      };
      std::vector<std::thread> pool;
      for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
      worker();
      for (std::thread& t : pool) t.join();
      for (size_t i = 0; i < n; ++i) {
        if (done[i]) lane.prev_event = std::max(lane.prev_event, done_prev[i]);
      }
    }
    const bool tolerant = tolerated_count || tolerated_pct;
    // Records iteration i's outcome in index order. Returns the failure that ends the Map: a
    // stop, or a failing iteration when no tolerance is set (further failures are counted and
    // judged against the tolerance once every iteration ran).
    auto collect = [&](size_t i, Flow<Json>& r, int64_t start,
                       int64_t stop) -> std::optional<Failure> {
      if (writer) {
        internal::ChildOutcome o;
        o.name = fmt::format("{}:{}", map_run_id, i);
        o.succeeded = r.ok();
        o.input = items[i];
        if (r.ok()) {
          o.output = r.value();
        } else {
          o.error = r.failure().error.value_or("");
          o.cause = r.failure().cause.value_or("");
        }
        o.start_micros = start;
        o.stop_micros = stop;
        outcomes.push_back(std::move(o));
      }
      if (r.ok()) {
        results.push_back(std::move(r.value()));
        return std::nullopt;
      }
      if (r.failure().error == std::optional<std::string>("States.Aborted")) {
        return std::move(r.failure());
      }
      ++failures;
      if (!tolerant) {
        Emit(lane, "MapStateFailed", Json());
        return std::move(r.failure());
      }
      Json err = Json::object();
      if (r.failure().error) err["Error"] = *r.failure().error;
      if (r.failure().cause) err["Cause"] = *r.failure().cause;
      results.push_back(std::move(err));
      return std::nullopt;
    };
    for (size_t i = 0; i < n; ++i) {
      if (threads > 1) {
        if (!done[i]) break;  // not started: an earlier failure stopped the Map
        if (auto f = collect(i, *done[i], done_start[i], done_stop[i])) return std::move(*f);
        continue;
      }
      Json item_input = items[i];
      const int64_t child_start = clock->NowMicros();
      if (!batched && (st.parameters || st.arguments)) {
        StateRun isr = sr;
        isr.map_item_value = &items[i];
        isr.map_item_index = static_cast<int64_t>(i);
        if (jsonata) {
          FLOW_ASSIGN_OR_RETURN(item_input, EvalJsonata(*st.arguments, sv, isr, *lane.vars));
        } else {
          FLOW_ASSIGN_OR_RETURN(item_input, EvalPathTemplate(*st.parameters, eff, isr, *lane.vars));
        }
      }
      VarScope scope;
      scope.parent = st.distributed ? nullptr : lane.vars;
      Lane child;
      child.vars = &scope;
      child.prev_event = lane.prev_event;
      child.record_events = lane.record_events && !st.distributed;
      child.child_events = lane.record_events && st.distributed
                               ? std::make_shared<std::atomic<int64_t>>(0)
                               : lane.child_events;
      if (!st.distributed) {
        Emit(child, "MapIterationStarted",
             Json{{"index", static_cast<int64_t>(i)}, {"name", st.name}});
      }
      Flow<Json> r =
          RunMachine(*st.processor, std::move(item_input), child, st.processor->start_at);
      const bool aborted =
          !r.ok() && r.failure().error == std::optional<std::string>("States.Aborted");
      if (!st.distributed && !aborted) {
        Emit(child, r.ok() ? "MapIterationSucceeded" : "MapIterationFailed",
             Json{{"index", static_cast<int64_t>(i)}, {"name", st.name}}, !r.ok());
      }
      if (!aborted) lane.prev_event = child.prev_event;
      if (auto f = collect(i, r, child_start, clock->NowMicros())) return std::move(*f);
    }
    if (failures > 0) {
      bool within =
          (tolerated_count && failures <= static_cast<int64_t>(*tolerated_count)) ||
          (tolerated_pct && n > 0 &&
           static_cast<double>(failures) * 100.0 / static_cast<double>(n) <= *tolerated_pct);
      if (!within) {
        if (st.distributed) Emit(lane, "MapRunFailed", Json::object());
        Emit(lane, "MapStateFailed", Json());
        return Failure{"States.ExceedToleratedFailureThreshold",
                       "The specified tolerated failure threshold was exceeded"};
      }
    }
    if (writer) {
      FLOW_ASSIGN_OR_RETURN(results,
                            WriteMapResults(st, outcomes, map_run_id, raw, eff, sr, *lane.vars));
    }
    if (st.distributed) Emit(lane, "MapRunSucceeded", Json::object());
    Emit(lane, "MapStateSucceeded", Json(), false);
    return results;
  }

  // True when `sm` (or a machine nested in it) has a Task or Wait state: its iterations spend
  // their time waiting, so running them side by side pays.
  static bool Waits(const StateMachine& sm) {
    for (const auto& [name, st] : sm.states) {
      if (st.type == StateType::kTask || st.type == StateType::kWait) return true;
      for (const auto& b : st.branches) {
        if (Waits(*b)) return true;
      }
      if (st.processor != nullptr && Waits(*st.processor)) return true;
    }
    return false;
  }

  // Threads for a Map's iterations: 1 (inline) unless the options allow more and the
  // iterations wait; then MaxConcurrency (0: unlimited) capped by the options and the items.
  size_t MapThreads(const State& st, std::optional<double> max_concurrency, size_t items) const {
    if (opt.map_threads <= 1 || items <= 1 || !Waits(*st.processor)) return 1;
    size_t limit = static_cast<size_t>(opt.map_threads);
    if (max_concurrency && *max_concurrency >= 1) {
      limit = std::min(limit, static_cast<size_t>(*max_concurrency));
    }
    return std::min(limit, items);
  }

  // ---- distributed Map data sources and sinks (local S3 stand-in) ----

  // An ItemReader/ResultWriter parameters object, evaluated.
  Flow<Json> IoParameters(const std::optional<Template>& t, const Json& raw, const Json& eff,
                          const StateRun& sr, const VarScope& vars) {
    if (!t) return Json::object();
    if (sr.state->language == QueryLanguage::kJsonata) {
      StatesVar sv;
      sv.input = &raw;
      return EvalJsonata(*t, sv, sr, vars);
    }
    return EvalPathTemplate(*t, eff, sr, vars);
  }

  // A count of ReaderConfig/ItemBatcher: literal, JSONata expression or <field>Path.
  Flow<int64_t> IoCount(const Json& obj, const std::string& field, int64_t absent, const Json& raw,
                        const Json& eff, const StateRun& sr, const VarScope& vars) {
    Json v;
    if (auto it = obj.find(field); it != obj.end()) {
      v = *it;
      if (it->is_string()) {
        Template t;
        // Compiled at validation; compile again here (rare: once per Map state run).
        std::string text = it->get<std::string>();
        if (text.size() >= 4 && text.compare(0, 2, "{%") == 0)
          text = text.substr(2, text.size() - 4);
        auto expr = jsonata::Expression::Compile(text);
        if (!expr.ok())
          return QueryError(sr, fmt::format("invalid {}: {}", field, expr.error().message));
        t.kind = Template::Kind::kJsonata;
        t.source = text;
        t.field = field;
        t.expr = std::make_shared<jsonata::Expression>(std::move(expr).value());
        StatesVar sv;
        sv.input = &raw;
        FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(t, sv, sr, vars));
      }
    } else if (auto p = obj.find(field + "Path"); p != obj.end() && p->is_string()) {
      auto path = JsonPath::Parse(p->get<std::string>());
      Result<Json> r = path.ok() ? ResolvePath(*path, eff, sr, vars) : Result<Json>(path.status());
      if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
      if (!r.ok()) {
        return RuntimeError(sr, fmt::format("Invalid path '{}' for {}Path: {}",
                                            p->get<std::string>(), field, r.status().message()));
      }
      v = std::move(r).value();
    } else {
      return absent;
    }
    if (!v.is_number() || v.get<double>() < 0) {
      return RuntimeError(
          sr, fmt::format("{} must be a non-negative integer, but was: {}", field, DumpJson(v)));
    }
    return static_cast<int64_t>(v.get<double>());
  }

  Flow<std::string> BucketDir(const std::string& bucket, const char* error, bool for_write,
                              const StateRun& sr) {
    if (!opt.bucket_dir) {
      return Failure{error, Prefix(sr) + "no local S3 stand-in is configured for this run"};
    }
    Result<std::string> dir = opt.bucket_dir(bucket, for_write);
    if (!dir.ok()) return Failure{error, Prefix(sr) + dir.status().message()};
    return std::move(dir).value();
  }

  Flow<Json> ReadItems(const State& st, const Json& raw, const Json& eff, const StateRun& sr,
                       const VarScope& vars) {
    static const char* kError = "States.ItemReaderFailed";
    const Json& reader = st.item_reader;
    const Json cfg = reader.value("ReaderConfig", Json::object());
    FLOW_ASSIGN_OR_RETURN(Json params, IoParameters(st.reader_parameters, raw, eff, sr, vars));
    FLOW_ASSIGN_OR_RETURN(int64_t max_items, IoCount(cfg, "MaxItems", -1, raw, eff, sr, vars));
    if (max_items == 0) max_items = -1;  // 0 means no limit, as on AWS
    if (!params.is_object() || !params.contains("Bucket") || !params["Bucket"].is_string()) {
      return Failure{kError, Prefix(sr) + "ItemReader parameters need a string Bucket"};
    }
    FLOW_ASSIGN_OR_RETURN(std::string dir,
                          BucketDir(params["Bucket"].get<std::string>(), kError, false, sr));
    auto fail = [&](const Status& s) { return Failure{kError, Prefix(sr) + s.message()}; };
    if (reader.value("Resource", "") == "arn:aws:states:::s3:listObjectsV2") {
      std::string prefix = params.value("Prefix", "");
      Result<Json> r = internal::ListObjects(dir, prefix, max_items);
      if (!r.ok()) return fail(r.status());
      return std::move(r).value();
    }
    if (!params.contains("Key") || !params["Key"].is_string()) {
      return Failure{kError, Prefix(sr) + "s3:getObject needs a string Key"};
    }
    std::string key = params["Key"].get<std::string>();
    Result<std::string> path = internal::ObjectPath(dir, key);
    if (!path.ok()) return fail(path.status());
    std::string type = cfg.value("InputType", "JSON");
    std::string origin = fmt::format("s3://{}/{}", params["Bucket"].get<std::string>(), key);
    if (type == "PARQUET") {
      if (!opt.read_parquet) {
        return Failure{kError, Prefix(sr) + "PARQUET input is not available in this build"};
      }
      Result<Json> r = opt.read_parquet(*path, max_items);
      if (!r.ok()) return fail(r.status());
      return std::move(r).value();
    }
    Result<std::string> text = PosixFileSystem::Default()->ReadFile(*path);
    if (!text.ok()) {
      return Failure{kError, Prefix(sr) + fmt::format("cannot read {} ({}): {}", origin, *path,
                                                      text.status().message())};
    }
    Result<Json> items = Json();
    if (type == "CSV") {
      internal::CsvOptions co;
      Result<char> d = internal::CsvDelimiterFor(cfg.value("CSVDelimiter", "COMMA"));
      if (!d.ok()) return fail(d.status());
      co.delimiter = *d;
      co.header_first_row = cfg.value("CSVHeaderLocation", "FIRST_ROW") == "FIRST_ROW";
      if (!co.header_first_row) co.headers = cfg.value("CSVHeaders", std::vector<std::string>{});
      items = internal::ParseCsvItems(*text, co, max_items, origin);
    } else if (type == "MANIFEST") {
      // An S3 Inventory-style manifest: one "bucket,key" CSV line per object.
      internal::CsvOptions co;
      co.header_first_row = false;
      co.headers = {"Bucket", "Key"};
      items = internal::ParseCsvItems(*text, co, max_items, origin);
    } else {
      items = internal::ParseJsonItems(*text, type == "JSONL", max_items, origin);
    }
    if (!items.ok()) return fail(items.status());
    return std::move(items).value();
  }

  // ItemSelector per item, then ItemBatcher's grouping.
  Flow<Json> BatchMapItems(const State& st, Json items, const Json& raw, const Json& eff,
                           const StateRun& sr, const VarScope& vars) {
    const bool jsonata = st.language == QueryLanguage::kJsonata;
    if (st.parameters || st.arguments) {
      StatesVar sv;
      sv.input = &raw;
      for (size_t i = 0; i < items.size(); ++i) {
        StateRun isr = sr;
        isr.map_item_value = &items[i];
        isr.map_item_index = static_cast<int64_t>(i);
        Json selected;
        if (jsonata) {
          FLOW_ASSIGN_OR_RETURN(selected, EvalJsonata(*st.arguments, sv, isr, vars));
        } else {
          FLOW_ASSIGN_OR_RETURN(selected, EvalPathTemplate(*st.parameters, eff, isr, vars));
        }
        items[i] = std::move(selected);
      }
    }
    internal::BatchLimits limits;
    FLOW_ASSIGN_OR_RETURN(limits.max_items,
                          IoCount(st.item_batcher, "MaxItemsPerBatch", 0, raw, eff, sr, vars));
    FLOW_ASSIGN_OR_RETURN(limits.max_bytes,
                          IoCount(st.item_batcher, "MaxInputBytesPerBatch", 0, raw, eff, sr, vars));
    Json batch_input;
    if (st.batch_input) {
      FLOW_ASSIGN_OR_RETURN(batch_input, IoParameters(st.batch_input, raw, eff, sr, vars));
    }
    return internal::BatchItems(items, limits, batch_input);
  }

  Flow<Json> WriteMapResults(const State& st, const std::vector<internal::ChildOutcome>& outcomes,
                             const std::string& map_run_id, const Json& raw, const Json& eff,
                             const StateRun& sr, const VarScope& vars) {
    static const char* kError = "States.ResultWriterFailed";
    const Json& w = st.result_writer;
    internal::ResultWriterSpec spec;
    const Json cfg = w.value("WriterConfig", Json::object());
    spec.output_type = cfg.value("OutputType", "JSON");
    spec.transformation = w.contains("WriterConfig") ? cfg.value("Transformation", "NONE") : "";
    std::string sm_name = ctx_state_machine.value("Name", "StateMachine");
    std::string label = st.label.empty() ? st.name : st.label;
    spec.map_run_id = map_run_id;
    spec.map_run_arn = fmt::format("arn:aws:states:{}:{}:mapRun:{}/{}:{}", opt.region, opt.account,
                                   sm_name, label, map_run_id);
    spec.state_machine_arn = fmt::format("arn:aws:states:{}:{}:stateMachine:{}/{}", opt.region,
                                         opt.account, sm_name, label);
    spec.execution_arn_prefix = fmt::format("arn:aws:states:{}:{}:execution:{}/{}:", opt.region,
                                            opt.account, sm_name, label);
    if (w.contains("Resource")) {
      FLOW_ASSIGN_OR_RETURN(Json params, IoParameters(st.writer_parameters, raw, eff, sr, vars));
      if (!params.is_object() || !params.contains("Bucket") || !params["Bucket"].is_string()) {
        return Failure{kError, Prefix(sr) + "ResultWriter parameters need a string Bucket"};
      }
      spec.bucket = params["Bucket"].get<std::string>();
      spec.prefix = params.value("Prefix", "");
      FLOW_ASSIGN_OR_RETURN(spec.bucket_dir, BucketDir(spec.bucket, kError, true, sr));
    }
    Result<Json> out = internal::WriteResults(outcomes, spec);
    if (!out.ok()) return Failure{kError, Prefix(sr) + out.status().message()};
    return std::move(out).value();
  }
};

Status Engine::Impl::Checkpoint(const State& st, const Json& input, const std::string& input_text,
                                const Lane& lane) {
  if (!sink_status.ok()) return sink_status;
  return opt.events->Checkpoint(st.name, input, input_text, lane.vars->vars);
}

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Engine::~Engine() = default;

const Json& Engine::final_variables() const { return impl_->final_vars; }

namespace {

std::string Arn(const EngineOptions& o, const char* kind, const std::string& name) {
  return fmt::format("arn:aws:states:{}:{}:{}:{}", o.region, o.account, kind, name);
}

}  // namespace

ExecutionResult Engine::Run(const StateMachine& machine, const Json& input,
                            const std::string& execution_name) {
  RedrivePoint start;
  start.state = machine.start_at;
  start.input = input;
  start.variables = Json::object();
  start.redrive_count = 0;
  start.next_event_id = 1;
  return Redrive(machine, input, execution_name, start);
}

ExecutionResult Engine::Redrive(const StateMachine& machine, const Json& original_input,
                                const std::string& execution_name, const RedrivePoint& point) {
  Impl& m = *impl_;
  m.next_event_id = point.next_event_id;
  m.sink_status = Status::Ok();
  m.start_micros = m.clock->NowMicros();
  m.failed_state.clear();
  m.failed_input = Json();
  m.history_full.store(false);
  // An input nested deeper than kMaxJsonDepth would overflow the stack when copied or
  // serialized: it is not touched (callers parse inputs with ParseJson, which refuses them).
  const bool too_deep = JsonDepth(original_input) > kMaxJsonDepth ||
                        JsonDepth(point.input) > kMaxJsonDepth ||
                        JsonDepth(point.variables) > kMaxJsonDepth;
  // The deadline: the state machine's TimeoutSeconds or the maximum execution duration,
  // whichever comes first. Both are bounded (99999999 s, 100 years), so no product overflows.
  const EngineOptions& o = m.opt;
  m.deadline_micros.reset();
  m.deadline_is_max_duration = false;
  if (machine.timeout_seconds) {
    m.deadline_micros =
        m.start_micros + std::min(*machine.timeout_seconds, kMaxTimeoutSeconds) * 1000000;
  }
  if (o.max_execution_seconds > 0) {
    int64_t max_micros =
        m.start_micros + std::min<int64_t>(o.max_execution_seconds, int64_t{1} << 32) * 1000000;
    if (!m.deadline_micros || max_micros < *m.deadline_micros) {
      m.deadline_micros = max_micros;
      m.deadline_is_max_duration = true;
    }
  }
  m.ctx_execution = Json::object();
  m.ctx_execution["Id"] = Arn(o, "execution", o.state_machine_name + ":" + execution_name);
  m.ctx_execution["Input"] = too_deep ? Json() : original_input;
  m.ctx_execution["StartTime"] = FormatIsoUtc(m.start_micros);
  m.ctx_execution["Name"] = execution_name;
  m.ctx_execution["RoleArn"] = o.role_arn;
  if (!o.express) m.ctx_execution["RedriveCount"] = point.redrive_count;
  m.ctx_state_machine = Json::object();
  m.ctx_state_machine["Id"] = Arn(o, "stateMachine", o.state_machine_name);
  m.ctx_state_machine["Name"] = o.state_machine_name;

  VarScope vars;
  vars.vars = point.variables.is_object() && !too_deep ? point.variables : Json::object();
  Lane lane;
  lane.vars = &vars;
  lane.top_level = true;
  lane.prev_event = point.next_event_id - 1;

  ExecutionResult result;
  if (point.redrive_count == 0) {
    Json started = Impl::Payload("input", too_deep ? Json() : original_input);
    started["roleArn"] = o.role_arn;
    m.Emit(lane, "ExecutionStarted", std::move(started));
  } else {
    m.Emit(lane, "ExecutionRedriven", Json{{"redriveCount", point.redrive_count}});
  }
  Flow<Json> r =
      too_deep ? Flow<Json>(Failure{"States.Runtime",
                                    fmt::format("The execution input is nested deeper than {} "
                                                "levels.",
                                                kMaxJsonDepth)})
      : static_cast<int64_t>(JsonSizeBytes(point.input)) > o.max_payload_bytes
          ? Flow<Json>(Failure{"States.DataLimitExceeded",
                               "The execution input exceeds the maximum number of "
                               "bytes service limit."})
          : m.RunMachine(machine, point.input, lane, point.state);
  m.final_vars = vars.vars;
  // The history ran full: whatever the states did after, the execution fails (AWS records
  // ExecutionFailed as the last event).
  if (m.history_full.load()) r = Flow<Json>(m.HistoryLimitFailure());
  if (r.ok()) {
    result.status = ExecutionStatus::kSucceeded;
    result.output = std::move(r.value());
    m.Emit(lane, "ExecutionSucceeded", Impl::Payload("output", result.output));
  } else {
    Failure& f = r.failure();
    result.error = f.error;
    result.cause = f.cause;
    result.failed_state = m.failed_state;
    result.failed_state_input = m.failed_input;
    Json d = Json::object();
    if (f.error) d["error"] = *f.error;
    if (f.cause) d["cause"] = *f.cause;
    if (f.error == std::optional<std::string>("States.Aborted")) {
      result.status = ExecutionStatus::kAborted;
      m.Emit(lane, "ExecutionAborted", std::move(d));
    } else if (f.error == std::optional<std::string>("States.Timeout") && m.deadline_micros &&
               m.clock->NowMicros() > *m.deadline_micros) {
      result.status = ExecutionStatus::kTimedOut;
      m.Emit(lane, "ExecutionTimedOut", std::move(d));
    } else {
      result.status = ExecutionStatus::kFailed;
      m.Emit(lane, "ExecutionFailed", std::move(d));
    }
  }
  if (o.events != nullptr && m.sink_status.ok()) m.sink_status = o.events->Flush();
  if (!m.sink_status.ok()) {
    result.status = ExecutionStatus::kAborted;
    result.error = "Engage.HistoryFailed";
    result.cause = m.sink_status.message();
  }
  return result;
}

}  // namespace engage::flow
