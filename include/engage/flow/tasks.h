// The task registry: what ASL Task states run when Engage executes a definition locally.
//
//   TaskRegistry tasks(config.flow);
//   tasks.RegisterStep("query", [&](const Json& p) { return RunQuery(p); }, "Runs SQL");
//   ENGAGE_RETURN_IF_ERROR(tasks.LoadMocks("mocks.json", "MyMachine", "HappyPath"));
//   EngineOptions o; o.tasks = &tasks;
//
// Resources, in the order they are tried:
//  1. a mock for the state (Step Functions Local's mock-config format, see LoadMocks);
//  2. "engage:<step>" or "arn:aws:states:::engage:<step>": a registered Engage step;
//  3. "arn:aws:states:::lambda:invoke" (FunctionName from the parameters) and plain Lambda ARNs:
//     the command configured under [flow.lambda.<name>], else a registered step of that name;
//  4. "arn:aws:states:::ecs:runTask.sync" / "...:runTask" (TaskDefinition): [flow.ecs.<family>].
// A command gets the payload as JSON on stdin and prints its JSON result on stdout. A non-zero
// exit fails the task: with a JSON error object on stdout ({"errorType", "errorMessage"}, as a
// Lambda function reports errors) the error is its errorType and the cause that JSON text;
// otherwise "States.TaskFailed" with the exit code and the end of stderr as the cause. A
// timeout (TimeoutSeconds, or the command's timeout_seconds) kills the command's process group
// and fails with States.Timeout. With HeartbeatSeconds the command must print something (on
// stdout or stderr; ENGAGE_HEARTBEAT_SECONDS in its environment says how often) at least that
// often, else it is killed and fails with States.HeartbeatTimeout. ECS commands also get the first
// ContainerOverrides entry's Command as extra arguments and its Environment in their environment.
//
// Roles: with an authorizer set (SetAuthorizer), every Task is checked before it runs: an Engage
// step as action "engage:<step>" on the resources its StepResourcesFn names (e.g. table/events),
// a mapped Lambda command as "lambda:InvokeFunction" on function/<name>, an ECS command as
// "ecs:RunTask" on task-definition/<family>. A refusal fails the Task with "Engage.AccessDenied"
// (catchable) and the authorizer's message as cause; the step does not run.
//
// Thread-safety: Run may be called from several threads once registration is done; mocks keep
// per-state invocation counters under a mutex.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/config.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/flow/engine.h"

namespace engage::flow {

// An Engage step callable from a Task: parameters in, result out. A failed Status becomes the
// ASL error AslErrorNameFor(code) (e.g. "Engage.NotFound") with the message as cause.
using StepFn = std::function<Result<Json>(const Json& parameters)>;
// The resources a step acts on, from its parameters (checked with action "engage:<step>" before
// it runs). An empty list means the step checks itself, through TaskRegistry::Authorize (e.g.
// engage:query, whose tables are known only once the query is bound). An error fails the Task.
using StepResourcesFn = std::function<Result<std::vector<std::string>>(const Json& parameters)>;
// Runs an Engage step for a Task (`run`), e.g. measuring what it used: set with
// TaskRegistry::SetStepWrapper; it must call `run` once and return its result.
using StepWrapper = std::function<Result<Json>(const TaskRequest& request, const std::string& step,
                                               const std::function<Result<Json>()>& run)>;
// Decides one action on one resource: OK to allow, else an error whose message says what was
// refused (never a server path).
using TaskAuthorizer = std::function<Status(std::string_view action, const std::string& resource)>;

// How an authorizer's refusal starts, once TaskRegistry::Authorize has wrapped it: a step that
// returns such a status fails with "Engage.AccessDenied".
inline constexpr std::string_view kAccessDeniedPrefix = "access denied: ";

class TaskRegistry final : public TaskRunner {
 public:
  explicit TaskRegistry(FlowConfig config = {});

  // Without `resources`, the step is checked on resource "*".
  void RegisterStep(const std::string& name, StepFn fn, std::string description,
                    StepResourcesFn resources = nullptr);

  // Every Engage step runs through `wrapper` from now on.
  void SetStepWrapper(StepWrapper wrapper) { wrapper_ = std::move(wrapper); }

  // Checks every Task from now on (see Roles above). Unset: everything may run.
  void SetAuthorizer(TaskAuthorizer authorizer);
  bool has_authorizer() const { return static_cast<bool>(authorizer_); }
  // OK when there is no authorizer or it allows `action` on `resource`; otherwise
  // kPermissionDenied with kAccessDeniedPrefix and the authorizer's message.
  Status Authorize(std::string_view action, const std::string& resource) const;
  // Registered steps with their descriptions, sorted by name.
  std::vector<std::pair<std::string, std::string>> Steps() const;

  // Loads mocks. Two formats:
  //  - Step Functions Local: {"StateMachines": {"<machine>": {"TestCases": {"<case>":
  //    {"<state>": "<response>"}}}}, "MockedResponses": {"<response>": {"0": {"Return": ...},
  //    "1-2": {"Throw": {"Error": ..., "Cause": ...}}}}}; keys are 0-based invocation numbers
  //    of that state (retries count). `machine`/`test_case` select the case; empty picks the
  //    only one.
  //  - Simple: {"States": {"<state>": {"Return": ...} | {"Throw": {...}} | [ per invocation ]}}.
  // kInvalidArgument naming the file and field on a malformed file.
  Status LoadMocks(const std::string& path, const std::string& machine,
                   const std::string& test_case);
  Status SetMocks(const Json& mocks, const std::string& origin, const std::string& machine,
                  const std::string& test_case);
  bool has_mocks() const { return !mocks_.empty(); }
  // Continues the mocks' invocation numbering, e.g. for a redrive: state name -> how many
  // times its task already ran in the execution.
  void SetInvocationCounts(std::map<std::string, int64_t> counts);

  std::string ResourceType(const std::string& resource) const override;
  std::variant<Json, TaskError> Run(const TaskRequest& request) override;

 private:
  struct MockAnswer {
    int64_t from = 0, to = 0;  // invocation range, inclusive
    bool is_throw = false;
    Json value;  // Return value, or {"Error", "Cause"}
  };
  std::variant<Json, TaskError> RunCommand(const FlowCommand& cmd, const std::string& what,
                                           const std::string& input,
                                           const std::vector<std::string>& extra_args,
                                           const std::vector<std::string>& env,
                                           std::optional<int64_t> timeout_seconds,
                                           std::optional<int64_t> heartbeat_seconds,
                                           const std::function<bool()>& stopped, Json* raw_stdout);

  FlowConfig config_;
  struct Step {
    StepFn fn;
    std::string description;
    StepResourcesFn resources;
  };
  std::map<std::string, Step> steps_;
  TaskAuthorizer authorizer_;
  StepWrapper wrapper_;
  std::map<std::string, std::vector<MockAnswer>> mocks_;
  std::mutex mu_;
  std::map<std::string, int64_t> invocations_;
};

}  // namespace engage::flow
