// engage command-line commands: argument parsing and output only; the work is done by the
// libraries. Each command returns a Status that main() maps to the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>

#include "engage/core/status.h"

namespace engage::cli {

struct GlobalOptions {
  std::string home;
  bool verbose = false;
};

// Registers every subcommand on `app`; the chosen one stores its action in `*action`.
void RegisterCommands(CLI::App& app, GlobalOptions& global, std::function<Status()>* action);

}  // namespace engage::cli
