// `engage check` and the other monitor commands: data quality, drift, cost, budgets, alerts.
#include <cstdio>

#include "cli/commands.h"
#include "engage/app/app.h"
#include "engage/monitor/checks.h"

namespace engage::cli {
namespace {

// --- check ------------------------------------------------------------------------------------
void AddCheck(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "check", "Run the data-quality checks declared in engage.toml ([[tables.T.checks]])");
  struct O {
    monitor::CheckRequest req;
    int64_t limit = 20;
    bool json = false, history = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("table", o.req.table, "Only this table's checks (default: every table's)");
  cmd->add_option("--ingest", o.req.ingest_id, "Only the rows this ingest loaded");
  cmd->add_flag("--history", o.history, "List the recorded check runs instead, newest first");
  cmd->add_option("-n,--limit", o.limit, "Runs --history lists")
      ->check(CLI::Range(int64_t{1}, int64_t{100'000}));
  cmd->add_flag("--json", o.json,
                "Print {\"passed\", \"checks\": [...]} (with --history, the runs)");
  cmd->footer("Exit status: 0 when every error-severity check passes, 1 when one fails.");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    if (o.history) {
      ENGAGE_ASSIGN_OR_RETURN(auto runs, application->CheckHistory(o.limit));
      Emit(o.json, monitor::CheckHistoryJson(runs),
           [&] { std::fputs(monitor::CheckHistoryTable(runs).c_str(), stdout); });
      return Status::Ok();
    }
    ENGAGE_ASSIGN_OR_RETURN(monitor::CheckRun run, application->RunChecks(o.req));
    Emit(o.json, run.ToJson(), [&] { std::fputs(run.ToText().c_str(), stdout); });
    return run.passed ? Status::Ok()
                      : Status(StatusCode::kUnknown, "an error-severity check failed");
  });
}

}  // namespace

void RegisterMonitorCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddCheck(app, g, action);
}

}  // namespace engage::cli
