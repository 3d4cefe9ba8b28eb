// engage: the Engage command-line interface.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "engage/core/json.h"
#include "engage/core/log.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Engage: local-first customer engagement prediction.\n"
      "Events in, partitioned Parquet lake, metered SQL, predictions out.",
      "engage"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "engage 0.1.0");
  engage::cli::GlobalOptions global;
  std::function<engage::Status()> action;
  engage::cli::RegisterCommands(app, global, &action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  engage::InitLogging(global.verbose);
  try {
    engage::Status s = action ? action() : engage::InternalError("no command");
    if (!s.ok()) {
      std::fprintf(stderr, "engage: error: %s\n", s.message().c_str());
      return engage::ExitCodeFor(s.code());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engage: internal error: %s\n", e.what());
    return 70;
  }
}
