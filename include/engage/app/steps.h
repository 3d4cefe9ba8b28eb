// Engage's own steps for ASL Task states ("engage:<step>" resources): query, ingest, quality,
// features, train, evaluate, promote, score, publish, cost-summary and notify.
//
//   flow::TaskRegistry tasks(config.flow);
//   RegisterEngageSteps(tasks, home, {});          // the trusted local user
//
// Each step opens what it needs from the home when it runs, so a definition that uses none of
// them runs without a lake; queries go through the shared engine when one is given. With an
// authorizer on the registry (a role), engage:query checks each table the query reads and
// engage:ingest its target table.
#pragma once

#include <string>
#include <vector>

#include "engage/app/read_side.h"
#include "engage/core/config.h"
#include "engage/core/home.h"
#include "engage/flow/engine.h"
#include "engage/flow/tasks.h"

namespace engage::app {

// How far an execution's steps may reach beyond its role. The local CLI user is trusted: runs
// started from the CLI read any input file. Executions started over HTTP are confined: an
// engage:ingest input must resolve inside [flow] input_dirs.
struct StepConfinement {
  bool confine_inputs = false;
  std::vector<std::string> input_dirs;  // resolved (realpath); directories that exist only
};

// [flow] input_dirs resolved: relative ones against the home, symlinks followed.
std::vector<std::string> ResolveInputDirs(const FlowConfig& flow, const HomePaths& home);

// `reads` (optional): the process's query engine, which the steps then query through instead of
// opening one each (see read_side.h).
void RegisterEngageSteps(flow::TaskRegistry& tasks, const HomePaths& home,
                         const StepConfinement& confinement,
                         const std::shared_ptr<ReadSides>& reads = nullptr);

// The local stand-in for Amazon S3 that a distributed Map's ItemReader and ResultWriter use:
// buckets from [flow.buckets] in engage.toml (relative paths resolve against the home), plus
// the read-only bucket "lake" (the home's lake directory), and Parquet reading through DuckDB
// for ItemReader InputType PARQUET.
void ConfigureObjectStore(flow::EngineOptions& options, const Config& config,
                          const HomePaths& home);

}  // namespace engage::app
