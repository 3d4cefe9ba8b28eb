// `engage check` and the other monitor commands: data quality, drift, cost, budgets, alerts.
#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "engage/app/app.h"
#include "engage/core/text.h"
#include "engage/monitor/budgets.h"
#include "engage/monitor/checks.h"
#include "engage/monitor/cost.h"
#include "engage/monitor/drift.h"

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

// --- cost / budget / alerts -------------------------------------------------------------------
void AddCost(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "cost", "What Engage's work used here and what it would cost on AWS (the cost ledger)");
  struct O {
    monitor::CostQuery query;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("--since", o.query.since, "From this date or UTC time (inclusive)");
  cmd->add_option("--until", o.query.until, "Up to this date or UTC time (exclusive)");
  cmd->add_option("--by", o.query.by, "Break down by kind, day, table, pipeline, step or model");
  cmd->add_flag("--json", o.json, "Print {\"total_usd\", \"local\": {...}, \"rows\": [...]}");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(monitor::CostReport r, application->CostReport(o.query));
    Emit(o.json, r.ToJson(), [&] { std::fputs(r.ToText().c_str(), stdout); });
    return Status::Ok();
  });
}

void AddBudget(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("budget", "Spending limits on the cost ledger, with alerts");
  cmd->require_subcommand(1);
  struct O {
    monitor::Budget budget;
    std::string name;
    bool json = false;
  };
  auto& o = Keep<O>();
  auto* set = cmd->add_subcommand("set", "Add or replace a budget");
  set->add_option("name", o.budget.name, "The budget's name")->required();
  set->add_option("--limit-usd", o.budget.limit_usd, "The limit per period, in USD")->required();
  set->add_option("--period", o.budget.period, "day or month (UTC)");
  set->add_option("--scope", o.budget.scope, "all, queries, pipeline:NAME or table:NAME");
  set->add_flag("--hard", o.budget.hard,
                "Refuse queries whose estimate would cross it and pipelines once crossed (exit 6)");
  set->add_flag("--json", o.json, "Print the budget as JSON");
  OnRun(set, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_RETURN_IF_ERROR(application->SetBudget(o.budget));
    Emit(o.json, o.budget.ToJson(), [&] {
      std::printf("budget '%s': %s per %s on %s%s\n", o.budget.name.c_str(),
                  Usd(o.budget.limit_usd).c_str(), o.budget.period.c_str(), o.budget.scope.c_str(),
                  o.budget.hard ? " (hard)" : "");
    });
    return Status::Ok();
  });
  auto* list = cmd->add_subcommand("list", "Budgets with what they spent this period");
  list->add_flag("--json", o.json, "Print {\"budgets\": [...]}");
  OnRun(list, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(auto budgets, application->OpenBudgets());
    ENGAGE_ASSIGN_OR_RETURN(auto statuses, budgets->Statuses());
    Emit(o.json, monitor::BudgetsJson(statuses),
         [&] { std::fputs(monitor::BudgetsTable(statuses).c_str(), stdout); });
    return Status::Ok();
  });
  auto* del = cmd->add_subcommand("delete", "Remove a budget");
  del->add_option("name", o.name, "The budget's name")->required();
  OnRun(del, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(auto budgets, application->OpenBudgets());
    ENGAGE_RETURN_IF_ERROR(budgets->Delete(o.name));
    std::printf("budget '%s' deleted\n", o.name.c_str());
    return Status::Ok();
  });
}

void AddAlerts(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand("alerts", "Recorded alerts and how their delivery went");
  struct O {
    int64_t limit = 50;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("-n,--limit", o.limit, "Alerts listed, newest first")
      ->check(CLI::Range(int64_t{1}, int64_t{100'000}));
  cmd->add_flag("--json", o.json, "Print {\"alerts\": [...]}");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(auto alerts, application->monitoring().alerts().List(o.limit));
    Emit(o.json, monitor::AlertsJson(alerts),
         [&] { std::fputs(monitor::AlertsTable(alerts).c_str(), stdout); });
    return Status::Ok();
  });
}

// --- drift ------------------------------------------------------------------------------------
void AddDrift(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "drift",
      "Compare two windows of a table (or a model's training with its latest scoring run): PSI, "
      "KS, chi-squared, Jensen-Shannon and missing rates per column");
  struct O {
    monitor::DriftRequest req;
    std::string columns;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("--table", o.req.table, "The table to compare");
  cmd->add_option("--reference", o.req.reference,
                  "The reference window START..END (inclusive; dates YYYY-MM-DD or timestamps "
                  "YYYY-MM-DDTHH:MM:SS, UTC)");
  cmd->add_option("--current", o.req.current, "The current window START..END");
  cmd->add_option("--model", o.req.model,
                  "Instead of a table: NAME[@alias|version], its training against its latest "
                  "scoring run");
  cmd->add_option("--columns", o.columns,
                  "Only these columns, comma-separated (a model's: its features and \"score\")");
  cmd->add_flag("--json", o.json,
                "Print {\"dataset_drift\", \"columns\": [{\"column\", \"kind\", \"psi\", "
                "\"statistic\", \"p_value\", \"js\", \"missing_change\", \"drifted\"}], ...}");
  cmd->footer(
      "Exit status: 0 when the dataset did not drift, 1 when it did (the [drift] thresholds of "
      "engage.toml), 2 for bad arguments or windows, 3 for an unknown table, column or model, 7 "
      "for an empty window or a model without a scoring run.");
  OnRun(cmd, action, [&g, &o]() -> Status {
    monitor::DriftRequest req = o.req;
    for (size_t start = 0; start <= o.columns.size() && !o.columns.empty();) {
      size_t comma = o.columns.find(',', start);
      std::string c =
          o.columns.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      while (!c.empty() && c.front() == ' ') c.erase(c.begin());
      while (!c.empty() && c.back() == ' ') c.pop_back();
      if (c.empty()) {
        return InvalidArgumentError(fmt::format(
            "--columns '{}' has an empty name: give names separated by commas", o.columns));
      }
      req.columns.push_back(c);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (req.model.empty()) {
      if (req.table.empty() || req.reference.empty() || req.current.empty()) {
        return InvalidArgumentError(
            "drift needs --table T --reference START..END --current START..END, or --model NAME");
      }
    } else if (!req.table.empty() || !req.reference.empty() || !req.current.empty()) {
      return InvalidArgumentError(
          "--model compares a model's training with its latest scoring run: leave out --table, "
          "--reference and --current");
    }
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(monitor::DriftReport report, application->Drift(req));
    Emit(o.json, report.ToJson(), [&] { std::fputs(report.ToText().c_str(), stdout); });
    return report.dataset_drift ? Status(StatusCode::kUnknown,
                                         fmt::format("dataset drift: {} of {} column(s) drifted",
                                                     report.drifted_columns, report.columns.size()))
                                : Status::Ok();
  });
}

}  // namespace

void RegisterMonitorCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddCheck(app, g, action);
  AddCost(app, g, action);
  AddBudget(app, g, action);
  AddAlerts(app, g, action);
  AddDrift(app, g, action);
}

}  // namespace engage::cli
