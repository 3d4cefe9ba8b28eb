// XGBoost through its C API (libxgboost 1.7): training with early stopping, in-memory or in
// batches from external memory, fast prediction, SHAP contributions and a JSON model file.
//
//   TrainData train = ..., valid = ...;             // dense rows, labels in {0, 1}
//   TrainParams p;                                  // binary:logistic, hist, auc
//   p.num_boost_round = 500;
//   p.early_stopping_rounds = 20;
//   ENGAGE_ASSIGN_OR_RETURN(Model m, Train(train, &valid, p));
//   ENGAGE_ASSIGN_OR_RETURN(std::vector<float> prob, m.Predict(valid.x));
//   ENGAGE_RETURN_IF_ERROR(m.Save(home.models() + "/churn.json"));
//
// The trained Model keeps only the trees up to the best validation round (the booster is sliced
// after early stopping), so every prediction, contribution and saved file agrees with
// best_iteration without callers passing iteration ranges around.
//
// Errors: bad shapes, NaN labels and bad hyperparameters (XGBoost's own complaint, such as an
// unknown objective, is kept in the message) are kInvalidArgument; failures inside XGBoost after
// the input was accepted are kInternal. XGBoost's error text (XGBGetLastError) is kept on one line,
// without its stack trace.
#pragma once

#include <xgboost/c_api.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engage/core/fs.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/ml/forest.h"

namespace engage::ml {

// Row-major dense matrix of float features; NaN marks a missing value (XGBoost learns a
// default direction for it at each split).
struct DenseMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;  // rows * cols, row-major

  DenseMatrix() = default;
  // A rows x cols matrix of NaN (all missing).
  DenseMatrix(int64_t r, int64_t c)
      : rows(r), cols(c), values(static_cast<size_t>(r * c), std::nanf("")) {}

  float& at(int64_t r, int64_t c) { return values[static_cast<size_t>(r * cols + c)]; }
  float at(int64_t r, int64_t c) const { return values[static_cast<size_t>(r * cols + c)]; }
  std::span<const float> Row(int64_t r) const {
    return {values.data() + r * cols, static_cast<size_t>(cols)};
  }

  // kInvalidArgument naming `what` (e.g. "training matrix") unless rows > 0, cols > 0 and
  // values.size() == rows * cols.
  Status Validate(std::string_view what) const;
};

// Features with one label (and optionally one weight) per row.
struct TrainData {
  DenseMatrix x;
  std::vector<float> labels;   // one per row, finite; {0, 1} for binary:logistic
  std::vector<float> weights;  // empty = every row weighs 1; else one per row, finite, >= 0
  // Optional names of the columns (unique, non-empty, without '[', ']' or '<' so the model file
  // also loads in XGBoost's Python package). Empty = "f0", "f1", ...
  std::vector<std::string> feature_names;

  // x.Validate plus the label/weight checks above; kInvalidArgument naming `what` and the row.
  Status Validate(std::string_view what) const;
};

// Hyperparameters, named as in XGBoost's documentation.
struct TrainParams {
  std::string objective = "binary:logistic";
  double eta = 0.1;
  int max_depth = 6;
  double min_child_weight = 1.0;
  double subsample = 1.0;
  double colsample_bytree = 1.0;
  double lambda = 1.0;  // L2 on leaf weights
  double alpha = 0.0;   // L1 on leaf weights
  double gamma = 0.0;   // minimum loss reduction to split
  std::string tree_method = "hist";
  int max_bin = 256;
  int nthread = 0;  // 0 = all cores; also used by the trained Model for prediction
  uint64_t seed = 0;
  int num_boost_round = 100;
  int early_stopping_rounds = 0;  // 0 = off; needs a validation set
  // Metric evaluated on the validation set each round and used for early stopping. auc, aucpr,
  // ndcg and map are maximised; anything else (logloss, error, rmse, ...) is minimised.
  // Empty = XGBoost's default for the objective.
  std::string eval_metric = "auc";
  // Any other XGBoost parameter, passed verbatim after the fields above (so a key here
  // overrides a field of the same name), e.g. {"scale_pos_weight", "4"}.
  std::vector<std::pair<std::string, std::string>> extra;

  Json ToJson() const;
  // Inverse of ToJson; keys that are absent keep their defaults. kInvalidArgument on a wrong type.
  static Result<TrainParams> FromJson(const Json& j);
};

// Called after every boosting round with the 0-based round and the validation metric
// (NaN when training without a validation set). Runs on the training thread.
using ProgressFn = std::function<void(int round, double valid_score)>;

// What happened during training. Saved in the model file, so a loaded Model has it too.
struct TrainSummary {
  int rounds_run = 0;       // boosting rounds performed (<= num_boost_round)
  int best_iteration = -1;  // 0-based round the Model stops at; last round without validation
  double best_score = std::numeric_limits<double>::quiet_NaN();  // validation metric there
  std::string metric;  // e.g. "auc"; empty without a validation set
  bool higher_is_better = true;
  bool stopped_early = false;
  std::vector<double> valid_curve;  // validation metric of each round

  Json ToJson() const;
};

// SHAP contributions: rows x (features + 1), row-major; the last column is the bias, and each
// row sums to the model's margin (log-odds for binary:logistic).
struct ContributionMatrix {
  int64_t rows = 0;
  int64_t cols = 0;  // number of features + 1
  std::vector<float> values;

  std::span<const float> Row(int64_t r) const {
    return {values.data() + r * cols, static_cast<size_t>(cols)};
  }
};

// One feature's part in a single prediction.
struct Reason {
  std::string feature;
  int64_t index = 0;       // column of the feature
  float contribution = 0;  // in margin units; > 0 pushes the score up, < 0 down
};

// Move-only owner of a DMatrixHandle.
class DMatrix {
 public:
  DMatrix() = default;
  DMatrix(DMatrix&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  DMatrix& operator=(DMatrix&& o) noexcept;
  ~DMatrix();

  // Copies `x` into XGBoost's own storage (the caller may free it afterwards).
  // kInvalidArgument if `x` fails Validate.
  static Result<DMatrix> FromDense(const DenseMatrix& x, int nthread);
  // FromDense plus labels and weights; kInvalidArgument if `d` fails Validate.
  static Result<DMatrix> FromTrainData(const TrainData& d, int nthread);
  // An empty proxy that an external-memory iterator fills batch by batch.
  static Result<DMatrix> CreateProxy();
  // Adopts a handle returned by XGBoost; takes ownership.
  static DMatrix Adopt(DMatrixHandle h) { return DMatrix(h); }

  // `field` is "label", "weight" or "base_margin".
  Status SetFloatInfo(const char* field, std::span<const float> values);
  Result<int64_t> NumRows() const;
  Result<int64_t> NumCols() const;
  DMatrixHandle get() const { return h_; }

 private:
  explicit DMatrix(DMatrixHandle h) : h_(h) {}
  DMatrixHandle h_ = nullptr;
};

// Move-only owner of a BoosterHandle.
class Booster {
 public:
  Booster() = default;
  Booster(Booster&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Booster& operator=(Booster&& o) noexcept;
  ~Booster();

  // A new booster caching predictions for `cache` (the training and validation matrices).
  static Result<Booster> Create(std::span<const DMatrixHandle> cache);
  // Adopts a handle returned by XGBoost (e.g. from XGBoosterSlice); takes ownership.
  static Booster Adopt(BoosterHandle h) { return Booster(h); }

  // kInvalidArgument naming the parameter if XGBoost rejects it.
  Status SetParam(std::string_view name, std::string_view value);
  BoosterHandle get() const { return h_; }

 private:
  explicit Booster(BoosterHandle h) : h_(h) {}
  BoosterHandle h_ = nullptr;
};

// A trained binary classifier.
//
// Predict and PredictMargin run on a compiled Forest (engage/ml/forest.h: the same numbers as
// XGBoost's predictor, bit for bit, and faster), built from the model's JSON on the first call.
// A model the Forest does not support (another booster or objective, categorical splits) is
// predicted by XGBoost's in-place prediction instead.
//
// Thread-safety: all const methods may be called concurrently. The Forest is built once (under
// std::call_once) and is immutable afterwards. XGBoost's in-place prediction, the fallback, is
// documented as safe and lock-free when only in-place prediction runs concurrently (its output
// buffers are per thread and per booster, and the one-time configuration is a double-checked
// lock); it takes a reader lock. Contributions, Save and ToJsonText go through XGBoost's DMatrix
// prediction cache or serializer, which are not safe alongside other calls, so they take the lock
// exclusively. ml_test checks concurrent Predict calls give the same numbers as one thread.
class Model {
 public:
  Model(Model&&) noexcept = default;
  Model& operator=(Model&&) noexcept = default;
  ~Model() = default;

  // Reads a model written by Save (or any XGBoost JSON model file). kNotFound if the file is
  // missing, kInvalidArgument naming the file if XGBoost cannot read it. Prediction uses
  // `nthread` threads (0 = all cores).
  static Result<Model> Load(FileSystem& fs, const std::string& path, int nthread = 0);
  static Result<Model> Load(const std::string& path, int nthread = 0);
  // The same from the text of a model file; `what` names its origin in errors.
  static Result<Model> FromJsonText(std::string_view text, int nthread = 0,
                                    std::string_view what = "model");

  // Writes the model as XGBoost JSON atomically (temp file, fsync, rename): a reader sees the
  // old file or the whole new one. kInternal if XGBoost fails to serialise; fs errors as is.
  Status Save(FileSystem& fs, const std::string& path) const;
  Status Save(const std::string& path) const;
  // The JSON text Save writes.
  Result<std::string> ToJsonText() const;

  // Probabilities, one per row of `x` (empty for 0 rows). kInvalidArgument if x.cols differs from
  // NumFeatures() or values.size() != rows * cols.
  Result<std::vector<float>> Predict(const DenseMatrix& x) const;
  // Margins (log-odds for binary:logistic), one per row.
  Result<std::vector<float>> PredictMargin(const DenseMatrix& x) const;
  // Exact TreeSHAP contributions; errors as Predict.
  Result<ContributionMatrix> Contributions(const DenseMatrix& x) const;

  int64_t NumFeatures() const { return num_features_; }
  // Names given at training, or "f0", "f1", ... if none were.
  const std::vector<std::string>& FeatureNames() const { return feature_names_; }
  int BestIteration() const { return summary_.best_iteration; }
  const TrainSummary& summary() const { return summary_; }
  const TrainParams& params() const { return params_; }
  // For the model card: {"params": ..., "training": ..., "num_features", "feature_names",
  // "xgboost_version"}; "params" and "training" are null for a model Engage did not train.
  Json Params() const;

  // The underlying booster, for calls this wrapper does not cover. Not synchronised, and a change
  // to the trees through it is not seen by Predict once the Forest is built.
  BoosterHandle raw() const { return booster_.get(); }

  // Ok if Predict runs on the compiled Forest (building it if needed), else why it cannot.
  Status ForestStatusForTesting() const;

 private:
  friend class ModelBuilder;
  // The compiled Forest, built on the first Predict; a pointer keeps Model movable.
  struct CompiledForest {
    std::once_flag once;
    std::optional<Forest> forest;  // empty if the model cannot be compiled:
    Status status;                 // why not
  };

  Model()
      : mu_(std::make_unique<std::shared_mutex>()), compiled_(std::make_unique<CompiledForest>()) {}
  // The Forest, or nullptr when XGBoost has to predict.
  const Forest* GetForest() const;
  // type: 0 = the objective's prediction, 1 = margin (XGBoost's prediction types).
  Result<std::vector<float>> PredictRows(const DenseMatrix& x, int type) const;

  Booster booster_;
  int nthread_ = 0;
  bool has_record_ = true;  // false for an XGBoost model not written by Engage (no params)
  int64_t num_features_ = 0;
  std::vector<std::string> feature_names_;
  TrainParams params_;
  TrainSummary summary_;
  std::unique_ptr<std::shared_mutex> mu_;  // see the class comment; a pointer keeps Model movable
  std::unique_ptr<CompiledForest> compiled_;
};

// Boosts round by round on `train`, evaluating `valid` (may be null) after each round, stopping
// after params.early_stopping_rounds rounds without a strict improvement of params.eval_metric,
// and returns the model cut at the best round. Deterministic for a fixed seed and nthread.
// kInvalidArgument for bad data (see TrainData::Validate; `valid` must have train's columns),
// early stopping without a validation set, a NaN validation metric (e.g. AUC of a single-class
// validation set) or parameters XGBoost rejects.
Result<Model> Train(const TrainData& train, const TrainData* valid, const TrainParams& params,
                    const ProgressFn& progress = nullptr);

// Training data read in batches, for data larger than memory.
struct BatchSource {
  int64_t cols = 0;                        // every batch must have this many columns
  std::vector<std::string> feature_names;  // optional, as TrainData::feature_names
  // Rewinds to the first batch; it must restart the same sequence of rows. XGBoost 1.7 calls it
  // before and after its one pass over the batches (then it trains from its page cache), but
  // the iterator protocol allows further passes.
  std::function<Status()> reset;
  // The next batch (rows with labels and optional weights), or std::nullopt at the end.
  std::function<Result<std::optional<TrainData>>()> next;
};

// As Train, but XGBoost pulls the training rows from `source` batch by batch and keeps them in a
// page cache under `cache_dir` (created if missing; its own subdirectory is removed afterwards),
// so only one batch is in memory at a time. The validation set stays in memory. Errors from
// `source` are returned as they are, with the batch number added as context.
Result<Model> TrainExternal(const BatchSource& source, const TrainData* valid,
                            const TrainParams& params, const std::string& cache_dir,
                            const ProgressFn& progress = nullptr);

// The `k` features with the largest |contribution| in one row of ContributionMatrix (the bias
// column, if present, is skipped; zero contributions are never reasons), largest first.
// kInvalidArgument if the row has neither names.size() nor names.size() + 1 values, or k < 0.
Result<std::vector<Reason>> TopReasons(std::span<const float> contribs,
                                       const std::vector<std::string>& feature_names, int k = 3);

// "1.7.4": the XGBoost library linked in.
std::string XgboostVersion();

}  // namespace engage::ml
