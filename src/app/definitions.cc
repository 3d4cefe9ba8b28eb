#include "engage/app/definitions.h"

#include <filesystem>

#include "engage/core/fs.h"
#include "engage/core/json.h"

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

std::string MachineNameFromPath(const std::string& path) {
  std::string stem = std::filesystem::path(path).filename().string();
  for (std::string ext : {".json", ".asl"}) {
    if (stem.size() > ext.size() && stem.compare(stem.size() - ext.size(), ext.size(), ext) == 0) {
      stem.resize(stem.size() - ext.size());
    }
  }
  return stem.empty() ? "StateMachine" : stem;
}

}  // namespace engage::app
