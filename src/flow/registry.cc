#include "engage/flow/registry.h"

#include <fmt/format.h>

#include "engage/core/sqlite.h"

namespace engage::flow {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS flow_state_machines (
  name TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  role TEXT NOT NULL,
  registered_by TEXT NOT NULL,
  created_micros INTEGER NOT NULL,
  updated_micros INTEGER NOT NULL,
  version INTEGER NOT NULL
);
)sql";

bool NameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

Json ParsedOrText(const std::string& text) {
  auto j = ParseJson(text, "stored document");
  return j.ok() ? *j : Json(text);
}

}  // namespace

Status ValidateStateMachineName(std::string_view name, std::string_view what) {
  bool ok = !name.empty() && name.size() <= kMaxStateMachineNameLength;
  for (char c : name) ok = ok && NameChar(c);
  if (ok) return Status::Ok();
  // The name itself is not echoed: it may be long or hold control characters.
  return InvalidArgumentError(fmt::format(
      "invalid {} ({} bytes): a name is 1 to {} characters of A-Z, a-z, 0-9, '_' and '-'", what,
      name.size(), kMaxStateMachineNameLength));
}

Json RegisteredStateMachine::ToJson(bool full) const {
  Json j = Json::object();
  j["name"] = name;
  j["version"] = version;
  j["registered_by"] = registered_by;
  j["created_at"] = FormatIsoUtc(created_micros);
  j["updated_at"] = FormatIsoUtc(updated_micros);
  if (full) {
    j["definition"] = ParsedOrText(definition);
    j["role"] = ParsedOrText(role);
  }
  return j;
}

Result<std::unique_ptr<StateMachineRegistry>> StateMachineRegistry::Open(
    const std::string& meta_db_path, const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_path));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  return std::unique_ptr<StateMachineRegistry>(new StateMachineRegistry(std::move(db), clock));
}

Result<RegisteredStateMachine> StateMachineRegistry::Put(const std::string& name,
                                                         const std::string& definition,
                                                         const std::string& role,
                                                         const std::string& registered_by) {
  ENGAGE_RETURN_IF_ERROR(ValidateStateMachineName(name));
  int64_t now = clock_.NowMicros();
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("INSERT INTO flow_state_machines (name, definition, role, registered_by, "
                  "created_micros, updated_micros, version) VALUES (?, ?, ?, ?, ?, ?, 1) "
                  "ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, "
                  "role = excluded.role, registered_by = excluded.registered_by, "
                  "updated_micros = excluded.updated_micros, version = version + 1"));
  st.Bind(1, name)
      .Bind(2, definition)
      .Bind(3, role)
      .Bind(4, registered_by)
      .Bind(5, now)
      .Bind(6, now);
  ENGAGE_RETURN_IF_ERROR(st.Run());
  return Get(name);
}

Result<RegisteredStateMachine> StateMachineRegistry::Get(const std::string& name) {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("SELECT name, definition, role, registered_by, created_micros, updated_micros, "
                  "version FROM flow_state_machines WHERE name = ?"));
  st.Bind(1, name);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    return NotFoundError(fmt::format(
        "no state machine named '{}' is registered (register it first: `engage flow register` "
        "or PUT /v1/state-machines/{{name}})",
        name));
  }
  return RegisteredStateMachine{st.Text(0), st.Text(1), st.Text(2), st.Text(3),
                                st.Int(4),  st.Int(5),  st.Int(6)};
}

Result<std::vector<RegisteredStateMachine>> StateMachineRegistry::List() {
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("SELECT name, definition, role, registered_by, created_micros, updated_micros, "
                  "version FROM flow_state_machines ORDER BY name"));
  std::vector<RegisteredStateMachine> out;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(RegisteredStateMachine{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Int(4),
                                         st.Int(5), st.Int(6)});
  }
  return out;
}

}  // namespace engage::flow
