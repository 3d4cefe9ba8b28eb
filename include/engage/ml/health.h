// Model health: how the engagement model's scores turned out once their outcomes are known.
//
// Each `engage score` run wrote one set of rows to the `predictions` table: a model version's
// score per customer at a cutoff day t, stamped with the run's time (scored_at). The model
// predicted whether each customer engages in [t, t + horizon_days); once the events reach
// t + horizon_days (the same rule that labels a training cutoff: the day after the last event is
// at or after it), the realised outcome of every scored customer is known, and the run is
// evaluated: realised ROC-AUC, log-loss and calibration per decile of predicted score. A run whose
// window has not passed yet is pending. Runs are read per (scored_at, cutoff, model version).
//
// The outcome is the model's own target: the horizon and qualifying event types in its card
// (data.horizon_days, data.qualifying_types), or [engagement]'s for a card without them. The
// events table and its columns are [engagement]'s.
//
// Everything is read through the query engine (RunTrusted: metered and in the query history
// under source "health"): the list of runs reads the predictions table's model columns; each
// evaluated run reads its own predictions partition (the day of scored_at) and the events
// partitions of its outcome window only.
//
//   HealthRequest req{.model = "engagement@champion", .min_auc = config.models.health_min_auc};
//   ENGAGE_ASSIGN_OR_RETURN(HealthReport r, ModelHealth(engine, registry, config.engagement,
//   req)); if (!r.healthy) RaiseAlert(r.verdict);
//
// Thread-safety: ModelHealth uses its engine and registry from one thread at a time; the report
// is a plain value.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engage/core/config.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/ml/registry.h"
#include "engage/sql/query.h"

namespace engage::ml {

struct HealthRequest {
  std::string model;     // "name" (every version that scored), "name@alias" or "name@N"
  double min_auc = 0.6;  // [models] health_min_auc
};

// One decile of predicted score (1 = the lowest scores): rows sorted by score and cut into ten
// groups of equal size (tied scores may straddle two groups).
struct HealthDecile {
  int decile = 0;
  int64_t customers = 0;
  int64_t positives = 0;
  double predicted = 0;  // mean score
  double observed = 0;   // share that engaged
};

// One scoring run of one model version.
struct HealthRun {
  std::string scored_at;  // when the run scored, YYYY-MM-DDTHH:MM:SS (UTC)
  std::string cutoff;     // the day it scored as of: the outcome window starts here
  int64_t version = 0;
  int horizon_days = 0;
  std::string window_end;  // cutoff + horizon_days: the first day after the outcome window
  bool evaluated = false;  // false: pending (the events do not reach window_end yet)
  int64_t customers = 0;   // rows of the run (pending runs too)
  // The rest only for an evaluated run.
  int64_t positives = 0;                                  // customers who engaged in the window
  double auc = std::numeric_limits<double>::quiet_NaN();  // NaN when undefined (one class)
  double log_loss = std::numeric_limits<double>::quiet_NaN();
  std::vector<HealthDecile> calibration;
  bool below_min_auc = false;
  // Why a metric is missing; "in-sample: ..." when the version was trained on events of the
  // outcome window (a cutoff before its card's data.data_end), so the figures are optimistic.
  std::vector<std::string> notes;
};

struct HealthReport {
  std::string model;
  std::optional<int64_t> version;  // when the request named a version or an alias
  double min_auc = 0;
  std::string data_end;  // the day after the last event: the data's "now"
  // Oldest first: by cutoff, then scored_at, then version.
  std::vector<HealthRun> runs;
  // False when the latest evaluated run (LatestEvaluated) is below min_auc; true otherwise,
  // also when no run is evaluated yet.
  bool healthy = true;
  // One sentence naming the model, version, run and figures behind `healthy` (an alert's
  // message when it is false).
  std::string verdict;

  // The evaluated run with the latest cutoff (then scored_at, then version); null when every
  // run is pending.
  const HealthRun* LatestEvaluated() const;
  int64_t PendingRuns() const;

  // {"model", "version" (only when named), "min_auc", "data_end", "healthy", "verdict",
  //  "runs": [{"scored_at", "cutoff", "version", "horizon_days", "window_end", "status":
  //  "evaluated"|"pending", "customers", and when evaluated "positives", "auc", "log_loss",
  //  "calibration": [{"decile", "customers", "positives", "predicted", "observed"}],
  //  "below_min_auc", "notes"}]}; an undefined AUC is null.
  Json ToJson() const;
  // What `engage models health` prints: per run a line and, when evaluated, its figures and
  // calibration table; then the verdict.
  std::string ToText() const;
};

// Fills the metrics of an evaluated run from its realised outcomes (labels 0/1) and scores:
// positives, AUC (NaN with a note when every customer or none engaged), log-loss, deciles, and
// below_min_auc. kInvalidArgument for empty or mismatched input, a label other than 0 or 1, or
// a score that is NaN or outside [0, 1].
Status EvaluateHealthRun(std::span<const float> labels, std::span<const float> scores,
                         double min_auc, HealthRun* run);

// The health of `request.model`'s scoring runs. Errors: kInvalidArgument for a malformed
// reference; kNotFound for an unknown model, version or alias, or when the [engagement] events
// table is not configured; kFailedPrecondition for a model that is not an engagement model, one
// that never scored (the message says to run `engage score`), or an events table with no
// events. A model whose runs are all pending is not an error: every run is pending and the
// verdict says when the first one can be evaluated.
Result<HealthReport> ModelHealth(sql::QueryEngine& engine, ModelRegistry& registry,
                                 const EngagementConfig& config, const HealthRequest& request);

}  // namespace engage::ml
