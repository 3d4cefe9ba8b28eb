// engage command-line commands: argument parsing and output only; the work is done by the
// libraries. Each command returns a Status that main() maps to the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/lake/lake.h"

namespace engage::flow {
class TaskRegistry;
}  // namespace engage::flow
namespace engage::serve {
struct PublishReport;
}  // namespace engage::serve

namespace engage::cli {

struct GlobalOptions {
  std::string home;
  bool verbose = false;
};

// Shared output helpers: indented JSON, and rows as an aligned text table.
void PrintJson(const Json& j);
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// Opens the home's lake; `writer` takes the writer lock and runs recovery (reporting it).
Result<std::unique_ptr<lake::Lake>> OpenLake(const GlobalOptions& g, bool writer);

// Trains the engagement model from [engagement] and registers it (ml_commands.cc); the
// engagement mode of `engage train`.
Status TrainEngagementModel(const GlobalOptions& g, const std::string& model_name, bool json);

// `engage btyd ...`, `engage features`, `engage models ...` (ml_commands.cc).
void RegisterMlCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// `engage train` (train_commands.cc).
void RegisterTrainCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// engage:quality, engage:features, engage:train, ... Task steps (pipeline_steps.cc).
void RegisterMlSteps(flow::TaskRegistry& tasks, const HomePaths& home);

// Starts an execution for the server and returns its record at once, the run going on in a
// background thread: {"state_machine": NAME} (a registered machine) or {"pipeline":
// "engagement"}, with optional "name" and "input" (flow_commands.cc). The run is confined: each
// Task is checked against the machine's role and engage:ingest reads only [flow] input_dirs.
// kInvalidArgument for an inline "definition" or a bad name, kNotFound for an unregistered one.
// Executions a server runs in the background: each one's stop flag, so that one can be stopped
// on request (POST /v1/executions/{id}:stop) and all of them when the server stops.
// Thread-safe.
class BackgroundExecutions {
 public:
  // Registers a run; the returned flag stops it (ABORTED, as AWS's StopExecution).
  std::shared_ptr<std::atomic<bool>> Add(const std::string& id);
  // The run ended.
  void Remove(const std::string& id);
  // kFailedPrecondition when `id` is not running here.
  Status Stop(const std::string& id);
  // Stops every run and waits up to `wait_ms` for them to record their end; the number still
  // running.
  int64_t StopAll(int64_t wait_ms);

 private:
  std::mutex mu_;
  std::condition_variable ended_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> running_;
};

Result<Json> StartExecutionInBackground(const GlobalOptions& g, const Json& request,
                                        BackgroundExecutions& runs);

// `engage flow ...` and `engage run pipeline` (flow_commands.cc).
void RegisterFlowCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// `engage publish` (serve_commands.cc), and the step of the same name.
void RegisterServeCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);
// Publishes the latest predictions of model references (name@alias|version; the first is the
// default) into the serving store.
Result<serve::PublishReport> PublishModels(lake::Lake& lake, const std::vector<std::string>& refs,
                                           int keep);

// `engage keys create|list|revoke` and `engage audit` (keys_commands.cc).
void RegisterKeysCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

// Registers every subcommand on `app`; the chosen one stores its action in `*action`.
void RegisterCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

}  // namespace engage::cli
