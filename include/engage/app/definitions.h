// State machine definitions given as files (`engage flow validate|run|register|graph`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engage/core/status.h"
#include "engage/flow/definition.h"

namespace engage::app {

// A definition file as read and checked: every problem (or the JSON syntax error) in
// `problems`; `machine` is null when there is any.
struct DefinitionFile {
  std::string text;
  std::shared_ptr<const flow::StateMachine> machine;
  std::vector<flow::Diagnostic> problems;
};

// Reads and checks a definition ("-": stdin), including literal timestamps beyond AWS's maximum
// wait from `now_micros`. kNotFound when the file cannot be read.
Result<DefinitionFile> CheckDefinitionFile(const std::string& path, int64_t now_micros);

// The state machine name a definition file gives its executions: "pipelines/daily.asl.json"
// -> "daily".
std::string MachineNameFromPath(const std::string& path);

}  // namespace engage::app
