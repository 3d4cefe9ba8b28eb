// engage command-line commands: argument parsing and output only; the work is done by the
// libraries. Each command returns a Status that main() maps to the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/lake/lake.h"

namespace engage::app {
class App;
}  // namespace engage::app

namespace engage::cli {

struct GlobalOptions {
  std::string home;
  bool verbose = false;
};

// Indented JSON on stdout.
void PrintJson(const Json& j);
// `j` as JSON when `json`, else `text()`.
void Emit(bool json, const Json& j, const std::function<void()>& text);

// Registration helpers. A command's options live in a struct kept for the whole program
// (commands are registered once, in main); OnRun makes `run` the action when `cmd` is chosen.
void KeepAlive(std::shared_ptr<void> p);
template <class T>
T& Keep() {
  auto p = std::make_shared<T>();
  KeepAlive(p);
  return *p;
}
void OnRun(CLI::App* cmd, std::function<Status()>* action, std::function<Status()> run);

// Opens the home's lake; `writer` takes the writer lock and runs recovery (reporting it).
Result<std::unique_ptr<lake::Lake>> OpenLake(const GlobalOptions& g, bool writer);
// Opens the application on the home (engage::app::App).
Result<std::unique_ptr<app::App>> OpenApp(const GlobalOptions& g);

// `engage btyd ...`, `engage features`, `engage models ...` (ml_commands.cc).
void RegisterMlCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// `engage train` (train_commands.cc).
void RegisterTrainCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// `engage flow ...` and `engage run pipeline` (flow_commands.cc).
void RegisterFlowCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// `engage publish` (serve_commands.cc), and the step of the same name.
void RegisterServeCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// `engage keys create|list|revoke` and `engage audit` (keys_commands.cc).
void RegisterKeysCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// `engage check` (monitor_commands.cc).
void RegisterMonitorCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// Registers every subcommand on `app`; the chosen one stores its action in `*action`.
void RegisterCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

}  // namespace engage::cli
