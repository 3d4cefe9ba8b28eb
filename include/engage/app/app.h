// The application layer: what a running Engage is, under both the CLI and the HTTP server.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto app, App::Open(ResolveHome(flag)));
//   ENGAGE_ASSIGN_OR_RETURN(auto trained, app->TrainEngagement({.model_name = "engagement"}));
//   ENGAGE_ASSIGN_OR_RETURN(auto rec, app->executions().Start(std::move(request)));
//
// App owns a lake handle, the process's one long-lived query engine (ReadSides: shared with the
// execution runner's steps and the server's requests), the model registry, the serving store
// (Serving: the published predictions) and the execution runner (whose executions run Engage's
// steps: see steps.h). The use cases that tie components together live here: training and
// registering the engagement model, publishing predictions, the data-quality checks, the shipped
// pipelines and starting executions. The CLI parses arguments and prints; the server parses HTTP
// and renders; both call App.
//
// Writers (ingest, scoring, compaction) take the lake's writer lock for their run only:
// OpenWriter() gives a writer handle for that.
//
// Thread-safety: executions(), reads() and serving() may be used from any thread. The rest (lake(),
// registry() and the use cases) from one thread at a time, the one that opened the App.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engage/app/executions.h"
#include "engage/app/monitoring.h"
#include "engage/app/read_side.h"
#include "engage/app/serving.h"
#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/lake/lake.h"
#include "engage/ml/engagement.h"
#include "engage/ml/health.h"
#include "engage/ml/registry.h"
#include "engage/ml/scoring.h"
#include "engage/ml/table_train.h"
#include "engage/monitor/checks.h"
#include "engage/monitor/drift.h"
#include "engage/serve/ab.h"
#include "engage/serve/store.h"
#include "engage/sql/query.h"

namespace engage::app {

struct AppOptions {
  const Clock* clock = nullptr;  // nullptr: SystemClock::Default()
  int query_threads = 0;         // DuckDB threads of the query engine; 0 = all cores
};

// The outcome of training the engagement model, and what happened to the champion alias.
struct EngagementTraining {
  ml::EngagementTrainResult trained;
  // The first version of a model that passes the quality bar becomes its champion (recorded in
  // the alias history); later ones go through `engage models promote` or the pipeline.
  bool became_champion = false;
  std::string champion_note;  // why it did or did not become champion
  Json ToJson() const;
  // What `engage train` prints: the version (or the identical one), validation metrics against
  // the baseline, boosting, and the champion note.
  std::string ToText() const;
};

// The outcome of training on a labelled table (`engage train --table`), registered like the
// engagement model (same first-champion rule).
struct TableTraining {
  std::optional<ml::TableTrainResult> trained;  // none when an identical version exists
  ml::ModelVersion version;                     // registered, or the identical one
  bool existing = false;
  bool became_champion = false;
  std::string champion_note;
  // The training's TableTrainResult::ToJson() (for an existing version: its card's metrics
  // under the same keys) with "model", "version", "existing", "fingerprint", "became_champion"
  // and "champion_note".
  Json ToJson() const;
  // What `engage train --table` prints: rows and split, encoding, boosting, the test split's
  // metrics, the top features, the version registered (or the identical one) and the champion.
  std::string ToText() const;
};

class App {
 public:
  // Opens the home: kNotFound (with a hint to run `engage init`) when it has no engage.toml.
  static Result<std::unique_ptr<App>> Open(const HomePaths& home, AppOptions options = {});
  ~App();

  const HomePaths& home() const { return home_; }
  const Config& config() const { return lake_->config(); }
  const Clock& clock() const { return *clock_; }
  // A lake handle for the opening thread (catalog, config, paths).
  lake::Lake& lake() { return *lake_; }
  // The process's query engine and config, shared by every thread (see read_side.h).
  ReadSides& reads() { return *reads_; }
  ml::ModelRegistry& registry() { return *registry_; }
  ExecutionRunner& executions() { return *runner_; }
  // The serving store (the published predictions), shared by every thread.
  Serving& serving() { return *serving_; }
  // The cost ledger, budgets and alerts (see monitoring.h).
  Monitoring& monitoring() { return *monitoring_; }

  // A writer handle on the lake: takes the writer lock (waiting for another writer) and runs
  // recovery; released when the handle goes.
  Result<std::unique_ptr<lake::Lake>> OpenWriter();

  // Trains the engagement model from [engagement], registers it, and makes the first version
  // that passes the quality bar champion. When a version was trained on the same data with the
  // same settings and parameters, nothing is trained: trained.existing, and that version.
  Result<EngagementTraining> TrainEngagement(const ml::EngagementTrainOptions& options);

  // Trains a binary classifier on a labelled table (ml::TrainOnTable) and registers it as
  // `model_name` (kind "table"), with the same first-champion rule and the same reuse of an
  // identical version. Errors of TrainOnTable and ModelRegistry::FindIdentical.
  Result<TableTraining> TrainTable(const ml::TableTrainRequest& request,
                                   const std::string& model_name,
                                   const ml::ProgressFn& progress = nullptr);

  // Publishes the latest predictions of model references (name@alias|version; the first is the
  // default) into the serving store, with the arms of the model's traffic split.
  Result<serve::PublishReport> Publish(const std::vector<std::string>& refs, int keep);

  // The home's traffic splits (`engage ab split show|clear`).
  Result<std::unique_ptr<serve::SplitStore>> OpenSplits();
  // `engage ab split set`: parses the arms (serve::TrafficSplit::Parse), checks that each names a
  // registered version of `model` now rather than at the next publish (the registry's kNotFound
  // otherwise), and stores the split.
  Result<serve::TrafficSplit> SetTrafficSplit(const std::string& model,
                                              const std::vector<std::string>& arms,
                                              const std::string& salt);

  // Runs the declared data-quality checks `request` selects ([[tables.T.checks]]) on the shared
  // engine and records the run in meta.db (monitor::RunChecks' errors).
  Result<monitor::CheckRun> RunChecks(const monitor::CheckRequest& request);
  // The newest `limit` check runs, newest first.
  Result<std::vector<monitor::CheckRun>> CheckHistory(int64_t limit);

  // The cost ledger's report; the lake's storage is sampled into the ledger first.
  Result<monitor::CostReport> CostReport(const monitor::CostQuery& query);
  // The home's budgets.
  Result<std::unique_ptr<monitor::Budgets>> OpenBudgets();
  // Adds or replaces a budget (Budgets::Set), its scope checked against the configuration: a
  // table:T scope names a configured table (exactly), a pipeline:P scope a state machine name
  // (letters, digits, '-' and '_'), so that a typo cannot silently disable a budget.
  Status SetBudget(const monitor::Budget& budget);

  // The realised health of a model's scoring runs (`engage models health`): `model` is "name"
  // (every version that scored), "name@alias" or "name@N"; the minimum AUC is [models]
  // health_min_auc. ml::ModelHealth's errors. A report with healthy == false is what an alert is
  // raised on (its verdict names the model, version, run and AUC).
  Result<ml::HealthReport> ModelHealth(const std::string& model);

  // Drift (`engage drift`, monitor/drift.h). With request.model (name, name@version or
  // name@alias): the model's training profile (its card's drift_profile: features and
  // validation scores) against its latest scoring run (that run's scores, and the features
  // recomputed at its cutoff); request.columns, if any, picks features ("score" for the scores).
  // Otherwise two windows of request.table (monitor::TableDrift and its errors). Model errors:
  // the registry's kNotFound/kInvalidArgument; kFailedPrecondition for a model of another kind,
  // a version trained before profiles were stored, no scoring run in `predictions`, or a
  // feature the configuration no longer produces. The caller raises any alert on
  // report.dataset_drift.
  Result<monitor::DriftReport> Drift(const monitor::DriftRequest& request);

  // Data-quality checks on the events before training: the built-in ones (events present,
  // qualifying events, enough history, volume, rejects) and those declared on the events table
  // (recorded like `engage check`'s): {"passed", "checks": [...], ...}.
  Result<Json> QualityChecks();

  // Starts an execution the way the server does: {"state_machine": NAME} (a registered machine,
  // run under its role) or {"pipeline": "engagement"}, with optional "name" and "input". Returns
  // the execution's record (DescribeExecution shape) at once. kInvalidArgument for an inline
  // "definition" or a bad name, kNotFound for an unregistered machine.
  Result<Json> StartRegisteredExecution(const Json& request);

 private:
  App() = default;
  HomePaths home_;
  const Clock* clock_ = nullptr;
  std::shared_ptr<Monitoring> monitoring_;  // outlives what it is handed to
  std::unique_ptr<lake::Lake> lake_;
  std::shared_ptr<ReadSides> reads_;
  std::unique_ptr<ml::ModelRegistry> registry_;
  std::unique_ptr<ExecutionRunner> runner_;
  std::unique_ptr<Serving> serving_;
};

// Publishes (PublishModels) and records it in the cost ledger when `monitoring` is set.
Result<serve::PublishReport> PublishRecorded(Monitoring* monitoring, lake::Lake& lake,
                                             const std::vector<std::string>& refs, int keep,
                                             const Clock& clock);
// Scores (ml::ScoreAll) and records the scoring run in the cost ledger when `monitoring` is set.
Result<ml::ScoreReport> ScoreRecorded(Monitoring* monitoring, lake::Lake& lake,
                                      sql::QueryEngine& engine, ml::ModelRegistry& registry,
                                      const ml::ScoreOptions& options);

// Publishes with an already open lake (what App::Publish and the engage:publish step share).
Result<serve::PublishReport> PublishModels(lake::Lake& lake, const std::vector<std::string>& refs,
                                           int keep, const Clock& clock);

// Trains, registers and applies the first-champion rule with components already open (what
// App::TrainEngagement and the engage:train step share).
Result<EngagementTraining> TrainEngagementModel(sql::QueryEngine& engine,
                                                ml::ModelRegistry& registry, const Config& config,
                                                const ml::EngagementTrainOptions& options);

// Model drift with components already open (what App::Drift does with request.model).
Result<monitor::DriftReport> ModelDrift(sql::QueryEngine& engine, ml::ModelRegistry& registry,
                                        const monitor::DriftRequest& request);

// Data-quality checks with components already open.
// With `monitoring`, a failed run raises a "check" alert.
Result<Json> RunQualityChecks(lake::Lake& lake, sql::QueryEngine& engine,
                              Monitoring* monitoring = nullptr);

}  // namespace engage::app
