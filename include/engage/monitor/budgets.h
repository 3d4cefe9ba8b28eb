// Budgets: a limit in USD per day or month on the cloud cost of some of the ledger's work (all of
// it, queries, one pipeline or one table). Crossing 80% and 100% of a budget raises an alert once
// per period; a hard budget refuses a query whose estimate would cross it (before it runs) and
// refuses to start a pipeline once crossed.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto budgets, Budgets::Open(home.meta_db(), clock));
//   ENGAGE_RETURN_IF_ERROR(budgets->Set({.name = "daily", .limit_usd = 5, .period = "day"}));
//   ENGAGE_ASSIGN_OR_RETURN(std::vector<Alert> crossed, budgets->Crossings());
//
// Thread-safety: a Budgets may be used from one thread at a time.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/monitor/alerts.h"
#include "engage/monitor/cost.h"

namespace engage::monitor {

struct Budget {
  std::string name;
  double limit_usd = 0;
  std::string period = "month";  // day or month (UTC)
  std::string scope = "all";     // all, queries, pipeline:<name>, table:<name>
  bool hard = false;
  std::string created_at;
  Json ToJson() const;  // {"name", "limit_usd", "period", "scope", "hard", "created_at"}
};

struct BudgetStatus {
  Budget budget;
  std::string period_start;  // ISO time the current period began
  double spent_usd = 0;
  double share() const { return budget.limit_usd > 0 ? spent_usd / budget.limit_usd : 0; }
  // Budget::ToJson() and "period_start", "spent_usd", "share".
  Json ToJson() const;
};

// Statuses as a table (name, scope, period, spent, limit, share, hard) and {"budgets": [...]}.
std::string BudgetsTable(const std::vector<BudgetStatus>& statuses);
Json BudgetsJson(const std::vector<BudgetStatus>& statuses);

// What a piece of work would be charged to (a query's tables, a pipeline's name).
struct WorkScope {
  bool query = false;
  std::string pipeline;
  std::set<std::string> tables;
};

class Budgets {
 public:
  static Result<std::unique_ptr<Budgets>> Open(const std::string& meta_db, const Clock& clock);

  // Adds or replaces a budget. kInvalidArgument naming the field: an empty or odd name, a limit
  // that is not a positive finite number, a period other than day/month, a malformed scope.
  Status Set(Budget budget);
  // kNotFound naming it.
  Status Delete(const std::string& name);
  Result<std::vector<Budget>> List();
  Result<std::vector<BudgetStatus>> Statuses();

  // kResourceExhausted naming the budget when a hard budget covering `work` would be crossed by
  // `extra_usd` more (a query's estimate), or is already crossed (extra 0: a pipeline start).
  Status Admit(const WorkScope& work, double extra_usd);

  // The budgets whose spending passed 80% or 100% of the limit in the current period and have
  // not yet raised that alert this period: their alerts (kind "budget", details spent_usd,
  // limit_usd, period, threshold, scope), each marked as raised.
  Result<std::vector<Alert>> Crossings();

  // Whether any budget exists (cheap: callers skip the rest when not).
  Result<bool> Any();

  // The ledger the budgets read (its connection), for recording on the same one.
  Ledger& ledger() { return *ledger_; }

 private:
  Budgets(std::unique_ptr<Ledger> ledger) : ledger_(std::move(ledger)) {}
  std::string PeriodStart(const std::string& period) const;
  Result<BudgetStatus> StatusOf(const Budget& b);
  std::unique_ptr<Ledger> ledger_;
};

}  // namespace engage::monitor
