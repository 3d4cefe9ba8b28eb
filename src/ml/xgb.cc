#include "engage/ml/xgb.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <unordered_set>

namespace engage::ml {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Key of the booster attribute holding Engage's training record (params and summary), so a
// saved model carries its own model-card facts.
constexpr char kRecordAttr[] = "engage_training";

// XGBoost's last error on this thread, without the "[hh:mm:ss] src/file.cc:12: " prefix and the
// stack trace, which mean nothing to a user of the CLI.
std::string LastError() {
  const char* e = XGBGetLastError();
  std::string m = e ? e : "";
  if (auto st = m.find("Stack trace:"); st != std::string::npos) m.resize(st);
  if (!m.empty() && m[0] == '[') {
    auto close = m.find("] ");
    if (close != std::string::npos) {
      auto colon = m.find(": ", close + 2);
      if (colon != std::string::npos) {
        std::string_view loc(m.data() + close + 2, colon - close - 2);
        if (loc.find(".cc:") != std::string_view::npos ||
            loc.find(".h:") != std::string_view::npos ||
            loc.find(".cu:") != std::string_view::npos) {
          m.erase(0, colon + 2);
        }
      }
    }
  }
  // One line, so the message reads well in CLI output and HTTP error bodies.
  std::string out;
  size_t pos = 0;
  while (pos < m.size()) {
    size_t end = m.find('\n', pos);
    if (end == std::string::npos) end = m.size();
    std::string_view line(m.data() + pos, end - pos);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (!line.empty()) {
      if (!out.empty()) out += "; ";
      out += line;
    }
    pos = end + 1;
  }
  return out.empty() ? "unknown XGBoost error" : out;
}

Status XgbError(StatusCode code, std::string_view what) {
  return Status(code, fmt::format("{}: {}", what, LastError()));
}

// __array_interface__ of a row-major float32 matrix, as XGBoost's dense entry points take it.
std::string DenseArrayInterface(const float* data, int64_t rows, int64_t cols) {
  return fmt::format(R"({{"data": [{}, true], "shape": [{}, {}], "typestr": "<f4", "version": 3}})",
                     reinterpret_cast<uintptr_t>(data), rows, cols);
}

// The parameter and value to pass for a double: shortest text that reads back the same.
std::string Num(double v) { return fmt::format("{}", v); }

Status ValidateFeatureNames(const std::vector<std::string>& names, int64_t cols,
                            std::string_view what) {
  if (names.empty()) return Status::Ok();
  if (static_cast<int64_t>(names.size()) != cols) {
    return InvalidArgumentError(
        fmt::format("{} has {} feature names for {} columns", what, names.size(), cols));
  }
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    if (n.empty()) {
      return InvalidArgumentError(fmt::format("{}: feature name {} is empty", what, i));
    }
    if (n.find_first_of("[]<") != std::string::npos) {
      return InvalidArgumentError(
          fmt::format("{}: feature name '{}' contains '[', ']' or '<'", what, n));
    }
    if (!seen.insert(n).second) {
      return InvalidArgumentError(fmt::format("{}: feature name '{}' is repeated", what, n));
    }
  }
  return Status::Ok();
}

std::vector<std::string> DefaultFeatureNames(int64_t cols) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols; ++i) out.push_back(fmt::format("f{}", i));
  return out;
}

// Metrics where a larger value is better; everything else (logloss, error, rmse, ...) is a loss.
bool HigherIsBetter(std::string_view metric) {
  std::string_view base = metric.substr(0, metric.find('@'));
  while (!base.empty() && base.back() == '-') base.remove_suffix(1);
  return base == "auc" || base == "aucpr" || base == "ndcg" || base == "map" || base == "pre";
}

struct EvalValue {
  std::string metric;
  double value = kNaN;
};

// Finds "valid-<metric>:<value>" in XGBoost's evaluation line, e.g. "[3]\tvalid-auc:0.87".
// `want` empty takes the first validation metric.
Result<EvalValue> ParseEval(std::string_view text, std::string_view want) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\t', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view tok = text.substr(pos, end - pos);
    pos = end + 1;
    size_t colon = tok.rfind(':');
    if (!tok.starts_with("valid-") || colon == std::string_view::npos) continue;
    std::string_view metric = tok.substr(6, colon - 6);
    if (!want.empty() && metric != want) continue;
    std::string_view num = tok.substr(colon + 1);
    while (!num.empty() && std::isspace(static_cast<unsigned char>(num.back()))) {
      num.remove_suffix(1);
    }
    EvalValue ev{std::string(metric), kNaN};
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), ev.value);
    if (ec != std::errc() || ptr != num.data() + num.size()) {
      return InternalError(
          fmt::format("cannot read the value of '{}' in XGBoost's evaluation '{}'", metric, text));
    }
    return ev;
  }
  return InternalError(fmt::format("no validation metric '{}' in XGBoost's evaluation '{}'",
                                   want.empty() ? "(any)" : want, text));
}

Json NumOrNull(double v) { return std::isnan(v) ? Json(nullptr) : Json(v); }
double NumOrNaN(const Json& j) { return j.is_number() ? j.get<double>() : kNaN; }

Result<TrainSummary> SummaryFromJson(const Json& j) {
  try {
    TrainSummary s;
    s.rounds_run = j.value("rounds_run", 0);
    s.best_iteration = j.value("best_iteration", -1);
    if (j.contains("best_score")) s.best_score = NumOrNaN(j["best_score"]);
    s.metric = j.value("metric", std::string());
    s.higher_is_better = j.value("higher_is_better", true);
    s.stopped_early = j.value("stopped_early", false);
    if (j.contains("valid_curve")) {
      for (const auto& v : j["valid_curve"]) s.valid_curve.push_back(NumOrNaN(v));
    }
    return s;
  } catch (const std::exception& e) {
    return InvalidArgumentError(fmt::format("bad training summary: {}", e.what()));
  }
}

Status SetTrainParams(Booster& b, const TrainParams& p) {
  std::vector<std::pair<std::string, std::string>> kv = {
      {"objective", p.objective},
      {"eta", Num(p.eta)},
      {"max_depth", std::to_string(p.max_depth)},
      {"min_child_weight", Num(p.min_child_weight)},
      {"subsample", Num(p.subsample)},
      {"colsample_bytree", Num(p.colsample_bytree)},
      {"lambda", Num(p.lambda)},
      {"alpha", Num(p.alpha)},
      {"gamma", Num(p.gamma)},
      {"tree_method", p.tree_method},
      {"max_bin", std::to_string(p.max_bin)},
      {"nthread", std::to_string(p.nthread)},
      {"seed", std::to_string(p.seed)},
  };
  if (!p.eval_metric.empty()) kv.emplace_back("eval_metric", p.eval_metric);
  kv.insert(kv.end(), p.extra.begin(), p.extra.end());
  for (const auto& [k, v] : kv) ENGAGE_RETURN_IF_ERROR(b.SetParam(k, v));
  return Status::Ok();
}

Status ValidateParams(const TrainParams& p, bool has_valid) {
  if (p.num_boost_round < 1) {
    return InvalidArgumentError(
        fmt::format("num_boost_round must be at least 1, got {}", p.num_boost_round));
  }
  if (p.early_stopping_rounds < 0) {
    return InvalidArgumentError(
        fmt::format("early_stopping_rounds must be >= 0, got {}", p.early_stopping_rounds));
  }
  if (p.early_stopping_rounds > 0 && !has_valid) {
    return InvalidArgumentError(
        fmt::format("early_stopping_rounds = {} needs a validation set", p.early_stopping_rounds));
  }
  if (p.nthread < 0) {
    return InvalidArgumentError(fmt::format("nthread must be >= 0, got {}", p.nthread));
  }
  return Status::Ok();
}

}  // namespace

// Builds Models; a friend of Model so construction stays in one place.
class ModelBuilder {
 public:
  // Wraps a trained or loaded booster: sets feature names, the training record and the
  // prediction thread count on it, and caches the facts Model's accessors return.
  static Result<Model> Make(Booster booster, int nthread, std::vector<std::string> names,
                            std::optional<std::pair<TrainParams, TrainSummary>> record) {
    Model m;
    m.booster_ = std::move(booster);
    BoosterHandle h = m.booster_.get();
    bst_ulong nf = 0;
    if (XGBoosterGetNumFeature(h, &nf) != 0) {
      return XgbError(StatusCode::kInternal, "reading the model's number of features");
    }
    m.num_features_ = static_cast<int64_t>(nf);
    if (names.empty()) names = DefaultFeatureNames(m.num_features_);
    ENGAGE_RETURN_IF_ERROR(ValidateFeatureNames(names, m.num_features_, "model"));
    std::vector<const char*> ptrs;
    for (const auto& n : names) ptrs.push_back(n.c_str());
    if (XGBoosterSetStrFeatureInfo(h, "feature_name", ptrs.data(), ptrs.size()) != 0) {
      return XgbError(StatusCode::kInternal, "storing feature names in the model");
    }
    m.feature_names_ = std::move(names);
    if (record) {
      m.params_ = std::move(record->first);
      m.summary_ = std::move(record->second);
      Json rec = {{"params", m.params_.ToJson()}, {"summary", m.summary_.ToJson()}};
      std::string text = DumpJson(rec);
      std::string best_it = std::to_string(m.summary_.best_iteration);
      std::string best_score = Num(m.summary_.best_score);
      // best_iteration/best_score are the attributes XGBoost's Python package reads.
      if (XGBoosterSetAttr(h, kRecordAttr, text.c_str()) != 0 ||
          XGBoosterSetAttr(h, "best_iteration", best_it.c_str()) != 0 ||
          XGBoosterSetAttr(h, "best_score", best_score.c_str()) != 0) {
        return XgbError(StatusCode::kInternal, "storing the training record in the model");
      }
    } else {
      m.has_record_ = false;
      int rounds = 0;
      if (XGBoosterBoostedRounds(h, &rounds) != 0) {
        return XgbError(StatusCode::kInternal, "reading the model's number of rounds");
      }
      m.summary_.rounds_run = rounds;
      m.summary_.best_iteration = rounds - 1;
    }
    m.nthread_ = nthread;
    ENGAGE_RETURN_IF_ERROR(m.booster_.SetParam("nthread", std::to_string(nthread)));
    return m;
  }
};

namespace {

// Boosts on `dtrain` (already built, in memory or external) and returns the model cut at the
// best validation round.
Result<Model> Boost(const DMatrix& dtrain, int64_t cols, std::vector<std::string> names,
                    const TrainData* valid, const TrainParams& params, const ProgressFn& progress) {
  DMatrix dvalid;
  std::vector<DMatrixHandle> cache = {dtrain.get()};
  if (valid) {
    ENGAGE_RETURN_IF_ERROR(valid->Validate("validation set"));
    if (valid->x.cols != cols) {
      return InvalidArgumentError(fmt::format(
          "validation set has {} columns but the training data has {}", valid->x.cols, cols));
    }
    ENGAGE_ASSIGN_OR_RETURN(dvalid, DMatrix::FromTrainData(*valid, params.nthread));
    cache.push_back(dvalid.get());
  }
  ENGAGE_ASSIGN_OR_RETURN(Booster booster, Booster::Create(cache));
  ENGAGE_RETURN_IF_ERROR(SetTrainParams(booster, params));

  TrainSummary sum;
  for (int round = 0; round < params.num_boost_round; ++round) {
    if (XGBoosterUpdateOneIter(booster.get(), round, dtrain.get()) != 0) {
      // The first round is where XGBoost checks parameters and labels.
      return XgbError(round == 0 ? StatusCode::kInvalidArgument : StatusCode::kInternal,
                      fmt::format("boosting round {}", round));
    }
    sum.rounds_run = round + 1;
    double score = kNaN;
    if (valid) {
      DMatrixHandle dm[] = {dvalid.get()};
      const char* dnames[] = {"valid"};
      const char* out = nullptr;
      if (XGBoosterEvalOneIter(booster.get(), round, dm, dnames, 1, &out) != 0) {
        return XgbError(round == 0 ? StatusCode::kInvalidArgument : StatusCode::kInternal,
                        fmt::format("evaluating the validation set after round {}", round));
      }
      ENGAGE_ASSIGN_OR_RETURN(EvalValue ev, ParseEval(out ? out : "", params.eval_metric));
      if (std::isnan(ev.value)) {
        return InvalidArgumentError(fmt::format(
            "validation metric '{}' is NaN after round {} (AUC needs both classes in the "
            "validation set)",
            ev.metric, round));
      }
      score = ev.value;
      if (round == 0) {
        sum.metric = ev.metric;
        sum.higher_is_better = HigherIsBetter(ev.metric);
      }
      sum.valid_curve.push_back(score);
      bool better =
          round == 0 || (sum.higher_is_better ? score > sum.best_score : score < sum.best_score);
      if (better) {
        sum.best_score = score;
        sum.best_iteration = round;
      }
    } else {
      sum.best_iteration = round;
    }
    if (progress) progress(round, score);
    if (params.early_stopping_rounds > 0 &&
        round - sum.best_iteration >= params.early_stopping_rounds) {
      sum.stopped_early = round + 1 < params.num_boost_round;
      break;
    }
  }

  if (sum.best_iteration + 1 < sum.rounds_run) {
    BoosterHandle sliced = nullptr;
    int rc = XGBoosterSlice(booster.get(), 0, sum.best_iteration + 1, 1, &sliced);
    if (rc != 0) {
      return XgbError(StatusCode::kInternal, fmt::format("keeping rounds 0..{} of {}",
                                                         sum.best_iteration, sum.rounds_run));
    }
    booster = Booster::Adopt(sliced);
  }
  return ModelBuilder::Make(std::move(booster), params.nthread, std::move(names),
                            std::make_pair(params, std::move(sum)));
}

// State shared with XGBoost's external-memory callbacks. The current batch lives here until the
// next call because XGBoost reads it through the proxy without copying.
struct BatchIter {
  const BatchSource* source = nullptr;
  DMatrixHandle proxy = nullptr;
  TrainData batch;
  Status error;
  int64_t batch_no = 0;  // within the current pass
};

int NextBatch(DataIterHandle handle) noexcept {
  auto* it = static_cast<BatchIter*>(handle);
  if (!it->error.ok()) return 0;
  std::string what = fmt::format("batch {}", it->batch_no);
  try {
    auto r = it->source->next();
    if (!r.ok()) {
      it->error = r.status().WithContext(what);
      return 0;
    }
    if (!r->has_value()) return 0;
    it->batch = std::move(**r);
    const TrainData& b = it->batch;
    Status s = b.Validate(what);
    if (s.ok() && b.x.cols != it->source->cols) {
      s = InvalidArgumentError(
          fmt::format("{} has {} columns, expected {}", what, b.x.cols, it->source->cols));
    }
    if (!s.ok()) {
      it->error = s;
      return 0;
    }
    std::string ai = DenseArrayInterface(b.x.values.data(), b.x.rows, b.x.cols);
    if (XGProxyDMatrixSetDataDense(it->proxy, ai.c_str()) != 0 ||
        XGDMatrixSetFloatInfo(it->proxy, "label", b.labels.data(), b.labels.size()) != 0 ||
        (!b.weights.empty() &&
         XGDMatrixSetFloatInfo(it->proxy, "weight", b.weights.data(), b.weights.size()) != 0)) {
      it->error = XgbError(StatusCode::kInternal, fmt::format("passing {} to XGBoost", what));
      return 0;
    }
    ++it->batch_no;
    return 1;
  } catch (const std::exception& e) {
    it->error = InternalError(fmt::format("{}: {}", what, e.what()));
    return 0;
  }
}

void ResetBatches(DataIterHandle handle) noexcept {
  auto* it = static_cast<BatchIter*>(handle);
  it->batch_no = 0;
  if (!it->error.ok()) return;
  try {
    Status s = it->source->reset();
    if (!s.ok()) it->error = s.WithContext("rewinding the batch source");
  } catch (const std::exception& e) {
    it->error = InternalError(fmt::format("rewinding the batch source: {}", e.what()));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Data

Status DenseMatrix::Validate(std::string_view what) const {
  if (rows <= 0) return InvalidArgumentError(fmt::format("{} is empty (0 rows)", what));
  if (cols <= 0) return InvalidArgumentError(fmt::format("{} has no columns", what));
  if (static_cast<int64_t>(values.size()) != rows * cols) {
    return InvalidArgumentError(fmt::format("{} has {} values but rows * cols = {} * {} = {}", what,
                                            values.size(), rows, cols, rows * cols));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isinf(values[i])) {
      return InvalidArgumentError(fmt::format("{}: row {} column {} is infinite", what,
                                              static_cast<int64_t>(i) / cols,
                                              static_cast<int64_t>(i) % cols));
    }
  }
  return Status::Ok();
}

Status TrainData::Validate(std::string_view what) const {
  ENGAGE_RETURN_IF_ERROR(x.Validate(what));
  if (static_cast<int64_t>(labels.size()) != x.rows) {
    return InvalidArgumentError(
        fmt::format("{} has {} labels for {} rows", what, labels.size(), x.rows));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!std::isfinite(labels[i])) {
      return InvalidArgumentError(fmt::format(
          "{}: label of row {} is {} (labels must be finite numbers)", what, i, labels[i]));
    }
  }
  if (!weights.empty()) {
    if (static_cast<int64_t>(weights.size()) != x.rows) {
      return InvalidArgumentError(
          fmt::format("{} has {} weights for {} rows", what, weights.size(), x.rows));
    }
    for (size_t i = 0; i < weights.size(); ++i) {
      if (!std::isfinite(weights[i]) || weights[i] < 0) {
        return InvalidArgumentError(fmt::format(
            "{}: weight of row {} is {} (weights must be finite and >= 0)", what, i, weights[i]));
      }
    }
  }
  return ValidateFeatureNames(feature_names, x.cols, what);
}

Json TrainParams::ToJson() const {
  Json extras = Json::array();
  for (const auto& [k, v] : extra) extras.push_back(Json::array({k, v}));
  return Json{{"objective", objective},
              {"eta", eta},
              {"max_depth", max_depth},
              {"min_child_weight", min_child_weight},
              {"subsample", subsample},
              {"colsample_bytree", colsample_bytree},
              {"lambda", lambda},
              {"alpha", alpha},
              {"gamma", gamma},
              {"tree_method", tree_method},
              {"max_bin", max_bin},
              {"nthread", nthread},
              {"seed", seed},
              {"num_boost_round", num_boost_round},
              {"early_stopping_rounds", early_stopping_rounds},
              {"eval_metric", eval_metric},
              {"extra", std::move(extras)}};
}

Result<TrainParams> TrainParams::FromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgumentError("training params must be a JSON object");
  TrainParams p;
  try {
    p.objective = j.value("objective", p.objective);
    p.eta = j.value("eta", p.eta);
    p.max_depth = j.value("max_depth", p.max_depth);
    p.min_child_weight = j.value("min_child_weight", p.min_child_weight);
    p.subsample = j.value("subsample", p.subsample);
    p.colsample_bytree = j.value("colsample_bytree", p.colsample_bytree);
    p.lambda = j.value("lambda", p.lambda);
    p.alpha = j.value("alpha", p.alpha);
    p.gamma = j.value("gamma", p.gamma);
    p.tree_method = j.value("tree_method", p.tree_method);
    p.max_bin = j.value("max_bin", p.max_bin);
    p.nthread = j.value("nthread", p.nthread);
    p.seed = j.value("seed", p.seed);
    p.num_boost_round = j.value("num_boost_round", p.num_boost_round);
    p.early_stopping_rounds = j.value("early_stopping_rounds", p.early_stopping_rounds);
    p.eval_metric = j.value("eval_metric", p.eval_metric);
    if (j.contains("extra")) {
      for (const auto& kv : j.at("extra")) {
        p.extra.emplace_back(kv.at(0).get<std::string>(), kv.at(1).get<std::string>());
      }
    }
  } catch (const std::exception& e) {
    return InvalidArgumentError(fmt::format("bad training params: {}", e.what()));
  }
  return p;
}

Json TrainSummary::ToJson() const {
  Json curve = Json::array();
  for (double v : valid_curve) curve.push_back(NumOrNull(v));
  return Json{{"rounds_run", rounds_run},
              {"best_iteration", best_iteration},
              {"best_score", NumOrNull(best_score)},
              {"metric", metric},
              {"higher_is_better", higher_is_better},
              {"stopped_early", stopped_early},
              {"valid_curve", std::move(curve)}};
}

// ---------------------------------------------------------------------------------------------
// Handles

DMatrix& DMatrix::operator=(DMatrix&& o) noexcept {
  if (this != &o) {
    if (h_) XGDMatrixFree(h_);
    h_ = std::exchange(o.h_, nullptr);
  }
  return *this;
}

DMatrix::~DMatrix() {
  if (h_) XGDMatrixFree(h_);
}

Result<DMatrix> DMatrix::FromDense(const DenseMatrix& x, int nthread) {
  ENGAGE_RETURN_IF_ERROR(x.Validate("matrix"));
  std::string ai = DenseArrayInterface(x.values.data(), x.rows, x.cols);
  std::string config = fmt::format(R"({{"missing": NaN, "nthread": {}}})", nthread);
  DMatrixHandle h = nullptr;
  if (XGDMatrixCreateFromDense(ai.c_str(), config.c_str(), &h) != 0) {
    return XgbError(StatusCode::kInternal,
                    fmt::format("creating a {} x {} XGBoost matrix", x.rows, x.cols));
  }
  return DMatrix(h);
}

Result<DMatrix> DMatrix::FromTrainData(const TrainData& d, int nthread) {
  ENGAGE_RETURN_IF_ERROR(d.Validate("data"));
  ENGAGE_ASSIGN_OR_RETURN(DMatrix m, FromDense(d.x, nthread));
  ENGAGE_RETURN_IF_ERROR(m.SetFloatInfo("label", d.labels));
  if (!d.weights.empty()) ENGAGE_RETURN_IF_ERROR(m.SetFloatInfo("weight", d.weights));
  return m;
}

Result<DMatrix> DMatrix::CreateProxy() {
  DMatrixHandle h = nullptr;
  if (XGProxyDMatrixCreate(&h) != 0) {
    return XgbError(StatusCode::kInternal, "creating an XGBoost proxy matrix");
  }
  return DMatrix(h);
}

Status DMatrix::SetFloatInfo(const char* field, std::span<const float> values) {
  if (XGDMatrixSetFloatInfo(h_, field, values.data(), values.size()) != 0) {
    return XgbError(StatusCode::kInvalidArgument,
                    fmt::format("setting {} {} values of an XGBoost matrix", values.size(), field));
  }
  return Status::Ok();
}

Result<int64_t> DMatrix::NumRows() const {
  bst_ulong n = 0;
  if (XGDMatrixNumRow(h_, &n) != 0) return XgbError(StatusCode::kInternal, "counting rows");
  return static_cast<int64_t>(n);
}

Result<int64_t> DMatrix::NumCols() const {
  bst_ulong n = 0;
  if (XGDMatrixNumCol(h_, &n) != 0) return XgbError(StatusCode::kInternal, "counting columns");
  return static_cast<int64_t>(n);
}

Booster& Booster::operator=(Booster&& o) noexcept {
  if (this != &o) {
    if (h_) XGBoosterFree(h_);
    h_ = std::exchange(o.h_, nullptr);
  }
  return *this;
}

Booster::~Booster() {
  if (h_) XGBoosterFree(h_);
}

Result<Booster> Booster::Create(std::span<const DMatrixHandle> cache) {
  BoosterHandle h = nullptr;
  if (XGBoosterCreate(cache.data(), cache.size(), &h) != 0) {
    return XgbError(StatusCode::kInternal, "creating an XGBoost booster");
  }
  return Booster(h);
}

Status Booster::SetParam(std::string_view name, std::string_view value) {
  std::string n(name), v(value);
  if (XGBoosterSetParam(h_, n.c_str(), v.c_str()) != 0) {
    return XgbError(StatusCode::kInvalidArgument,
                    fmt::format("XGBoost parameter {} = '{}'", name, value));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Training

Result<Model> Train(const TrainData& train, const TrainData* valid, const TrainParams& params,
                    const ProgressFn& progress) {
  ENGAGE_RETURN_IF_ERROR(ValidateParams(params, valid != nullptr));
  ENGAGE_RETURN_IF_ERROR(train.Validate("training set"));
  ENGAGE_ASSIGN_OR_RETURN(DMatrix dtrain, DMatrix::FromTrainData(train, params.nthread));
  return Boost(dtrain, train.x.cols, train.feature_names, valid, params, progress);
}

Result<Model> TrainExternal(const BatchSource& source, const TrainData* valid,
                            const TrainParams& params, const std::string& cache_dir,
                            const ProgressFn& progress) {
  ENGAGE_RETURN_IF_ERROR(ValidateParams(params, valid != nullptr));
  if (source.cols <= 0) {
    return InvalidArgumentError(fmt::format("batch source has {} columns", source.cols));
  }
  if (!source.next || !source.reset) {
    return InvalidArgumentError("batch source needs both next and reset");
  }
  ENGAGE_RETURN_IF_ERROR(ValidateFeatureNames(source.feature_names, source.cols, "batch source"));

  // XGBoost writes its page cache with its own file I/O, so this uses the real filesystem.
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  if (ec) {
    return InternalError(
        fmt::format("cannot create cache directory '{}': {}", cache_dir, ec.message()));
  }
  std::string tmpl = JoinPath(cache_dir, "xgb-cache-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return InternalError(
        fmt::format("cannot create a directory under '{}': {}", cache_dir, std::strerror(errno)));
  }
  const std::string dir = tmpl;
  // Declared before the matrices so it runs after they are freed (XGBoost may still hold files).
  Cleanup remove_dir([&dir] {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  });

  ENGAGE_ASSIGN_OR_RETURN(DMatrix proxy, DMatrix::CreateProxy());
  BatchIter it;
  it.source = &source;
  it.proxy = proxy.get();
  std::string config = fmt::format(R"({{"missing": NaN, "cache_prefix": {}, "nthread": {}}})",
                                   Json(JoinPath(dir, "train")).dump(), params.nthread);
  DMatrixHandle h = nullptr;
  int rc =
      XGDMatrixCreateFromCallback(&it, proxy.get(), ResetBatches, NextBatch, config.c_str(), &h);
  DMatrix dtrain = DMatrix::Adopt(h);  // owns it even when our callback failed
  if (!it.error.ok()) return it.error;
  if (rc != 0) {
    return XgbError(StatusCode::kInvalidArgument,
                    "building the external-memory training matrix from batches");
  }
  ENGAGE_ASSIGN_OR_RETURN(int64_t rows, dtrain.NumRows());
  if (rows == 0) return InvalidArgumentError("batch source gave no rows");
  return Boost(dtrain, source.cols, source.feature_names, valid, params, progress);
}

// ---------------------------------------------------------------------------------------------
// Model

Result<Model> Model::Load(FileSystem& fs, const std::string& path, int nthread) {
  ENGAGE_ASSIGN_OR_RETURN(std::string text, fs.ReadFile(path));
  return FromJsonText(text, nthread, fmt::format("model file '{}'", path));
}

Result<Model> Model::Load(const std::string& path, int nthread) {
  return Load(*PosixFileSystem::Default(), path, nthread);
}

Result<Model> Model::FromJsonText(std::string_view text, int nthread, std::string_view what) {
  if (nthread < 0) {
    return InvalidArgumentError(fmt::format("nthread must be >= 0, got {}", nthread));
  }
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || text[first] != '{') {
    return InvalidArgumentError(fmt::format("{} is not an XGBoost JSON model", what));
  }
  ENGAGE_ASSIGN_OR_RETURN(Booster b, Booster::Create({}));
  if (XGBoosterLoadModelFromBuffer(b.get(), text.data(), text.size()) != 0) {
    return XgbError(StatusCode::kInvalidArgument, fmt::format("cannot read {}", what));
  }

  std::vector<std::string> names;
  bst_ulong n = 0;
  const char** out = nullptr;
  if (XGBoosterGetStrFeatureInfo(b.get(), "feature_name", &n, &out) != 0) {
    return XgbError(StatusCode::kInternal, fmt::format("reading feature names of {}", what));
  }
  for (bst_ulong i = 0; i < n; ++i) names.emplace_back(out[i]);

  std::optional<std::pair<TrainParams, TrainSummary>> record;
  const char* attr = nullptr;
  int found = 0;
  if (XGBoosterGetAttr(b.get(), kRecordAttr, &attr, &found) != 0) {
    return XgbError(StatusCode::kInternal, fmt::format("reading attributes of {}", what));
  }
  if (found && attr) {
    ENGAGE_ASSIGN_OR_RETURN(Json rec, ParseJson(attr, what));
    if (!rec.is_object() || !rec.contains("params") || !rec.contains("summary")) {
      return InvalidArgumentError(fmt::format("{} has a malformed training record", what));
    }
    auto p = TrainParams::FromJson(rec["params"]);
    if (!p.ok()) return p.status().WithContext(std::string(what));
    auto s = SummaryFromJson(rec["summary"]);
    if (!s.ok()) return s.status().WithContext(std::string(what));
    record.emplace(std::move(*p), std::move(*s));
  }
  auto m = ModelBuilder::Make(std::move(b), nthread, std::move(names), std::move(record));
  if (!m.ok()) return m.status().WithContext(std::string(what));
  return m;
}

Result<std::string> Model::ToJsonText() const {
  std::unique_lock lock(*mu_);
  bst_ulong len = 0;
  const char* data = nullptr;
  if (XGBoosterSaveModelToBuffer(booster_.get(), R"({"format": "json"})", &len, &data) != 0) {
    return XgbError(StatusCode::kInternal, "serialising the model to JSON");
  }
  return std::string(data, len);
}

Status Model::Save(FileSystem& fs, const std::string& path) const {
  ENGAGE_ASSIGN_OR_RETURN(std::string text, ToJsonText());
  return fs.WriteFileAtomic(path, text);
}

Status Model::Save(const std::string& path) const {
  return Save(*PosixFileSystem::Default(), path);
}

const Forest* Model::GetForest() const {
  std::call_once(compiled_->once, [this] {
    Result<std::string> text = ToJsonText();
    if (!text.ok()) {
      compiled_->status = text.status();
      return;
    }
    Result<Forest> f = Forest::FromModelJson(*text);
    if (!f.ok()) {
      compiled_->status = f.status();
    } else if (f->NumFeatures() != num_features_) {
      compiled_->status = InternalError(fmt::format(
          "the compiled forest has {} features, the booster {}", f->NumFeatures(), num_features_));
    } else {
      compiled_->forest.emplace(std::move(*f));
    }
  });
  return compiled_->forest ? &*compiled_->forest : nullptr;
}

Status Model::ForestStatusForTesting() const {
  return GetForest() != nullptr ? Status::Ok() : compiled_->status;
}

Result<std::vector<float>> Model::PredictRows(const DenseMatrix& x, int type) const {
  if (x.cols != num_features_) {
    return InvalidArgumentError(
        fmt::format("matrix has {} columns but the model has {} features", x.cols, num_features_));
  }
  if (x.rows == 0 && x.values.empty()) return std::vector<float>();
  ENGAGE_RETURN_IF_ERROR(x.Validate("matrix"));
  if (const Forest* f = GetForest()) {
    return type == 0 ? f->Predict(x.values, x.cols, nthread_)
                     : f->PredictMargin(x.values, x.cols, nthread_);
  }
  std::string ai = DenseArrayInterface(x.values.data(), x.rows, x.cols);
  std::string config =
      fmt::format(R"({{"type": {}, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
                  R"("strict_shape": false, "missing": NaN, "cache_id": 0}})",
                  type);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  std::shared_lock lock(*mu_);
  if (XGBoosterPredictFromDense(booster_.get(), ai.c_str(), config.c_str(), nullptr, &shape, &dim,
                                &out) != 0) {
    return XgbError(StatusCode::kInternal, fmt::format("predicting {} rows", x.rows));
  }
  size_t n = 1;
  for (bst_ulong i = 0; i < dim; ++i) n *= shape[i];
  if (static_cast<int64_t>(n) != x.rows) {
    return InternalError(
        fmt::format("XGBoost returned {} predictions for {} rows (a multi-output "
                    "model is not supported)",
                    n, x.rows));
  }
  return std::vector<float>(out, out + n);
}

Result<std::vector<float>> Model::Predict(const DenseMatrix& x) const { return PredictRows(x, 0); }

Result<std::vector<float>> Model::PredictMargin(const DenseMatrix& x) const {
  return PredictRows(x, 1);
}

Result<ContributionMatrix> Model::Contributions(const DenseMatrix& x) const {
  if (x.cols != num_features_) {
    return InvalidArgumentError(
        fmt::format("matrix has {} columns but the model has {} features", x.cols, num_features_));
  }
  ContributionMatrix c;
  c.cols = num_features_ + 1;
  if (x.rows == 0 && x.values.empty()) return c;
  ENGAGE_ASSIGN_OR_RETURN(DMatrix dm, DMatrix::FromDense(x, nthread_));
  const char* config =
      R"({"type": 2, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
      R"("strict_shape": false})";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  std::unique_lock lock(*mu_);
  if (XGBoosterPredictFromDMatrix(booster_.get(), dm.get(), config, &shape, &dim, &out) != 0) {
    return XgbError(StatusCode::kInternal,
                    fmt::format("computing contributions for {} rows", x.rows));
  }
  if (dim != 2 || static_cast<int64_t>(shape[0]) != x.rows ||
      static_cast<int64_t>(shape[1]) != c.cols) {
    return InternalError(
        fmt::format("XGBoost returned contributions of an unexpected shape "
                    "({} dimensions) for {} rows x {} features",
                    dim, x.rows, num_features_));
  }
  c.rows = x.rows;
  c.values.assign(out, out + static_cast<size_t>(c.rows * c.cols));
  return c;
}

Json Model::Params() const {
  Json names = Json::array();
  for (const auto& n : feature_names_) names.push_back(n);
  return Json{{"params", has_record_ ? params_.ToJson() : Json(nullptr)},
              {"training", has_record_ ? summary_.ToJson() : Json(nullptr)},
              {"num_features", num_features_},
              {"feature_names", std::move(names)},
              {"xgboost_version", XgboostVersion()}};
}

// ---------------------------------------------------------------------------------------------
// Explanations

Result<std::vector<Reason>> TopReasons(std::span<const float> contribs,
                                       const std::vector<std::string>& feature_names, int k) {
  if (k < 0) return InvalidArgumentError(fmt::format("k must be >= 0, got {}", k));
  size_t nf = feature_names.size();
  if (contribs.size() != nf && contribs.size() != nf + 1) {
    return InvalidArgumentError(fmt::format(
        "contribution row has {} values for {} feature names (expected {} or {} with the bias)",
        contribs.size(), nf, nf, nf + 1));
  }
  std::vector<size_t> idx;
  for (size_t i = 0; i < nf; ++i) {
    if (contribs[i] != 0 && !std::isnan(contribs[i])) idx.push_back(i);
  }
  auto by_size = [&](size_t a, size_t b) {
    float fa = std::fabs(contribs[a]), fb = std::fabs(contribs[b]);
    return fa != fb ? fa > fb : a < b;
  };
  size_t take = std::min(idx.size(), static_cast<size_t>(k));
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(take), idx.end(),
                    by_size);
  std::vector<Reason> out;
  for (size_t i = 0; i < take; ++i) {
    out.push_back({feature_names[idx[i]], static_cast<int64_t>(idx[i]), contribs[idx[i]]});
  }
  return out;
}

std::string XgboostVersion() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return fmt::format("{}.{}.{}", major, minor, patch);
}

}  // namespace engage::ml
