// State machine definitions given as files (`engage flow validate|run|register|graph`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engage/app/executions.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/flow/definition.h"
#include "engage/flow/registry.h"

namespace engage::app {

// A definition file as read and checked: every problem (or the JSON syntax error) in
// `problems`; `machine` is null when there is any.
struct DefinitionFile {
  std::string text;
  std::shared_ptr<const flow::StateMachine> machine;
  std::vector<flow::Diagnostic> problems;
  // `engage flow validate`: {"valid": bool, "problems": [{"state", "path", "message"}]}, and
  // for people "PATH: valid (N states)" or one "PATH: problem" line each.
  Json ValidationJson() const;
  std::string ValidationText(const std::string& path) const;
};

// Reads and checks a definition ("-": stdin), including literal timestamps beyond AWS's maximum
// wait from `now_micros`. kNotFound when the file cannot be read.
Result<DefinitionFile> CheckDefinitionFile(const std::string& path, int64_t now_micros);

// An error for an invalid definition or role: kUnknown, so that it exits 1 as `engage flow
// validate` does for an invalid definition, not with the usage-error code.
Status InvalidDefinition(std::string message);

// "'x.json' is not a valid state machine (2 problems)"
std::string ProblemSummary(const std::string& path, const std::vector<flow::Diagnostic>& problems);

// A valid definition file, or InvalidDefinition listing every problem and pointing at `engage
// flow validate`.
Result<DefinitionFile> LoadDefinitionFile(const std::string& path, int64_t now_micros);

// `engage flow register`: stores the definition file under `name` with the role policy file in
// the home's meta.db. kInvalidArgument for a bad name, InvalidDefinition for an invalid
// definition or role, kFailedPrecondition without a home.
Result<flow::RegisteredStateMachine> RegisterMachineFiles(const HomePaths& home,
                                                          const std::string& name,
                                                          const std::string& definition_path,
                                                          const std::string& role_path);

// The state machine name a definition file gives its executions: "pipelines/daily.asl.json"
// -> "daily".
std::string MachineNameFromPath(const std::string& path);

// An execution request for a definition file (LoadDefinitionFile): its machine, text, absolute
// path and the machine name from the path. The caller adds the input, name, mocks, ...
Result<ExecutionRequest> RequestForFile(const std::string& path, int64_t now_micros);

}  // namespace engage::app
