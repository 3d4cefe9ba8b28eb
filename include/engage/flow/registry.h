// Registered state machines: the definitions executions started over HTTP may run, each under
// a name, with the role policy that bounds what its Task states may do. Kept in meta.db
// (table flow_state_machines).
//
//   ENGAGE_RETURN_IF_ERROR(ValidateStateMachineName(name));           // kInvalidArgument
//   ENGAGE_ASSIGN_OR_RETURN(auto machines, StateMachineRegistry::Open(home.meta_db(), clock));
//   ENGAGE_ASSIGN_OR_RETURN(RegisteredStateMachine m,
//                           machines->Put(name, definition_text, role_text, "key 3f9c0a51d2e4"));
//   ENGAGE_ASSIGN_OR_RETURN(RegisteredStateMachine again, machines->Get(name));  // kNotFound
//
// The registry stores text: validating the definition (ParseDefinition) and the role (a policy
// over serve::RolePolicyVocabulary) is the caller's job, before Put.
//
// Thread-safety: one StateMachineRegistry per thread; several processes may share meta.db.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "engage/core/sqlite.h"
#include "engage/core/status.h"

namespace engage::flow {

// The longest state machine (and execution) name AWS Step Functions accepts.
inline constexpr size_t kMaxStateMachineNameLength = 80;

// OK when `name` is 1 to 80 characters of [A-Za-z0-9_-] (AWS's rule, minus the characters that
// could be read as paths); kInvalidArgument naming the rule otherwise. `what` names the value in
// the message ("state machine name", "execution name").
Status ValidateStateMachineName(std::string_view name,
                                std::string_view what = "state machine name");

struct RegisteredStateMachine {
  std::string name;
  std::string definition;  // the ASL text, as registered
  std::string role;        // the role policy (JSON text)
  std::string registered_by;
  int64_t created_micros = 0;
  int64_t updated_micros = 0;
  int64_t version = 0;  // 1 when first registered, +1 on each replacement

  // {"name", "version", "registered_by", "created_at", "updated_at"} plus, when `full`,
  // "definition" and "role" as JSON objects.
  Json ToJson(bool full) const;
};

// Registered machines as a table: name, version, registered by, updated.
std::string MachinesTable(const std::vector<RegisteredStateMachine>& machines);

class StateMachineRegistry {
 public:
  // Opens meta.db, creating the table when missing.
  static Result<std::unique_ptr<StateMachineRegistry>> Open(const std::string& meta_db_path,
                                                            const Clock& clock);

  // Registers `name`, or replaces its definition and role (the version goes up).
  // kInvalidArgument for a bad name.
  Result<RegisteredStateMachine> Put(const std::string& name, const std::string& definition,
                                     const std::string& role, const std::string& registered_by);
  // kNotFound (saying how to register it) when no machine has that name.
  Result<RegisteredStateMachine> Get(const std::string& name);
  // Every registered machine, by name.
  Result<std::vector<RegisteredStateMachine>> List();

 private:
  StateMachineRegistry(SqliteDb db, const Clock& clock) : db_(std::move(db)), clock_(clock) {}
  SqliteDb db_;
  const Clock& clock_;
};

}  // namespace engage::flow
