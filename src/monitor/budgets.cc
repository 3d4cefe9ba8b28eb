#include "engage/monitor/budgets.h"

#include <fmt/format.h>

#include <cmath>

#include "engage/core/text.h"

namespace engage::monitor {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS budgets (
  name TEXT PRIMARY KEY,
  limit_usd REAL NOT NULL,
  period TEXT NOT NULL,
  scope TEXT NOT NULL,
  hard INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
-- The alerts a budget raised: once per period and threshold.
CREATE TABLE IF NOT EXISTS budget_marks (
  name TEXT NOT NULL,
  period_start TEXT NOT NULL,
  threshold INTEGER NOT NULL,
  PRIMARY KEY (name, period_start, threshold)
);
)sql";

constexpr int kThresholds[] = {80, 100};

bool Covers(const Budget& b, const WorkScope& work) {
  if (b.scope == "all") return true;
  if (b.scope == "queries") return work.query;
  if (b.scope.rfind("pipeline:", 0) == 0) return work.pipeline == b.scope.substr(9);
  if (b.scope.rfind("table:", 0) == 0) return work.tables.count(b.scope.substr(6)) > 0;
  return false;
}

}  // namespace

Json Budget::ToJson() const {
  return Json{{"name", name},   {"limit_usd", limit_usd}, {"period", period},
              {"scope", scope}, {"hard", hard},           {"created_at", created_at}};
}

Json BudgetStatus::ToJson() const {
  Json j = budget.ToJson();
  j["period_start"] = period_start;
  j["spent_usd"] = spent_usd;
  j["share"] = share();
  return j;
}

std::string BudgetsTable(const std::vector<BudgetStatus>& statuses) {
  if (statuses.empty()) return "no budgets (add one: engage budget set NAME --limit-usd X)\n";
  std::vector<std::vector<std::string>> rows;
  for (const BudgetStatus& s : statuses) {
    rows.push_back({s.budget.name, s.budget.scope, s.budget.period, Usd(s.spent_usd),
                    Usd(s.budget.limit_usd), fmt::format("{:.0f}%", s.share() * 100),
                    s.budget.hard ? "hard" : "soft"});
  }
  return FormatTable({"name", "scope", "period", "spent", "limit", "used", "kind"}, rows);
}

Json BudgetsJson(const std::vector<BudgetStatus>& statuses) {
  Json a = Json::array();
  for (const BudgetStatus& s : statuses) a.push_back(s.ToJson());
  return Json{{"budgets", std::move(a)}};
}

Result<std::unique_ptr<Budgets>> Budgets::Open(const std::string& meta_db, const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(auto ledger, Ledger::Open(meta_db, clock));
  ENGAGE_RETURN_IF_ERROR(ledger->db().Exec(kSchema));
  return std::unique_ptr<Budgets>(new Budgets(std::move(ledger)));
}

Status Budgets::Set(Budget b) {
  bool name_ok = !b.name.empty() && b.name.size() <= 64;
  for (char c : b.name) {
    name_ok = name_ok &&
              (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  }
  if (!name_ok) {
    return InvalidArgumentError(
        fmt::format("budget name '{}': use 1 to 64 letters, digits, '-', '_' or '.'", b.name));
  }
  if (!(std::isfinite(b.limit_usd) && b.limit_usd >= 1e-6 && b.limit_usd <= 1e9)) {
    return InvalidArgumentError(
        fmt::format("budget '{}': --limit-usd must be from 0.000001 to 1000000000 USD, got {:g}",
                    b.name, b.limit_usd));
  }
  if (b.period != "day" && b.period != "month") {
    return InvalidArgumentError(
        fmt::format("budget '{}': --period must be day or month, got '{}'", b.name, b.period));
  }
  if (Status s = CheckScope(b.scope); !s.ok()) {
    return InvalidArgumentError(fmt::format("budget '{}': {}", b.name, s.message()));
  }
  if (b.created_at.empty()) b.created_at = FormatIsoUtc(ledger_->clock().NowMicros());
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      ledger_->db().Prepare("INSERT OR REPLACE INTO budgets (name, limit_usd, period, scope, "
                            "hard, created_at) VALUES (?, ?, ?, ?, ?, ?)"));
  st.Bind(1, b.name).Bind(2, b.limit_usd).Bind(3, b.period).Bind(4, b.scope);
  st.Bind(5, static_cast<int64_t>(b.hard ? 1 : 0)).Bind(6, b.created_at);
  return st.Run();
}

Status Budgets::Delete(const std::string& name) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          ledger_->db().Prepare("DELETE FROM budgets WHERE name = ?"));
  st.Bind(1, name);
  ENGAGE_RETURN_IF_ERROR(st.Run());
  if (ledger_->db().Changes() == 0) {
    return NotFoundError(fmt::format("no budget named '{}' (see engage budget list)", name));
  }
  return Status::Ok();
}

Result<std::vector<Budget>> Budgets::List() {
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          ledger_->db().Prepare("SELECT name, limit_usd, period, scope, hard, "
                                                "created_at FROM budgets ORDER BY name"));
  std::vector<Budget> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(
        Budget{st.Text(0), st.Double(1), st.Text(2), st.Text(3), st.Int(4) != 0, st.Text(5)});
  }
  return out;
}

Result<bool> Budgets::Any() {
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          ledger_->db().Prepare("SELECT EXISTS (SELECT 1 FROM budgets)"));
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row && st.Int(0) != 0;
}

std::string Budgets::PeriodStart(const std::string& period) const {
  std::string now = FormatIsoUtc(ledger_->clock().NowMicros());
  return period == "day" ? now.substr(0, 10) + "T00:00:00Z" : now.substr(0, 7) + "-01T00:00:00Z";
}

Result<BudgetStatus> Budgets::StatusOf(const Budget& b) {
  BudgetStatus s;
  s.budget = b;
  s.period_start = PeriodStart(b.period);
  ENGAGE_ASSIGN_OR_RETURN(s.spent_usd, ledger_->Spent(b.scope, s.period_start, ""));
  return s;
}

Result<std::vector<BudgetStatus>> Budgets::Statuses() {
  ENGAGE_ASSIGN_OR_RETURN(std::vector<Budget> all, List());
  std::vector<BudgetStatus> out;
  for (const Budget& b : all) {
    ENGAGE_ASSIGN_OR_RETURN(BudgetStatus s, StatusOf(b));
    out.push_back(std::move(s));
  }
  return out;
}

Status Budgets::Admit(const WorkScope& work, double extra_usd) {
  ENGAGE_ASSIGN_OR_RETURN(std::vector<Budget> all, List());
  for (const Budget& b : all) {
    if (!b.hard || !Covers(b, work)) continue;
    ENGAGE_ASSIGN_OR_RETURN(BudgetStatus s, StatusOf(b));
    if (extra_usd > 0 && s.spent_usd + extra_usd > b.limit_usd) {
      return ResourceExhaustedError(fmt::format(
          "hard budget '{}' ({} per {}, scope {}): {} spent this {}; this query's estimated {} "
          "would cross it. Filter on dt to scan less, or raise the budget (engage budget set {} "
          "--limit-usd ...)",
          b.name, Usd(b.limit_usd), b.period, b.scope, Usd(s.spent_usd), b.period, Usd(extra_usd),
          b.name));
    }
    if (extra_usd <= 0 && s.spent_usd >= b.limit_usd) {
      return ResourceExhaustedError(fmt::format(
          "hard budget '{}' ({} per {}, scope {}) is crossed: {} spent this {}; nothing more "
          "starts until the next {} or until the budget is raised",
          b.name, Usd(b.limit_usd), b.period, b.scope, Usd(s.spent_usd), b.period, b.period));
    }
  }
  return Status::Ok();
}

Result<std::vector<Alert>> Budgets::Crossings() {
  std::vector<Alert> out;
  ENGAGE_ASSIGN_OR_RETURN(std::vector<Budget> all, List());
  for (const Budget& b : all) {
    ENGAGE_ASSIGN_OR_RETURN(BudgetStatus s, StatusOf(b));
    // Every threshold passed is marked; one alert names the highest newly passed (a jump from
    // 50% to 120% is one alert, at 100%).
    int raised = 0;
    for (int threshold : kThresholds) {
      if (s.spent_usd < b.limit_usd * threshold / 100.0) continue;
      ENGAGE_ASSIGN_OR_RETURN(
          SqliteStmt mark,
          ledger_->db().Prepare("INSERT OR IGNORE INTO budget_marks (name, period_start, "
                                "threshold) VALUES (?, ?, ?)"));
      mark.Bind(1, b.name).Bind(2, s.period_start).Bind(3, static_cast<int64_t>(threshold));
      ENGAGE_RETURN_IF_ERROR(mark.Run());
      if (ledger_->db().Changes() > 0) raised = threshold;
    }
    if (raised == 0) continue;
    Alert a;
    a.kind = "budget";
    a.name = b.name;
    a.message = fmt::format("budget '{}' passed {}% of its {} per {}: {} spent (scope {})", b.name,
                            raised, Usd(b.limit_usd), b.period, Usd(s.spent_usd), b.scope);
    a.details = Json{{"spent_usd", s.spent_usd},
                     {"limit_usd", b.limit_usd},
                     {"period", b.period},
                     {"period_start", s.period_start},
                     {"threshold", raised},
                     {"scope", b.scope},
                     {"hard", b.hard}};
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace engage::monitor
