#include "engage/app/definitions.h"

#include <fmt/format.h>

#include <filesystem>

#include "engage/core/clock.h"
#include "engage/core/fs.h"
#include "engage/core/json.h"
#include "engage/serve/machines.h"

namespace engage::app {

Result<DefinitionFile> CheckDefinitionFile(const std::string& path, int64_t now_micros) {
  DefinitionFile d;
  ENGAGE_ASSIGN_OR_RETURN(d.text, ReadTextArgument(path, "state machine definition"));
  Result<Json> json = ParseJson(d.text, "");
  if (!json.ok()) {
    d.problems.push_back(flow::Diagnostic{"", "", json.status().message()});
    return d;
  }
  d.machine = flow::ParseDefinition(*json, &d.problems);
  if (d.machine != nullptr) {
    // A literal Timestamp past AWS's maximum wait cannot be reached: the execution times out.
    std::vector<flow::Diagnostic> far = flow::FarTimestamps(*d.machine, now_micros);
    if (!far.empty()) {
      d.problems.insert(d.problems.end(), far.begin(), far.end());
      d.machine = nullptr;
    }
  }
  if (d.machine == nullptr && d.problems.empty()) {
    d.problems.push_back(flow::Diagnostic{"", "", "not a valid state machine"});
  }
  return d;
}

Status InvalidDefinition(std::string message) {
  return Status(StatusCode::kUnknown, std::move(message));
}

std::string ProblemSummary(const std::string& path, const std::vector<flow::Diagnostic>& problems) {
  return fmt::format("'{}' is not a valid state machine ({} problem{})", path, problems.size(),
                     problems.size() == 1 ? "" : "s");
}

Result<DefinitionFile> LoadDefinitionFile(const std::string& path, int64_t now_micros) {
  ENGAGE_ASSIGN_OR_RETURN(DefinitionFile d, CheckDefinitionFile(path, now_micros));
  if (d.machine != nullptr) return d;
  std::string msg = ProblemSummary(path, d.problems) + ":";
  for (const flow::Diagnostic& p : d.problems) msg += "\n  " + p.ToString();
  return InvalidDefinition(msg + fmt::format("\n(see `engage flow validate {}`)", path));
}

Result<flow::RegisteredStateMachine> RegisterMachineFiles(const HomePaths& home,
                                                          const std::string& name,
                                                          const std::string& definition_path,
                                                          const std::string& role_path) {
  ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(name));
  const Clock& clock = SystemClock::Default();
  ENGAGE_ASSIGN_OR_RETURN(DefinitionFile def,
                          LoadDefinitionFile(definition_path, clock.NowMicros()));
  ENGAGE_ASSIGN_OR_RETURN(std::string role_text, ReadTextArgument(role_path, "role policy"));
  auto role = ParseJson(role_text, role_path);
  if (!role.ok()) return InvalidDefinition(role.status().message());
  ENGAGE_ASSIGN_OR_RETURN(Json definition, ParseJson(def.text, definition_path));
  ENGAGE_RETURN_IF_ERROR(home.Require("state machines"));
  ENGAGE_ASSIGN_OR_RETURN(auto machines, flow::StateMachineRegistry::Open(home.meta_db(), clock));
  auto m = serve::RegisterStateMachine(*machines, name, definition, *role, "cli");
  // A bad definition or role is not a usage error: exit 1, as flow validate.
  if (!m.ok() && m.status().code() == StatusCode::kInvalidArgument &&
      name != serve::kEngagementMachine) {
    return InvalidDefinition(m.status().message());
  }
  return m;
}

Json DefinitionFile::ValidationJson() const {
  Json list = Json::array();
  for (const auto& p : problems) {
    list.push_back(Json{{"state", p.state}, {"path", p.pointer}, {"message", p.message}});
  }
  return Json{{"valid", machine != nullptr}, {"problems", std::move(list)}};
}

std::string DefinitionFile::ValidationText(const std::string& path) const {
  std::string out =
      machine ? fmt::format("{}: valid ({} states)\n", path, machine->states.size()) : "";
  for (const auto& p : problems) out += fmt::format("{}: {}\n", path, p.ToString());
  return out;
}

std::string MachineNameFromPath(const std::string& path) {
  std::string stem = std::filesystem::path(path).filename().string();
  for (std::string ext : {".json", ".asl"}) {
    if (stem.size() > ext.size() && stem.compare(stem.size() - ext.size(), ext.size(), ext) == 0) {
      stem.resize(stem.size() - ext.size());
    }
  }
  return stem.empty() ? "StateMachine" : stem;
}

Result<ExecutionRequest> RequestForFile(const std::string& path, int64_t now_micros) {
  ENGAGE_ASSIGN_OR_RETURN(DefinitionFile def, LoadDefinitionFile(path, now_micros));
  ExecutionRequest req;
  req.machine = def.machine;
  req.definition = std::move(def.text);
  req.state_machine = MachineNameFromPath(path);
  std::error_code ec;
  req.definition_path = std::filesystem::absolute(path, ec).string();
  return req;
}

}  // namespace engage::app
