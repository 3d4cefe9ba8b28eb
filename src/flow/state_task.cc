// Task states: TimeoutSeconds/HeartbeatSeconds, the TaskRunner call and its history events.

#include <fmt/format.h>

#include <variant>

#include "flow/engine_internal.h"
#include "flow/util_internal.h"

namespace engage::flow {
namespace {

// TaskRunner::Run returns task failures; one that throws instead (a bug, or a library call that
// threw) fails the task the same way, as States.TaskFailed, which Retry and Catch can handle.
std::variant<Json, TaskError> RunTaskCaught(TaskRunner& tasks, const TaskRequest& req) {
  try {
    return tasks.Run(req);
  } catch (const std::exception& e) {
    return TaskError{"States.TaskFailed", fmt::format("the task runner threw: {}", e.what())};
  }
}

}  // namespace

Flow<std::optional<int64_t>> Engine::Impl::TaskSeconds(const State& st,
                                                       const std::optional<Template>& t,
                                                       const Json& eff, const Json& raw,
                                                       const StateRun& sr,
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
    return RuntimeError(sr, fmt::format("The field '{}' must be at most {}, but was: {}", t->field,
                                        kMaxTimeoutSeconds, DumpJson(v)));
  }
  return std::optional<int64_t>(static_cast<int64_t>(v.get<double>()));
}

Flow<Json> Engine::Impl::RunTask(const State& st, const Json& params, const Json& eff, Lane& lane,
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
  req.stopped = [this, &lane] { return Stopping(lane); };
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
  std::variant<Json, TaskError> r = RunTaskCaught(*opt.tasks, req);
  // Stopped while the task ran (its Map iteration or Parallel branch, or the execution): the
  // task is aborted, whatever it returned; Execute records TaskStateAborted.
  if (Stopping(lane)) return StopFailure(lane);
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

}  // namespace engage::flow
