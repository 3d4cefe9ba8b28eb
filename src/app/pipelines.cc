#include "engage/app/pipelines.h"

#include <fmt/format.h>

#include <map>
#include <mutex>

#include "app/pipelines.h"

namespace engage::app {

const char* EngagementPipelineDefinition() { return internal::kEngagementPipeline; }

Result<std::shared_ptr<const flow::StateMachine>> EngagementPipeline() {
  static std::once_flag once;
  static std::shared_ptr<const flow::StateMachine> machine;
  static std::string problem;
  std::call_once(once, [] {
    auto json = ParseJson(internal::kEngagementPipeline, "the shipped engagement pipeline");
    if (!json.ok()) {
      problem = json.status().message();
      return;
    }
    std::vector<flow::Diagnostic> problems;
    machine = flow::ParseDefinition(*json, &problems);
    if (machine == nullptr) {
      problem = problems.empty() ? "it does not parse" : problems.front().ToString();
    }
  });
  if (machine == nullptr) {
    return InternalError("the shipped engagement pipeline is invalid: " + problem);
  }
  return machine;
}

Result<Json> EngagementPipelineInput(const std::string& model,
                                     const std::vector<std::string>& ingest_specs) {
  Json input = Json::object();
  input["model"] = model;
  std::map<std::string, Json> by_table;
  for (const std::string& spec : ingest_specs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return InvalidArgumentError(fmt::format("--ingest '{}': expected TABLE=FILE_OR_GLOB", spec));
    }
    Json& entry = by_table[spec.substr(0, eq)];
    if (entry.is_null()) entry = Json{{"table", spec.substr(0, eq)}, {"inputs", Json::array()}};
    entry["inputs"].push_back(spec.substr(eq + 1));
  }
  input["ingest"] = Json::array();
  for (const char* first : {"customers", "events"}) {
    auto it = by_table.find(first);
    if (it != by_table.end()) {
      input["ingest"].push_back(it->second);
      by_table.erase(it);
    }
  }
  for (auto& [table, entry] : by_table) input["ingest"].push_back(entry);
  return input;
}

}  // namespace engage::app
