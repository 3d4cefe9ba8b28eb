#include "engage/serve/machines.h"

#include <fmt/format.h>

namespace engage::serve {
namespace {

// At most this many validation problems in one error message.
constexpr size_t kMaxProblemsShown = 20;

Result<std::shared_ptr<const flow::StateMachine>> CheckDefinition(const std::string& name,
                                                                  const Json& definition) {
  if (!definition.is_object()) {
    return InvalidArgumentError(
        fmt::format("the definition of '{}' must be an ASL JSON object", name));
  }
  std::vector<flow::Diagnostic> problems;
  auto machine = flow::ParseDefinition(definition, &problems);
  if (machine != nullptr) return machine;
  std::string msg =
      fmt::format("the definition of '{}' is not a valid state machine ({} problem{})", name,
                  problems.size(), problems.size() == 1 ? "" : "s");
  for (size_t i = 0; i < problems.size() && i < kMaxProblemsShown; ++i) {
    msg += (i == 0 ? ": " : "; ") + problems[i].ToString();
  }
  if (problems.size() > kMaxProblemsShown) msg += "; ...";
  return InvalidArgumentError(std::move(msg));
}

}  // namespace

Json EngagementPipelineRole() {
  return Json::parse(R"({
    "Version": "2012-10-17",
    "Statement": [
      {"Sid": "Ingest", "Effect": "Allow", "Action": "engage:ingest", "Resource": "table/*"},
      {"Sid": "Checks", "Effect": "Allow",
       "Action": ["engage:quality", "engage:features", "engage:cost-summary", "engage:notify"],
       "Resource": "*"},
      {"Sid": "Models", "Effect": "Allow",
       "Action": ["engage:train", "engage:evaluate", "engage:promote", "engage:score",
                  "engage:publish"],
       "Resource": "model/*"}
    ]
  })");
}

Result<Policy> ParseRole(const Json& role) {
  return Policy::FromJson(role, RolePolicyVocabulary(), "role");
}

Result<flow::RegisteredStateMachine> RegisterStateMachine(flow::StateMachineRegistry& machines,
                                                          const std::string& name,
                                                          const Json& definition, const Json& role,
                                                          const std::string& registered_by) {
  ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(name));
  if (name == kEngagementMachine) {
    return InvalidArgumentError(
        "'engagement' is the shipped pipeline's name (a built-in state machine): register "
        "yours under another name");
  }
  ENGAGE_RETURN_IF_ERROR(CheckDefinition(name, definition).status());
  if (role.is_null()) {
    return InvalidArgumentError(fmt::format(
        "state machine '{}' needs a role: a policy of what its steps may do, e.g. {{\"Statement\": "
        "[{{\"Effect\": \"Allow\", \"Action\": \"engage:query\", \"Resource\": "
        "\"table/events\"}}]}}",
        name));
  }
  ENGAGE_ASSIGN_OR_RETURN(Policy p, ParseRole(role));
  return machines.Put(name, DumpJson(definition), DumpJson(p.ToJson()), registered_by);
}

Result<RunnableMachine> LoadRunnableMachine(flow::StateMachineRegistry& machines,
                                            const std::string& name,
                                            const std::string& engagement_definition) {
  ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(name));
  RunnableMachine r;
  r.name = name;
  Json role;
  if (name == kEngagementMachine) {
    r.definition = engagement_definition;
    role = EngagementPipelineRole();
  } else {
    ENGAGE_ASSIGN_OR_RETURN(flow::RegisteredStateMachine m, machines.Get(name));
    r.definition = m.definition;
    auto parsed = ParseJson(m.role, "stored role");
    if (!parsed.ok()) return FailedPreconditionError(parsed.status().message());
    role = std::move(*parsed);
  }
  auto def = ParseJson(r.definition, "stored definition");
  if (!def.ok()) return FailedPreconditionError(def.status().message());
  auto machine = CheckDefinition(name, *def);
  if (!machine.ok()) return FailedPreconditionError(machine.status().message());
  r.machine = std::move(*machine);
  auto policy = ParseRole(role);
  if (!policy.ok()) return FailedPreconditionError(policy.status().message());
  r.role = std::make_shared<const Policy>(std::move(*policy));
  return r;
}

flow::TaskAuthorizer RoleAuthorizer(std::shared_ptr<const Policy> role, std::string machine) {
  return [role = std::move(role), machine = std::move(machine)](
             std::string_view action, const std::string& resource) -> Status {
    Decision d = role->Evaluate(action, resource);
    if (d.allowed()) return Status::Ok();
    return PermissionDeniedError(
        fmt::format("the role of state machine '{}' does not allow {} on {} ({})", machine, action,
                    resource, d.name()));
  };
}

}  // namespace engage::serve
