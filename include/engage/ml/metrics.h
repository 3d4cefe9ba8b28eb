// Evaluation of binary classifiers: labels in {0, 1}, scores (probabilities) in [0, 1].
//
//   ENGAGE_ASSIGN_OR_RETURN(double auc, RocAuc(labels, scores));
//   ENGAGE_ASSIGN_OR_RETURN(EvalReport r, Evaluate(labels, scores));
//   fmt::print("{}\n", DumpJson(r.ToJson()));
//
// Definitions follow scikit-learn so numbers can be checked against it: ROC-AUC is exact with
// tied scores counted as half (the trapezoid rule, equivalently Mann-Whitney U with midranks);
// average precision is the step-wise sum over distinct thresholds of (R_n - R_{n-1}) * P_n, as
// average_precision_score; log-loss clips probabilities to [1e-15, 1 - 1e-15].
//
// Errors are kInvalidArgument: empty input, lengths that differ, a label other than 0 or 1, a
// NaN score, a probability outside [0, 1] (for the metrics that need probabilities), and a
// metric that is undefined for the data (ROC-AUC with one class, average precision and lift with
// no positives); the message says which.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"

namespace engage::ml {

// Share of positive labels.
Result<double> BaseRate(std::span<const float> labels);

// Area under the ROC curve (any real scores; only their order matters).
Result<double> RocAuc(std::span<const float> labels, std::span<const float> scores);

// Area under the precision-recall curve as average precision (PR-AUC).
Result<double> AveragePrecision(std::span<const float> labels, std::span<const float> scores);

// Mean negative log-likelihood with probabilities clipped to [1e-15, 1 - 1e-15].
Result<double> LogLoss(std::span<const float> labels, std::span<const float> scores);

// Mean squared difference between probability and label.
Result<double> BrierScore(std::span<const float> labels, std::span<const float> scores);

enum class BinStrategy {
  kUniform,   // equal-width bins over [0, 1]; bin i holds [i/n, (i+1)/n), the last includes 1
  kQuantile,  // equal-count bins of the rows sorted by score (tied scores may straddle bins)
};

struct CalibrationBin {
  double lower = 0;  // score range of the bin (kUniform: its edges; kQuantile: min and max)
  double upper = 0;
  int64_t count = 0;
  int64_t positives = 0;
  // Mean score and share of positives in the bin; NaN for an empty bin.
  double mean_predicted = std::numeric_limits<double>::quiet_NaN();
  double observed_rate = std::numeric_limits<double>::quiet_NaN();
};

// Reliability table with `bins` bins (>= 1). kQuantile with fewer rows than bins gives some
// empty bins.
Result<std::vector<CalibrationBin>> Calibration(std::span<const float> labels,
                                                std::span<const float> scores, int bins = 10,
                                                BinStrategy strategy = BinStrategy::kUniform);

// Count-weighted mean |mean_predicted - observed_rate| over the non-empty bins.
double ExpectedCalibrationError(const std::vector<CalibrationBin>& bins);

struct LiftRow {
  int group = 0;  // 1 = the highest scores
  int64_t count = 0;
  int64_t positives = 0;
  double rate = 0;             // positives / count
  double lift = 0;             // rate / base rate
  double cumulative_gain = 0;  // share of all positives in groups 1..group
  double cumulative_lift = 0;  // (positives in groups 1..group / rows there) / base rate
  double min_score = 0;        // score range of the group
  double max_score = 0;
};

// Rows sorted by score, highest first (ties broken by position, so the table is deterministic),
// cut into `groups` groups of equal size (deciles by default; sizes differ by at most one).
// kInvalidArgument if there are fewer rows than groups or no positive labels.
Result<std::vector<LiftRow>> LiftTable(std::span<const float> labels, std::span<const float> scores,
                                       int groups = 10);

struct EvalOptions {
  int calibration_bins = 10;
  BinStrategy calibration_strategy = BinStrategy::kUniform;
  int lift_groups = 10;
};

// Everything above for one set of predictions.
struct EvalReport {
  int64_t count = 0;
  int64_t positives = 0;
  double base_rate = 0;
  // NaN when undefined for the data (see `notes`): roc_auc with one class, pr_auc without
  // positives.
  double roc_auc = std::numeric_limits<double>::quiet_NaN();
  double pr_auc = std::numeric_limits<double>::quiet_NaN();
  double log_loss = 0;
  double brier = 0;
  double expected_calibration_error = 0;
  std::vector<CalibrationBin> calibration;
  std::vector<LiftRow> lift;       // empty when undefined (see `notes`)
  std::vector<std::string> notes;  // why a metric is missing, e.g. "roc_auc: only one class"

  // {"count", "positives", "base_rate", "roc_auc", "pr_auc", "log_loss", "brier",
  //  "expected_calibration_error", "calibration": [...], "lift": [...], "notes": [...]};
  // NaN values are null.
  Json ToJson() const;
};

// Evaluates probabilities. Input errors (empty, lengths, labels, NaN or out-of-range scores)
// are kInvalidArgument; metrics that are merely undefined for the data (one class) are left NaN
// or empty with a note, so a day with no conversions still gets a report.
Result<EvalReport> Evaluate(std::span<const float> labels, std::span<const float> scores,
                            const EvalOptions& opts = {});

}  // namespace engage::ml
