// The ASL interpreter's execution loop (see engine_internal.h for how the engine is split):
// Run/Redrive, the history events, the context object, JSONPath/JSONata evaluation and the data
// flow every state shares, Retry and Catch. The work of each state type is in state_*.cc.

#include "engage/flow/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>

#include "engage/core/ids.h"
#include "flow/engine_internal.h"
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

std::map<int64_t, Json> SucceededMapIterations(const std::vector<Event>& history,
                                               const std::string& state) {
  std::map<int64_t, const Event*> by_id;
  for (const Event& e : history) by_id[e.id] = &e;
  auto name_is = [&](const Event& e) {
    return e.details.is_object() && e.details.contains("name") && e.details["name"] == state;
  };
  // The last visit: a redrive re-enters the Map right after ExecutionRedriven.
  size_t begin = history.size();
  for (size_t k = history.size(); k-- > 0;) {
    const Event& e = history[k];
    if (e.type != "MapStateEntered" || !name_is(e)) continue;
    auto prev = by_id.find(e.previous_event_id);
    if (prev != by_id.end() && prev->second->type == "ExecutionRedriven") continue;
    begin = k;
    break;
  }
  std::map<int64_t, Json> out;
  for (size_t k = begin; k < history.size(); ++k) {
    const Event& e = history[k];
    if (e.type != "MapIterationSucceeded" || !name_is(e) || !e.details.contains("index") ||
        !e.details["index"].is_number_integer()) {
      continue;
    }
    auto last = by_id.find(e.previous_event_id);
    if (last == by_id.end()) continue;
    const Event& exited = *last->second;
    std::string_view type = exited.type;
    if (!type.ends_with("StateExited") || !exited.details.is_object() ||
        !exited.details.contains("output") || !exited.details["output"].is_string()) {
      continue;  // not the iteration's last state: run the iteration again
    }
    Result<Json> output =
        ParseJson(exited.details["output"].get<std::string>(), "an iteration's output");
    if (!output.ok()) continue;
    out[e.details["index"].get<int64_t>()] = std::move(output).value();
  }
  return out;
}

namespace internal {

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

}  // namespace internal

namespace {

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

}  // namespace

void Engine::Impl::SyncSink() {
  std::lock_guard<std::mutex> lock(emit_mu);
  if (opt.events != nullptr && sink_status.ok()) {
    sink_status = internal::Caught([&] { return opt.events->Sync(); }, "the history sink");
  }
}

bool Engine::Impl::SinkOk() {
  std::lock_guard<std::mutex> lock(emit_mu);
  return sink_status.ok();
}

int64_t Engine::Impl::Emit(Lane& lane, std::string type, Json details, bool advance) {
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
    sink_status = internal::Caught([&] { return opt.events->Append(e); }, "the history sink");
  }
  if (advance) lane.prev_event = id;
  return id;
}

Json Engine::Impl::Payload(const char* key, const Json& v) {
  Json d = Json::object();
  d[key] = DumpJson(v);
  d[std::string(key) + "Details"] = Json{{"truncated", false}};
  return d;
}

void Engine::Impl::Sleep(int64_t micros, const Lane& lane) {
  constexpr int64_t kSliceMicros = int64_t{3600} * 1000000;
  // A lane its Map or Parallel state may stop polls its signal this often while it waits.
  constexpr int64_t kStopPollMicros = 200000;
  const int64_t slice_max = lane.stop != nullptr ? kStopPollMicros : kSliceMicros;
  while (micros > 0 && !Stopping(lane)) {
    int64_t slice = std::min(micros, slice_max);
    if (opt.sleep) {
      opt.sleep(slice);
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(slice));
    }
    micros -= slice;
  }
}

Failure Engine::Impl::StopFailure(const Lane& lane) const {
  (void)lane;
  if (Cancelled()) return Failure{"States.Aborted", "the execution was stopped"};
  return Failure{kStoppedError, "stopped: another iteration or branch failed"};
}

bool Engine::Impl::EndsExecution(const Failure& f) const {
  return IsAbort(f) ||
         (f.error == std::optional<std::string>("States.Timeout") && PastDeadline()) ||
         history_full.load();
}

bool Engine::Impl::HistoryFull(const Lane& lane) const {
  if (opt.max_history_events <= 0) return false;
  if (!lane.record_events && lane.child_events) {
    return lane.child_events->load() >= opt.max_history_events;
  }
  return history_full.load();
}

Failure Engine::Impl::HistoryLimitFailure() const {
  return Failure{"States.Runtime",
                 fmt::format("The execution reached the maximum number of history events ({}).",
                             opt.max_history_events)};
}

Failure Engine::Impl::TimeoutFailure() const {
  if (deadline_is_max_duration) {
    return Failure{"States.Timeout",
                   fmt::format("The execution ran longer than the maximum execution duration "
                               "({} s).",
                               max_duration_seconds)};
  }
  return Failure{"States.Timeout", "The execution timed out (TimeoutSeconds)."};
}

Flow<bool> Engine::Impl::WaitFor(int64_t micros, const Lane& lane) {
  if (micros > 0) SyncSink();
  if (deadline_micros) {
    int64_t left = *deadline_micros - clock->NowMicros() + 1;
    if (micros >= left) {
      Sleep(left, lane);
      if (Stopping(lane)) return StopFailure(lane);
      return TimeoutFailure();
    }
  }
  Sleep(micros, lane);
  if (Stopping(lane)) return StopFailure(lane);
  return true;
}

Json Engine::Impl::Context(const StateRun& sr) const {
  Json ctx = Json::object();
  ctx["Execution"] = ctx_execution;
  ctx["StateMachine"] = ctx_state_machine;
  Json state = Json::object();
  state["Name"] = sr.state->name;
  state["EnteredTime"] = FormatIsoUtc(sr.entered_micros);
  if (sr.state->type == StateType::kTask) state["RetryCount"] = sr.retry_count;
  ctx["State"] = std::move(state);
  if (sr.map_item_value != nullptr) {
    ctx["Map"] = Json{{"Item", Json{{"Index", sr.map_item_index}, {"Value", *sr.map_item_value}}}};
  }
  return ctx;
}

Result<Json> Engine::Impl::ResolvePath(const JsonPath& path, const Json& input, const StateRun& sr,
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

template <typename Leaf>
Flow<Json> Engine::Impl::Walk(const Template& t, const Leaf& leaf) {
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

Flow<Json> Engine::Impl::EvalPathTemplate(const Template& tmpl, const Json& input,
                                          const StateRun& sr, const VarScope& vars) const {
  return Walk(tmpl, [&](const Template& t) { return EvalPathLeaf(t, input, sr, vars); });
}

Flow<Json> Engine::Impl::EvalPathLeaf(const Template& t, const Json& input, const StateRun& sr,
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

Flow<Json> Engine::Impl::EvalJsonata(const Template& tmpl, const StatesVar& sv, const StateRun& sr,
                                     const VarScope& vars) const {
  return Walk(tmpl, [&](const Template& t) { return EvalJsonataLeaf(t, sv, sr, vars); });
}

Flow<Json> Engine::Impl::EvalJsonataLeaf(const Template& t, const StatesVar& sv, const StateRun& sr,
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

Flow<Json> Engine::Impl::EvalAssign(const Template& t, const Json& path_input, const StatesVar& sv,
                                    const StateRun& sr, const VarScope& vars) const {
  if (sr.state->language == QueryLanguage::kJsonata) return EvalJsonata(t, sv, sr, vars);
  return EvalPathTemplate(t, path_input, sr, vars);
}

void Engine::Impl::Commit(VarScope& vars, const Json& assigned) {
  for (auto it = assigned.begin(); it != assigned.end(); ++it) vars.vars[it.key()] = it.value();
}

Json Engine::Impl::AssignedDetails(const Json& assigned) {
  Json d = Json::object();
  for (auto it = assigned.begin(); it != assigned.end(); ++it) d[it.key()] = DumpJson(it.value());
  return d;
}

Flow<Json> Engine::Impl::ApplySelectPath(bool is_null, const std::optional<JsonPath>& path,
                                         const Json& v, const StateRun& sr,
                                         const VarScope& vars) const {
  if (is_null) return Json::object();
  if (!path || (path->is_root() && path->root() == JsonPath::Root::kInput)) return v;
  Result<Json> r = ResolvePath(*path, v, sr, vars);
  if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
  if (!r.ok()) {
    return RuntimeError(sr,
                        fmt::format("Invalid path '{}' : {}", path->text(), r.status().message()));
  }
  return std::move(r).value();
}

Flow<Json> Engine::Impl::ApplyInputPath(const State& st, const Json& raw, const StateRun& sr,
                                        const VarScope& vars) const {
  return ApplySelectPath(st.input_path_null, st.input_path, raw, sr, vars);
}

Flow<Json> Engine::Impl::ApplyResultPath(const State& st, const Json& raw, Json result,
                                         const StateRun& sr) const {
  if (st.result_path_null) return raw;
  if (!st.result_path || st.result_path->is_root()) return result;
  Json out = raw;
  Status s = st.result_path->Write(out, std::move(result));
  if (!s.ok()) {
    return Failure{"States.ResultPathMatchFailure",
                   Prefix(sr) + fmt::format("Unable to apply ResultPath '{}' to the input '{}': {}",
                                            st.result_path->text(), DumpJson(raw), s.message())};
  }
  return out;
}

Flow<Json> Engine::Impl::ApplyOutputPath(const State& st, const Json& v, const StateRun& sr,
                                         const VarScope& vars) const {
  return ApplySelectPath(st.output_path_null, st.output_path, v, sr, vars);
}

Flow<Json> Engine::Impl::RunMachine(const StateMachine& sm, Json input, Lane& lane,
                                    std::string start) {
  std::string current = std::move(start);
  while (true) {
    const State* st = sm.Find(current);
    if (st == nullptr) {
      return Failure{"States.Runtime", fmt::format("The state '{}' does not exist", current)};
    }
    if (!SinkOk()) return Failure{"States.Runtime", sink_status.message()};
    if (Stopping(lane)) return StopFailure(lane);
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

Flow<StepResult> Engine::Impl::RunState(const State& st, const Json& raw, Lane& lane,
                                        std::string* raw_text) {
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

void Engine::Impl::EmitAborted(const State& st, Lane& lane, const Failure& f) {
  // AWS records <Type>StateAborted for the states that can be under way when a stop comes: a
  // Task, a Wait, a Map or a Parallel (there is no such event for the others).
  if (!IsAbort(f)) return;
  if (st.type == StateType::kTask || st.type == StateType::kWait || st.type == StateType::kMap ||
      st.type == StateType::kParallel) {
    Emit(lane, fmt::format("{}StateAborted", StateTypeName(st.type)), Json());
  }
}

Flow<StepResult> Engine::Impl::Execute(const State& st, const Json& raw, Lane& lane, StateRun& sr) {
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
    if (EndsExecution(f) || HistoryFull(lane)) {
      EmitAborted(st, lane, f);
      return f;
    }
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
      Flow<bool> waited = WaitFor(static_cast<int64_t>(delay * 1e6), lane);
      if (!waited.ok()) {
        EmitAborted(st, lane, waited.failure());
        return std::move(waited.failure());
      }
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

Flow<StepResult> Engine::Impl::ApplyCatch(const State& st, const Catcher& c, const Json& raw,
                                          const Failure& f, Lane& lane, const StateRun& sr) {
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

Flow<StepResult> Engine::Impl::Body(const State& st, const Json& raw, Lane& lane, StateRun& sr,
                                    Json* assigned) {
  switch (st.type) {
    case StateType::kChoice:
      return RunChoice(st, raw, lane, sr, assigned);
    case StateType::kWait:
      return RunWait(st, raw, lane, sr, assigned);
    case StateType::kSucceed:
      return RunSucceed(st, raw, lane, sr);
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
        FLOW_ASSIGN_OR_RETURN(result, RunTask(st, has_args ? args : Json::object(), raw, lane, sr));
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
    case StateType::kPass: {
      FLOW_ASSIGN_OR_RETURN(result, PassResult(st, eff, sr, *lane.vars));
      break;
    }
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

bool Engine::Impl::Waits(const StateMachine& sm) {
  for (const auto& [name, st] : sm.states) {
    if (st.type == StateType::kTask || st.type == StateType::kWait) return true;
    for (const auto& b : st.branches) {
      if (Waits(*b)) return true;
    }
    if (st.processor != nullptr && Waits(*st.processor)) return true;
  }
  return false;
}

Flow<Json> Engine::Impl::RunMachineCaught(const StateMachine& sm, Json input, Lane& lane,
                                          std::string start) {
  try {
    return RunMachine(sm, std::move(input), lane, std::move(start));
  } catch (const std::exception& e) {
    return Failure{"States.Runtime", fmt::format("internal error: {}", e.what())};
  }
}

Status Engine::Impl::Checkpoint(const State& st, const Json& input, const std::string& input_text,
                                const Lane& lane) {
  if (!sink_status.ok()) return sink_status;
  return internal::Caught(
      [&] { return opt.events->Checkpoint(st.name, input, input_text, lane.vars->vars); },
      "the history sink");
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
  // States run under RunMachineCaught and sink calls under Caught; this is the backstop for
  // the rest (a copy of the input that runs out of memory, say), so that no exception leaves
  // the engine.
  try {
    return RedriveUnguarded(machine, original_input, execution_name, point);
  } catch (const std::exception& e) {
    ExecutionResult result;
    result.status = ExecutionStatus::kFailed;
    result.error = "States.Runtime";
    result.cause = fmt::format("internal error: {}", e.what());
    return result;
  }
}

ExecutionResult Engine::RedriveUnguarded(const StateMachine& machine, const Json& original_input,
                                         const std::string& execution_name,
                                         const RedrivePoint& point) {
  Impl& m = *impl_;
  if (m.opt.express && point.redrive_count > 0) {
    // AWS: RedriveExecution "is not supported by EXPRESS state machines".
    ExecutionResult refused;
    refused.status = ExecutionStatus::kFailed;
    refused.error = "States.Runtime";
    refused.cause = "An EXPRESS execution cannot be redriven.";
    return refused;
  }
  m.next_event_id = point.next_event_id;
  m.sink_status = Status::Ok();
  m.start_micros = m.clock->NowMicros();
  m.failed_state.clear();
  m.failed_input = Json();
  m.redrive_map_state = point.succeeded_iterations.empty() ? "" : point.state;
  m.redrive_iterations = point.succeeded_iterations;
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
  // AWS: Express Workflows run for up to five minutes.
  const int64_t max_seconds =
      o.express ? (o.max_execution_seconds > 0
                       ? std::min<int64_t>(o.max_execution_seconds, kMaxExpressSeconds)
                       : kMaxExpressSeconds)
                : o.max_execution_seconds;
  m.max_duration_seconds = max_seconds;
  if (max_seconds > 0) {
    int64_t max_micros =
        m.start_micros + std::min<int64_t>(max_seconds, int64_t{1} << 32) * 1000000;
    if (!m.deadline_micros || max_micros < *m.deadline_micros) {
      m.deadline_micros = max_micros;
      m.deadline_is_max_duration = true;
    }
  }
  m.ctx_execution = Json::object();
  // An EXPRESS execution's ARN has a part of its own after the name (AWS: arn:aws:states:
  // <region>:<account>:express:<machine>:<name>:<id>, as the recorded Express case shows).
  m.ctx_execution["Id"] =
      o.express ? Arn(o, "express",
                      fmt::format("{}:{}:{}", o.state_machine_name, execution_name,
                                  o.execution_id.empty() ? NewId(*m.clock) : o.execution_id))
                : Arn(o, "execution", o.state_machine_name + ":" + execution_name);
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
          : m.RunMachineCaught(machine, point.input, lane, point.state);
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
  if (o.events != nullptr && m.sink_status.ok()) {
    m.sink_status = internal::Caught([&] { return o.events->Flush(); }, "the history sink");
  }
  if (!m.sink_status.ok()) {
    result.status = ExecutionStatus::kAborted;
    result.error = "Engage.HistoryFailed";
    result.cause = m.sink_status.message();
  }
  return result;
}

}  // namespace engage::flow
