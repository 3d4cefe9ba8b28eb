// Registering state machines and bounding what their executions do: the checks shared by
// PUT /v1/state-machines/{name}, `engage flow register` and POST /v1/executions.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto machines, flow::StateMachineRegistry::Open(meta_db, clock));
//   ENGAGE_ASSIGN_OR_RETURN(auto m, RegisterStateMachine(*machines, "daily", definition, role,
//                                                       "key 3f9c0a51d2e4"));
//   ENGAGE_ASSIGN_OR_RETURN(RunnableMachine r, LoadRunnableMachine(*machines, "daily"));
//   tasks.SetAuthorizer(RoleAuthorizer(r.role, r.name));   // every Task checked against the role
//
// A role is a policy of the keys' shape over RolePolicyVocabulary() (engage:<step>,
// lambda:InvokeFunction, ecs:RunTask, s3:GetObject, s3:PutObject on table/, model/, function/,
// task-definition/ and bucket/ resources): deny by default, an explicit Deny wins.
#pragma once

#include <memory>
#include <string>

#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/flow/definition.h"
#include "engage/flow/registry.h"
#include "engage/flow/tasks.h"
#include "engage/serve/auth.h"

namespace engage::serve {

// The shipped pipeline's name: a built-in machine (pipelines/engagement.asl.json), not
// registrable.
inline constexpr std::string_view kEngagementMachine = "engagement";

// The built-in role of the shipped engagement pipeline: exactly its steps (ingest into any
// table, the quality checks, features, cost summary and notification, and train, evaluate,
// promote, score and publish on any model).
Json EngagementPipelineRole();

// Parses a role policy document (kInvalidArgument naming the statement and field).
Result<Policy> ParseRole(const Json& role);

// Checks and stores a state machine: the name (1-80 of [A-Za-z0-9_-], not "engagement"), the
// ASL definition (kInvalidArgument listing every problem with its state and field) and the role.
// Replaces an existing machine of that name (its version goes up).
Result<flow::RegisteredStateMachine> RegisterStateMachine(flow::StateMachineRegistry& machines,
                                                          const std::string& name,
                                                          const Json& definition, const Json& role,
                                                          const std::string& registered_by);

// A machine ready to run: the parsed definition and role.
struct RunnableMachine {
  std::string name;
  std::string definition;  // text, as stored with the execution
  std::shared_ptr<const flow::StateMachine> machine;
  std::shared_ptr<const Policy> role;
};
// The registered machine `name`, or the built-in engagement pipeline given its definition text.
// kInvalidArgument for a bad name, kNotFound when nothing is registered under it,
// kFailedPrecondition when what is stored no longer parses.
Result<RunnableMachine> LoadRunnableMachine(flow::StateMachineRegistry& machines,
                                            const std::string& name,
                                            const std::string& engagement_definition);

// An authorizer for flow::TaskRegistry::SetAuthorizer: allows what `role` allows; a refusal
// names the machine, the action, the resource and the decision (no server path).
flow::TaskAuthorizer RoleAuthorizer(std::shared_ptr<const Policy> role, std::string machine);

}  // namespace engage::serve
