#include "engage/app/monitoring.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <vector>

#include "engage/core/ids.h"

namespace engage::app {

Result<lake::IngestReport> IngestRecorded(Monitoring* monitoring, lake::Lake& lake,
                                          const lake::IngestRequest& request,
                                          const std::function<void(const std::string&)>& stage) {
  WorkRecorder work(monitoring, lake.config(), "ingest", request.table);
  work.entry().tables = request.table;
  ENGAGE_ASSIGN_OR_RETURN(lake::IngestReport r, lake::Ingest(lake, request, stage));
  work.set_units(r.record.files_written);
  return r;
}

Result<monitor::ExecutionCost> ExecutionCostOf(const HomePaths& home,
                                               const std::string& execution_id) {
  ENGAGE_ASSIGN_OR_RETURN(auto ledger,
                          monitor::Ledger::Open(home.meta_db(), SystemClock::Default()));
  return ledger->ForExecution(execution_id);
}

Monitoring::Monitoring(HomePaths home, const Clock& clock)
    : home_(std::move(home)),
      clock_(clock),
      alerts_(std::make_shared<monitor::AlertSender>(home_.meta_db(), clock)) {}

Result<monitor::Budgets*> Monitoring::BudgetsLocked() {
  if (budgets_ == nullptr) {
    ENGAGE_ASSIGN_OR_RETURN(budgets_, monitor::Budgets::Open(home_.meta_db(), clock_));
  }
  return budgets_.get();
}

void Monitoring::Install(sql::QueryEngine& engine) {
  sql::QueryHooks hooks;
  const Config* config = &engine.lake().config();
  hooks.admit = [this](const sql::QueryResult& planned, const sql::QueryRequest&) -> Status {
    std::lock_guard lock(mu_);
    ENGAGE_ASSIGN_OR_RETURN(monitor::Budgets * budgets, BudgetsLocked());
    monitor::WorkScope work;
    work.query = true;
    work.pipeline = CurrentCostContext().pipeline;
    work.tables = planned.tables;
    // Athena bills at least 10 MB even for a query that scans nothing.
    return budgets->Admit(work, std::max(planned.estimated_cost_usd, 1e-12));
  };
  hooks.recorded = [this, config](const lake::LedgerEntry&) { CheckBudgets(*config); };
  engine.SetHooks(std::move(hooks));
}

void Monitoring::CheckBudgets(const Config& config) {
  std::vector<monitor::Alert> crossed;
  {
    std::lock_guard lock(mu_);
    auto budgets = BudgetsLocked();
    if (!budgets.ok()) {
      spdlog::warn("could not check budgets: {}", budgets.status().message());
      return;
    }
    auto any = (*budgets)->Any();
    if (!any.ok() || !*any) return;
    auto found = (*budgets)->Crossings();
    if (!found.ok()) {
      spdlog::warn("could not check budgets: {}", found.status().message());
      return;
    }
    crossed = std::move(*found);
  }
  for (monitor::Alert& a : crossed) Raise(config, std::move(a));
}

void Monitoring::Record(const Config& config, lake::LedgerEntry entry) {
  {
    std::lock_guard lock(mu_);
    auto budgets = BudgetsLocked();
    const std::string kind = entry.kind;  // `entry` is moved into the ledger
    Status s = budgets.ok() ? (*budgets)->ledger().Record(std::move(entry)) : budgets.status();
    if (!s.ok()) spdlog::warn("could not record {} in the cost ledger: {}", kind, s.message());
  }
  CheckBudgets(config);
}

void Monitoring::Raise(const Config& config, monitor::Alert alert) {
  auto raised = alerts_->Raise(config.alerts, std::move(alert));
  if (!raised.ok()) spdlog::warn("could not record an alert: {}", raised.status().message());
}

void Monitoring::RaiseOnce(const Config& config, monitor::Alert alert) {
  auto seen = alerts_->Seen(alert.kind, alert.name, alert.message);
  if (seen.ok() && *seen) return;
  Raise(config, std::move(alert));
}

void Monitoring::RaiseCheckAlerts(const Config& config, const monitor::CheckRun& run) {
  std::map<std::string, std::vector<const monitor::CheckResult*>> failed;  // by table
  for (const monitor::CheckResult& c : run.checks) {
    if (c.error && !c.ok) failed[c.table].push_back(&c);
  }
  for (const auto& [table, checks] : failed) {
    monitor::Alert a;
    a.kind = "check";
    a.name = table;
    Json names = Json::array();
    std::string list;
    for (const monitor::CheckResult* c : checks) {
      names.push_back(c->check);
      list += (list.empty() ? "" : ", ") + fmt::format("{} ({} rows)", c->check, c->failing_rows);
    }
    a.message = fmt::format("{} error-severity check(s) failed on table {}: {}", checks.size(),
                            table, list);
    a.details = Json{{"table", table},
                     {"checks", std::move(names)},
                     {"run_id", run.id},
                     {"ingest_id", run.ingest_id}};
    Raise(config, std::move(a));
  }
}

Status Monitoring::AdmitPipeline(const std::string& name) {
  std::lock_guard lock(mu_);
  ENGAGE_ASSIGN_OR_RETURN(monitor::Budgets * budgets, BudgetsLocked());
  monitor::WorkScope work;
  work.pipeline = name;
  return budgets->Admit(work, 0);
}

WorkRecorder::WorkRecorder(Monitoring* monitoring, const Config& config, std::string kind,
                           std::string name, CostContext context)
    : monitoring_(monitoring), config_(config) {
  entry_.kind = std::move(kind);
  entry_.name = std::move(name);
  if (monitoring_ != nullptr) entry_.id = NewId(monitoring_->clock());
  scope_ = std::make_unique<CostScope>(std::move(context), entry_.id);
  const CostContext& inner = CurrentCostContext();
  entry_.parent = scope_->enclosing().parent;
  entry_.execution_id = inner.execution_id;
  entry_.pipeline = inner.pipeline;
  entry_.step = inner.step;
  entry_.model = inner.model;
}

WorkRecorder::~WorkRecorder() { Finish(); }

void WorkRecorder::Finish() {
  if (done_) return;
  done_ = true;
  scope_.reset();
  if (monitoring_ == nullptr) return;
  entry_.usage = meter_.Stop();
  const Prices& p = config_.prices;
  const std::string& kind = entry_.kind;
  if (kind == "training" || kind == "scoring") {
    entry_.cloud_usd = monitor::FargateUsd(p, entry_.usage, &entry_.detail);
  } else if (kind == "publish") {
    entry_.cloud_usd = monitor::DynamoUsd(p, 0, units_, &entry_.detail);
  } else if (kind == "execution") {
    entry_.cloud_usd = monitor::TransitionsUsd(p, units_, &entry_.detail);
  } else if (kind == "ingest") {
    entry_.cloud_usd = monitor::S3Usd(p, 0, 0, units_, &entry_.detail);
  } else {  // a step: a Lambda invocation for its wall time
    entry_.cloud_usd = monitor::LambdaUsd(p, 1, entry_.usage.wall_seconds, &entry_.detail);
  }
  monitoring_->Record(config_, std::move(entry_));
}

}  // namespace engage::app
