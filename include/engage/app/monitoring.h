// What the application does about cost and alerts: it records work in the cost ledger, raises the
// alerts budgets, checks and executions call for, refuses work a hard budget forbids, and
// delivers alerts to the [alerts] channels (monitor::AlertSender).
//
// The App owns one Monitoring and hands it to its query engines (Install: budget refusals and
// alerts for every query), its execution runner (each step and execution in the ledger) and the
// server (request batches). Failures to record are logged, never returned: the work that was
// measured already happened.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/core/home.h"
#include "engage/core/usage.h"
#include "engage/lake/catalog.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "engage/monitor/alerts.h"
#include "engage/monitor/budgets.h"
#include "engage/monitor/checks.h"
#include "engage/monitor/cost.h"
#include "engage/sql/query.h"

namespace engage::app {

class Monitoring;

// Ingests (lake::Ingest) and records it in the cost ledger when `monitoring` is set: the files
// written priced as S3 PUT requests.
Result<lake::IngestReport> IngestRecorded(
    Monitoring* monitoring, lake::Lake& lake, const lake::IngestRequest& request,
    const std::function<void(const std::string&)>& stage = nullptr);

// An execution's cost from the home's ledger (ExecutionCost::ToJson), for describe and history.
Result<monitor::ExecutionCost> ExecutionCostOf(const HomePaths& home,
                                               const std::string& execution_id);

class Monitoring {
 public:
  Monitoring(HomePaths home, const Clock& clock);

  // Hard budgets refuse the engine's user queries whose estimate would cross them; every query it
  // records may raise budget alerts.
  void Install(sql::QueryEngine& engine);

  // Appends `entry` to the ledger (its usage priced by the caller), then raises the budget alerts
  // it causes, delivered per `config`.
  void Record(const Config& config, lake::LedgerEntry entry);
  // Raises the alerts budgets now call for (after work was recorded elsewhere).
  void CheckBudgets(const Config& config);
  // Records and delivers an alert.
  void Raise(const Config& config, monitor::Alert alert);
  // Raise, unless an alert of the same kind, name and message was raised already.
  void RaiseOnce(const Config& config, monitor::Alert alert);
  // One alert per table whose error-severity checks failed in `run`.
  void RaiseCheckAlerts(const Config& config, const monitor::CheckRun& run);
  // kResourceExhausted when a hard budget covering pipeline `name` is already crossed.
  Status AdmitPipeline(const std::string& name);

  monitor::AlertSender& alerts() { return *alerts_; }
  const HomePaths& home() const { return home_; }
  const Clock& clock() const { return clock_; }

 private:
  HomePaths home_;
  const Clock& clock_;
  std::shared_ptr<monitor::AlertSender> alerts_;
  std::mutex mu_;  // guards budgets_ (one SQLite connection)
  std::unique_ptr<monitor::Budgets> budgets_;
  Result<monitor::Budgets*> BudgetsLocked();
};

// Measures work and records it in the ledger when it ends: a training or scoring run (priced as
// a Fargate task), a step (a Lambda invocation), a publish (DynamoDB writes)... The work's
// queries and nested work see it as their scope.
//
//   WorkRecorder work(monitoring, config, "training", "engagement");
//   work.entry().model = "engagement";
//   ... train ...
//   work.Finish(FargateUsd(...)) or let it price itself with a pricing function.
class WorkRecorder {
 public:
  // `monitoring` may be null: nothing is recorded.
  WorkRecorder(Monitoring* monitoring, const Config& config, std::string kind, std::string name,
               CostContext context = {});
  // Records with the pricing of `kind` (see Price) unless Finish was called.
  ~WorkRecorder();
  WorkRecorder(const WorkRecorder&) = delete;
  WorkRecorder& operator=(const WorkRecorder&) = delete;

  lake::LedgerEntry& entry() { return entry_; }
  // Units the pricing uses: DynamoDB writes of a publish, S3 PUTs of an ingest.
  void set_units(int64_t units) { units_ = units; }
  // Records now.
  void Finish();

 private:
  Monitoring* monitoring_;
  const Config& config_;
  UsageMeter meter_;
  lake::LedgerEntry entry_;
  int64_t units_ = 0;
  std::unique_ptr<CostScope> scope_;
  bool done_ = false;
};

}  // namespace engage::app
