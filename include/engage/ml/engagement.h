// Training the engagement model end to end: point-in-time features at the training cutoffs
// (features component), BG/NBD and Gamma-Gamma outputs fitted at each cutoff as extra features,
// XGBoost with early stopping on the latest labelled cutoff (a time split), evaluation against
// a recency-only baseline, and a registered model version with its card and lineage.
//
//   EngagementTrainer trainer(*engine, *registry, config.engagement);
//   ENGAGE_ASSIGN_OR_RETURN(EngagementTrainResult r, trainer.Train(options));
//
// Thread-safety: one thread at a time (it drives a QueryEngine and a ModelRegistry).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engage/core/config.h"
#include "engage/core/json.h"
#include "engage/features/features.h"
#include "engage/ml/metrics.h"
#include "engage/ml/registry.h"
#include "engage/ml/xgb.h"
#include "engage/sql/query.h"

namespace engage::ml {

struct EngagementTrainOptions {
  std::string model_name = "engagement";
  TrainParams params = DefaultEngagementParams();
  bool btyd_features = true;
  // Told what is happening ("features at 2024-10-02", "training", ...).
  std::function<void(const std::string&)> stage;
  ProgressFn rounds;

  static TrainParams DefaultEngagementParams();
};

struct EngagementTrainResult {
  ModelVersion version;  // as registered, or the identical version found (existing)
  // True when a version of the model was already trained on the same data (the lake files of
  // the events and customers tables), [engagement] settings and parameters: nothing was trained
  // or registered, `version` is that version and the fields below are empty (its card has them).
  bool existing = false;
  std::string fingerprint;  // of this training (card.fingerprint)
  EvalReport valid;         // the model on the validation cutoff
  double baseline_auc = 0;  // recency-only on the same rows
  TrainSummary summary;
  int64_t rows_train = 0, rows_valid = 0;
  double seconds = 0;
  // {"model", "version", "existing", "fingerprint", "valid", "baseline_auc", "rows_train",
  //  "rows_valid", "rounds", "best_iteration", "seconds"}; for an existing version the metrics
  // and counts come from its card.
  Json ToJson() const;
};

class EngagementTrainer {
 public:
  EngagementTrainer(sql::QueryEngine& engine, ModelRegistry& registry, EngagementConfig config)
      : engine_(engine), registry_(registry), config_(std::move(config)) {}

  // Trains and registers a version, unless an identical one exists (see
  // EngagementTrainResult::existing). kFailedPrecondition when there are too few labelled rows
  // or only one class at a cutoff, or when the model name holds models of another kind;
  // kInvalidArgument for a bad model name.
  Result<EngagementTrainResult> Train(const EngagementTrainOptions& options);

  // Features (with the BG/NBD and Gamma-Gamma columns) at `cutoffs`: what Train uses, and what
  // scoring uses at the scoring cutoff. `btyd_params` (optional) receives the fitted
  // parameters per cutoff.
  Result<features::FeatureFrame> BuildFeatures(const std::vector<std::string>& cutoffs,
                                               bool btyd_features, Json* btyd_params = nullptr);

  // The fingerprint of training with `options` now (see EngagementTrainResult::existing).
  Result<std::string> TrainingFingerprint(const EngagementTrainOptions& options);

 private:
  Status AddBtydFeatures(const std::string& cutoff, features::FeatureFrame* frame,
                         int64_t first_row, int64_t rows, Json* params);
  sql::QueryEngine& engine_;
  ModelRegistry& registry_;
  EngagementConfig config_;
};

}  // namespace engage::ml
