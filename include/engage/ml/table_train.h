// Training a binary classifier on a plain labelled lake table: one row per example, one column
// holding the label, every other column a candidate feature (Telco churn, Online Shoppers).
//
//   TableTrainRequest req;
//   req.table = "telco";
//   req.label_column = "churn";         // "Yes"/"No"
//   req.id_column = "customer_id";      // not a feature; decides each row's split
//   ENGAGE_ASSIGN_OR_RETURN(TableTrainResult r, TrainOnTable(engine, req));
//   fmt::print("test AUC {:.4f}\n", r.test.roc_auc);
//   ENGAGE_RETURN_IF_ERROR(r.model.Save(path));
//
// The table is read with one metered query (source "train"). Features are encoded from the data,
// column by column, looking only at the rows outside the test split (so the test split cannot
// shape its own encoding):
//   - numeric columns (integers, floats, decimals): the value; NULL -> NaN (missing);
//   - booleans: 1 / 0; NULL -> NaN;
//   - dates and timestamps: days since 1970-01-01 (fractional for timestamps); NULL -> NaN;
//   - text: if at least 95% of the non-empty values parse as numbers (Telco's TotalCharges has
//     blanks), numeric, with blank or unparsable text -> NaN. Otherwise one-hot: one 0/1 feature
//     "column=value" per value among the 50 most frequent (ties broken by value), in value
//     order; other values and NULL are all zeros. A text column whose values are all distinct (an
//     id or free text, at least 20 of them) is skipped rather than one-hot encoded;
//   - other types (lists, structs, blobs, intervals, TIMESTAMP WITH TIME ZONE): skipped.
// The label, the id column and the excluded columns are never features, nor is the lake's `dt`
// partition column. The encoding is recorded (TableEncoding) so that it can be applied to new
// rows later (TableEncoding::Encode).
//
// Labels: integer or floating 0/1, booleans, or text "1"/"0", "yes"/"no", "true"/"false" (any
// case, surrounding blanks ignored). Rows whose label is NULL are left out (and counted); any
// other value is kInvalidArgument naming the column and the value.
//
// Split: with an id column, each row's split follows from a hash of (seed, id text), so a row
// always lands in the same split whatever else is in the table; without one, a seeded shuffle of
// the row order. The test split takes `test_fraction` of the rows; `valid_fraction` of the rest is
// the validation set used for early stopping, and the remainder is the training set. Both are
// deterministic for a fixed seed and table content.
//
// Thread-safety: TrainOnTable uses the QueryEngine, which serves one thread at a time. The other
// functions are pure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/lake/duck.h"
#include "engage/ml/metrics.h"
#include "engage/ml/xgb.h"
#include "engage/sql/query.h"

namespace engage::ml {

// Hyperparameters suited to small and medium tabular data: eta 0.05, max_depth 4, subsample and
// colsample_bytree 0.8, up to 1000 rounds with early stopping after 50 rounds without a better
// validation log-loss.
TrainParams DefaultTableTrainParams();

// Sets one hyperparameter from text, as `engage train --param key=value` does: the fields of
// TrainParams by their XGBoost names (eta/learning_rate, max_depth, subsample, lambda/reg_lambda,
// alpha/reg_alpha, num_boost_round, early_stopping_rounds, eval_metric, ...); the other
// parameters of XGBoost's tree boosters and learning task (scale_pos_weight, max_delta_step,
// grow_policy, ...) go to XGBoost verbatim (TrainParams::extra). kInvalidArgument for a key
// that is neither (a misspelt key would otherwise be silently ignored by XGBoost) or a value
// that is not a number where a number is needed.
Status SetTrainParam(TrainParams& params, const std::string& key, const std::string& value);
// `--param key=value` flags onto `params` (SetTrainParam each); kInvalidArgument for a flag that
// is not key=value, and for seed (the commands take --seed).
Status ApplyTrainParams(const std::vector<std::string>& flags, TrainParams& params);

struct TableTrainRequest {
  std::string table;
  std::string label_column;
  std::string id_column;             // optional; never a feature
  std::vector<std::string> exclude;  // columns that are not features
  double test_fraction = 0.2;        // in (0, 1)
  double valid_fraction = 0.2;       // share of the non-test rows; in [0, 1); 0 = no early stop
  uint64_t seed = 42;                // the split and XGBoost's sampling (replaces params.seed)
  TrainParams params = DefaultTableTrainParams();
  // Test rows (at most) whose SHAP contributions give the feature importance; 0 = none.
  int64_t importance_rows = 5000;
};

enum class FeatureKind {
  kNumeric,      // numeric column, as is
  kBoolean,      // 1 / 0
  kNumericText,  // text parsed as a number; blank or unparsable -> NaN
  kOneHot,       // one 0/1 feature per value in `values`
  kDays,         // date or timestamp: days since 1970-01-01
};

// "numeric", "boolean", "numeric_text", "one_hot", "days".
std::string_view FeatureKindName(FeatureKind k);

// How one source column becomes features.
struct ColumnEncoding {
  std::string column;
  FeatureKind kind = FeatureKind::kNumeric;
  std::vector<std::string> values;  // kOneHot: the values with a feature, in byte order
  int64_t first_feature = 0;        // index of its first feature in the matrix
  int64_t num_features = 1;         // kOneHot: values.size(); else 1
};

// The encoding of a table's columns into a feature matrix, decided once from training rows.
struct TableEncoding {
  std::vector<ColumnEncoding> columns;     // in feature order
  std::vector<std::string> feature_names;  // "tenure", "contract=Two year", ...
  // Columns read but not used, with the reason ("all values distinct", "type LIST", ...).
  std::vector<std::pair<std::string, std::string>> skipped;

  // {"features": [...names], "columns": [{"column", "kind", "values"?, "first_feature",
  //  "num_features"}], "skipped": [{"column", "reason"}]}
  Json ToJson() const;
  // Inverse of ToJson; kInvalidArgument for a malformed document.
  static Result<TableEncoding> FromJson(const Json& j);

  // The feature matrix of `rows`, which must have a column of each encoded column's name (others
  // are ignored). Values are read by the column's kind, whatever their SQL type (text holding
  // numbers, dates or booleans is parsed). kNotFound naming a missing column; kInvalidArgument
  // for a TIMESTAMP WITH TIME ZONE column (cast it to TIMESTAMP).
  Result<DenseMatrix> Encode(lake::DuckResult& rows) const;
};

struct FeatureImportance {
  std::string feature;
  double mean_abs_shap = 0;  // mean |SHAP contribution| on the test split, in log-odds
};

struct TableTrainResult {
  explicit TableTrainResult(Model m) : model(std::move(m)) {}

  Model model;
  EvalReport test;  // on the held-out test split
  std::string table;
  std::string label_column;
  std::string id_column;
  int64_t rows = 0;             // rows read
  int64_t rows_unlabelled = 0;  // left out: NULL label
  int64_t rows_train = 0;
  int64_t rows_valid = 0;
  int64_t rows_test = 0;
  TableEncoding encoding;
  std::vector<FeatureImportance> importance;  // every feature, largest first
  double elapsed_s = 0;

  const std::vector<std::string>& feature_names() const { return encoding.feature_names; }
  const TrainSummary& summary() const { return model.summary(); }

  // {"table", "label", "id", "auc", "pr_auc", "log_loss", "brier", "base_rate", "rows",
  //  "rows_unlabelled", "rows_train", "rows_valid", "rows_test", "features", "rounds",
  //  "best_iteration", "best_score", "metric", "stopped_early", "params",
  //  "top_features": [{"feature", "mean_abs_shap"}] (at most `top`), "encoding", "test": the
  //  full EvalReport, "elapsed_s"}; NaN metrics are null.
  Json ToJson(int top = 10) const;
};

// The fingerprint of training `req` on the lake now (ml::Fingerprint of the table's files and
// columns, the request and the parameters but not their thread count): two trainings with the
// same fingerprint make the same model. Errors from the catalog.
Result<std::string> TableTrainFingerprint(sql::QueryEngine& engine, const TableTrainRequest& req);

// The model card of a table training for the registry: kind "table", the fingerprint, params,
// features, the data (table, label, id, excluded columns, split fractions, seed, rows), metrics
// ("valid": the held-out test split's auc, pr_auc, log_loss, brier, base_rate, rows, which the
// promotion gate compares; "report": the full EvalReport), training (rows per split, rounds,
// seconds), the encoding (to apply the model to new rows) and the top features.
Json TableTrainCard(const TableTrainRequest& req, const TableTrainResult& r,
                    const std::string& fingerprint);

enum class SplitPart { kTrain, kValid, kTest };

// The split of a row with id text `id` (as DuckDB prints it): a function of (seed, id) only, so a
// row keeps its split when other rows come and go. About `test_fraction` of ids are kTest and
// `valid_fraction` of the others kValid.
SplitPart SplitOfId(std::string_view id, uint64_t seed, double test_fraction,
                    double valid_fraction);

// Reads `req.table`, encodes it, splits it, trains with early stopping on the validation split,
// and evaluates on the test split. `progress` sees every boosting round.
// Errors: kNotFound for an unknown table or column (label, id, excluded); kInvalidArgument for a
// bad label value, fractions out of range, the label also used as id or excluded, no feature
// left, or parameters XGBoost rejects; kFailedPrecondition when the table has no labelled rows,
// only one class, or a split too small to train or evaluate on.
Result<TableTrainResult> TrainOnTable(sql::QueryEngine& engine, const TableTrainRequest& req,
                                      const ProgressFn& progress = nullptr);

}  // namespace engage::ml
