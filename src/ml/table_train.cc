#include "engage/ml/table_train.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <unordered_map>

#include "engage/ml/registry.h"

namespace engage::ml {

namespace {

using lake::DuckResult;
using lake::SqlIdent;

constexpr double kNumericTextShare = 0.95;  // text columns at least this numeric are numbers
constexpr size_t kMaxOneHotValues = 50;
constexpr int64_t kMinDistinctForIdLike = 20;

float NaN() { return std::numeric_limits<float>::quiet_NaN(); }

Json NumOrNull(double v) { return std::isnan(v) ? Json(nullptr) : Json(v); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A finite number spelled out in full ("12", "-0.5", "1e3", " 7 "), else nullopt.
std::optional<double> ParseNumber(std::string_view text) {
  std::string_view s = Trim(text);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

template <typename T>
bool ParseWhole(std::string_view s, T* out) {
  s = Trim(s);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// Days since 1970 of DuckDB's text for a DATE or TIMESTAMP ("2024-06-01",
// "2024-06-01 10:30:00.25", "2024-06-01 10:30:00+02", also with 'T'), else nullopt.
std::optional<double> ParseDays(std::string_view text) {
  std::string_view s = Trim(text);
  int y = 0, mo = 0, d = 0;
  if (s.size() < 10 || s[4] != '-' || s[7] != '-' || !ParseWhole(s.substr(0, 4), &y) ||
      !ParseWhole(s.substr(5, 2), &mo) || !ParseWhole(s.substr(8, 2), &d) || mo < 1 || mo > 12 ||
      d < 1 || d > 31) {
    return std::nullopt;
  }
  double days = static_cast<double>(DaysFromCivil(y, mo, d));
  s.remove_prefix(10);
  if (s.empty()) return days;
  if ((s[0] != ' ' && s[0] != 'T') || s.size() < 9 || s[3] != ':' || s[6] != ':') {
    return std::nullopt;
  }
  int h = 0, mi = 0;
  if (!ParseWhole(s.substr(1, 2), &h) || !ParseWhole(s.substr(4, 2), &mi)) return std::nullopt;
  s.remove_prefix(7);
  size_t sec_len = 0;
  while (sec_len < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[sec_len])) || s[sec_len] == '.')) {
    ++sec_len;
  }
  double sec = 0;
  if (!ParseWhole(s.substr(0, sec_len), &sec)) return std::nullopt;
  s.remove_prefix(sec_len);
  double offset_s = 0;
  if (!s.empty()) {  // a time zone offset: +HH, +HH:MM or Z
    if (s == "Z") {
      s.remove_prefix(1);
    } else if (s[0] == '+' || s[0] == '-') {
      int oh = 0, om = 0;
      if (s.size() < 3 || !ParseWhole(s.substr(1, 2), &oh)) return std::nullopt;
      if (s.size() > 3 && (s.size() != 6 || s[3] != ':' || !ParseWhole(s.substr(4, 2), &om))) {
        return std::nullopt;
      }
      offset_s = (s[0] == '+' ? 1 : -1) * (oh * 3600.0 + om * 60.0);
    } else {
      return std::nullopt;
    }
  }
  return days + (h * 3600.0 + mi * 60.0 + sec - offset_s) / 86400.0;
}

bool IsNumericType(duckdb_type t) {
  switch (t) {
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_DECIMAL:
      return true;
    default:
      return false;
  }
}

bool IsTimeType(duckdb_type t) {
  switch (t) {
    case DUCKDB_TYPE_DATE:
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return true;
    default:
      return false;
  }
}

bool IsTextType(duckdb_type t) { return t == DUCKDB_TYPE_VARCHAR || t == DUCKDB_TYPE_ENUM; }

// 1 / 0 for a boolean spelled as text, else nullopt.
std::optional<float> ParseBoolText(std::string_view text) {
  std::string s = Lower(Trim(text));
  if (s == "1" || s == "true" || s == "yes") return 1.0f;
  if (s == "0" || s == "false" || s == "no") return 0.0f;
  return std::nullopt;
}

// One cell of a column as a number for the numeric kinds; NaN when missing or unparsable.
float NumericCell(DuckResult& r, int col, duckdb_type t, int64_t row) {
  if (r.IsNull(col, row)) return NaN();
  if (IsNumericType(t)) return static_cast<float>(r.Double(col, row));
  if (t == DUCKDB_TYPE_BOOLEAN) return r.Bool(col, row) ? 1.0f : 0.0f;
  auto s = r.Str(col, row);
  auto v = s ? ParseNumber(*s) : std::nullopt;
  return v ? static_cast<float>(*v) : NaN();
}

float BooleanCell(DuckResult& r, int col, duckdb_type t, int64_t row) {
  if (r.IsNull(col, row)) return NaN();
  if (t == DUCKDB_TYPE_BOOLEAN) return r.Bool(col, row) ? 1.0f : 0.0f;
  if (IsNumericType(t)) return r.Double(col, row) != 0 ? 1.0f : 0.0f;
  auto s = r.Str(col, row);
  auto v = s ? ParseBoolText(*s) : std::nullopt;
  return v.value_or(NaN());
}

float DaysCell(DuckResult& r, int col, int64_t row) {
  if (r.IsNull(col, row)) return NaN();
  auto s = r.Str(col, row);
  auto v = s ? ParseDays(*s) : std::nullopt;
  return v ? static_cast<float>(*v) : NaN();
}

// XGBoost refuses '[', ']' and '<' in feature names (its Python package cannot load them).
std::string FeatureName(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '[' || c == ']' || c == '<') c = '_';
  }
  return out;
}

// The label of one row: 1, 0, or nullopt for NULL; kInvalidArgument for anything else.
Result<std::optional<float>> LabelCell(DuckResult& r, int col, duckdb_type t, int64_t row,
                                       const std::string& column) {
  if (r.IsNull(col, row)) return std::optional<float>();
  if (t == DUCKDB_TYPE_BOOLEAN) return std::optional<float>(r.Bool(col, row) ? 1.0f : 0.0f);
  if (IsNumericType(t)) {
    double v = r.Double(col, row);
    if (v == 0 || v == 1) return std::optional<float>(static_cast<float>(v));
    return InvalidArgumentError(
        fmt::format("label column '{}' holds {} (row {}); labels must be 0/1, true/false or yes/no",
                    column, r.Str(col, row).value_or("?"), row + 1));
  }
  if (IsTextType(t)) {
    std::string s = r.Str(col, row).value_or("");
    auto v = ParseBoolText(s);
    if (v) return std::optional<float>(*v);
    return InvalidArgumentError(fmt::format(
        "label column '{}' holds '{}' (row {}); labels must be 0/1, true/false or yes/no", column,
        s, row + 1));
  }
  return InvalidArgumentError(
      fmt::format("label column '{}' has type {}; labels must be 0/1 numbers, booleans or text "
                  "such as yes/no",
                  column, r.ColumnTypeName(col)));
}

// 64-bit hash of (seed, text), stable across runs and platforms: FNV-1a, then splitmix64's
// finaliser so that nearby ids spread over the whole range.
uint64_t StableHash(uint64_t seed, std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i < 8; ++i) {
    h ^= (seed >> (8 * i)) & 0xff;
    h *= 1099511628211ULL;
  }
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

// Decides how one column becomes features from the values in rows `fit_rows`; nullopt (with
// `*reason`) when it is not used.
std::optional<ColumnEncoding> DecideColumn(DuckResult& r, int col,
                                           const std::vector<int64_t>& fit_rows,
                                           std::string* reason) {
  ColumnEncoding e;
  e.column = r.ColumnName(col);
  duckdb_type t = r.ColumnType(col);
  if (IsNumericType(t)) {
    e.kind = FeatureKind::kNumeric;
    return e;
  }
  if (t == DUCKDB_TYPE_BOOLEAN) {
    e.kind = FeatureKind::kBoolean;
    return e;
  }
  if (IsTimeType(t)) {
    e.kind = FeatureKind::kDays;
    return e;
  }
  if (t == DUCKDB_TYPE_TIMESTAMP_TZ) {
    // DuckDB's C API cannot print these values; lake tables hold plain TIMESTAMPs.
    *reason = "TIMESTAMP WITH TIME ZONE is not supported (cast it to TIMESTAMP)";
    return std::nullopt;
  }
  if (!IsTextType(t)) {
    *reason = fmt::format("type {} is not supported", r.ColumnTypeName(col));
    return std::nullopt;
  }
  int64_t non_empty = 0, numeric = 0;
  std::unordered_map<std::string, int64_t> counts;
  for (int64_t row : fit_rows) {
    auto s = r.Str(col, row);
    if (!s || Trim(*s).empty()) continue;
    ++non_empty;
    if (ParseNumber(*s)) ++numeric;
    ++counts[*s];
  }
  if (non_empty == 0) {
    *reason = "no values in the training rows";
    return std::nullopt;
  }
  if (static_cast<double>(numeric) >= kNumericTextShare * static_cast<double>(non_empty)) {
    e.kind = FeatureKind::kNumericText;
    return e;
  }
  if (static_cast<int64_t>(counts.size()) == non_empty && non_empty >= kMinDistinctForIdLike) {
    *reason = "every value is distinct (an id or free text)";
    return std::nullopt;
  }
  std::vector<std::pair<std::string, int64_t>> by_count(counts.begin(), counts.end());
  std::sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (by_count.size() > kMaxOneHotValues) by_count.resize(kMaxOneHotValues);
  e.kind = FeatureKind::kOneHot;
  for (auto& [v, n] : by_count) e.values.push_back(std::move(v));
  // In value order: retraining on a slightly different sample keeps the same features.
  std::sort(e.values.begin(), e.values.end());
  e.num_features = static_cast<int64_t>(e.values.size());
  return e;
}

// Numbers the features of `columns` in order and names them; names are made unique.
void AssignFeatures(TableEncoding& enc) {
  enc.feature_names.clear();
  std::set<std::string> used;
  auto add = [&](std::string name) {
    std::string unique = name;
    for (int k = 2; used.count(unique); ++k) unique = fmt::format("{}#{}", name, k);
    used.insert(unique);
    enc.feature_names.push_back(std::move(unique));
  };
  for (auto& c : enc.columns) {
    c.first_feature = static_cast<int64_t>(enc.feature_names.size());
    if (c.kind == FeatureKind::kOneHot) {
      c.num_features = static_cast<int64_t>(c.values.size());
      for (const auto& v : c.values) add(FeatureName(c.column + "=" + v));
    } else {
      c.num_features = 1;
      add(FeatureName(c.column));
    }
  }
}

TrainData Gather(const DenseMatrix& x, const std::vector<float>& labels,
                 const std::vector<int64_t>& rows, const std::vector<std::string>& names) {
  TrainData d;
  d.x = DenseMatrix(static_cast<int64_t>(rows.size()), x.cols);
  for (size_t i = 0; i < rows.size(); ++i) {
    auto src = x.Row(rows[i]);
    std::copy(src.begin(), src.end(), d.x.values.begin() + static_cast<int64_t>(i) * x.cols);
    d.labels.push_back(labels[static_cast<size_t>(rows[i])]);
  }
  d.feature_names = names;
  return d;
}

std::string Classes(const std::vector<float>& labels, const std::vector<int64_t>& rows) {
  int64_t pos = 0;
  for (int64_t r : rows) pos += labels[static_cast<size_t>(r)] == 1 ? 1 : 0;
  return fmt::format("{} positive, {} negative", pos, static_cast<int64_t>(rows.size()) - pos);
}

bool HasBothClasses(const std::vector<float>& labels, const std::vector<int64_t>& rows) {
  bool pos = false, neg = false;
  for (int64_t r : rows) (labels[static_cast<size_t>(r)] == 1 ? pos : neg) = true;
  return pos && neg;
}

}  // namespace

SplitPart SplitOfId(std::string_view id, uint64_t seed, double test_fraction,
                    double valid_fraction) {
  double u = static_cast<double>(StableHash(seed, id) >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  if (u < test_fraction) return SplitPart::kTest;
  if (u < test_fraction + (1 - test_fraction) * valid_fraction) return SplitPart::kValid;
  return SplitPart::kTrain;
}

TrainParams DefaultTableTrainParams() {
  TrainParams p;
  p.eta = 0.05;
  p.max_depth = 4;
  p.min_child_weight = 1.0;
  p.subsample = 0.8;
  p.colsample_bytree = 0.8;
  p.num_boost_round = 1000;
  p.early_stopping_rounds = 50;
  p.eval_metric = "logloss";
  p.seed = 42;
  return p;
}

Status SetTrainParam(TrainParams& p, const std::string& key, const std::string& value) {
  if (key.empty()) return InvalidArgumentError("training parameter without a name");
  // A number in [lo, hi] (`open_lo`: above lo), checked here rather than by XGBoost after the
  // features are built.
  auto number = [&](auto* field, double lo = -1e300, double hi = 1e300,
                    bool open_lo = false) -> Status {
    if (!ParseWhole(value, field)) {
      return InvalidArgumentError(
          fmt::format("training parameter {}: '{}' is not a valid number", key, value));
    }
    double v = static_cast<double>(*field);
    if (!(open_lo ? v > lo : v >= lo) || !(v <= hi)) {
      return InvalidArgumentError(
          fmt::format("training parameter {} = {} is out of range: it must be {} {:g}{}", key,
                      value, open_lo ? "above" : "at least", lo,
                      hi < 1e300 ? fmt::format(" and at most {:g}", hi) : ""));
    }
    return Status::Ok();
  };
  if (key == "objective") {
    p.objective = value;
  } else if (key == "eta" || key == "learning_rate") {
    return number(&p.eta, 0, 1e300, true);
  } else if (key == "max_depth") {
    return number(&p.max_depth, 0, 1000);
  } else if (key == "min_child_weight") {
    return number(&p.min_child_weight, 0);
  } else if (key == "subsample") {
    return number(&p.subsample, 0, 1, true);
  } else if (key == "colsample_bytree") {
    return number(&p.colsample_bytree, 0, 1, true);
  } else if (key == "lambda" || key == "reg_lambda") {
    return number(&p.lambda, 0);
  } else if (key == "alpha" || key == "reg_alpha") {
    return number(&p.alpha, 0);
  } else if (key == "gamma" || key == "min_split_loss") {
    return number(&p.gamma, 0);
  } else if (key == "tree_method") {
    p.tree_method = value;
  } else if (key == "max_bin") {
    return number(&p.max_bin, 2, 1 << 16);
  } else if (key == "nthread") {
    return number(&p.nthread, 0, 4096);
  } else if (key == "seed") {
    return number(&p.seed);
  } else if (key == "num_boost_round" || key == "n_estimators") {
    return number(&p.num_boost_round, 1, 1e6);
  } else if (key == "early_stopping_rounds") {
    return number(&p.early_stopping_rounds, 0, 1e6);
  } else if (key == "eval_metric") {
    p.eval_metric = value;
  } else {
    // XGBoost ignores a parameter it does not know (with a warning on its log): only its own
    // names pass through.
    static const std::set<std::string> kPassThrough = {"scale_pos_weight",
                                                       "max_delta_step",
                                                       "colsample_bylevel",
                                                       "colsample_bynode",
                                                       "grow_policy",
                                                       "max_leaves",
                                                       "sampling_method",
                                                       "base_score",
                                                       "num_parallel_tree",
                                                       "monotone_constraints",
                                                       "interaction_constraints",
                                                       "max_cat_to_onehot",
                                                       "max_cat_threshold",
                                                       "refresh_leaf",
                                                       "process_type",
                                                       "updater",
                                                       "multi_strategy",
                                                       "tweedie_variance_power",
                                                       "huber_slope",
                                                       "quantile_alpha",
                                                       "aft_loss_distribution",
                                                       "aft_loss_distribution_scale",
                                                       "max_cached_hist_node",
                                                       "verbosity",
                                                       "booster",
                                                       "disable_default_eval_metric",
                                                       "seed_per_iteration",
                                                       "device",
                                                       "validate_parameters",
                                                       "rate_drop",
                                                       "skip_drop",
                                                       "one_drop",
                                                       "normalize_type",
                                                       "sample_type"};
    if (!kPassThrough.contains(key)) {
      return InvalidArgumentError(fmt::format(
          "unknown training parameter '{}': Engage's are objective, eta, max_depth, "
          "min_child_weight, subsample, colsample_bytree, lambda, alpha, gamma, tree_method, "
          "max_bin, nthread, num_boost_round, early_stopping_rounds and eval_metric; XGBoost's "
          "others pass through (e.g. scale_pos_weight, max_delta_step, grow_policy, max_leaves)",
          key));
    }
    for (auto& [k, v] : p.extra) {
      if (k == key) {
        v = value;
        return Status::Ok();
      }
    }
    p.extra.emplace_back(key, value);
  }
  return Status::Ok();
}

Status ApplyTrainParams(const std::vector<std::string>& flags, TrainParams& params) {
  for (const std::string& kv : flags) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError(fmt::format("--param '{}' is not key=value", kv));
    }
    std::string key = kv.substr(0, eq);
    if (key == "seed") return InvalidArgumentError("use --seed instead of --param seed=...");
    ENGAGE_RETURN_IF_ERROR(SetTrainParam(params, key, kv.substr(eq + 1)));
  }
  return Status::Ok();
}

std::string_view FeatureKindName(FeatureKind k) {
  switch (k) {
    case FeatureKind::kNumeric:
      return "numeric";
    case FeatureKind::kBoolean:
      return "boolean";
    case FeatureKind::kNumericText:
      return "numeric_text";
    case FeatureKind::kOneHot:
      return "one_hot";
    case FeatureKind::kDays:
      return "days";
  }
  return "numeric";
}

Json TableEncoding::ToJson() const {
  Json cols = Json::array();
  for (const auto& c : columns) {
    Json j = {{"column", c.column}, {"kind", FeatureKindName(c.kind)}};
    if (c.kind == FeatureKind::kOneHot) j["values"] = c.values;
    j["first_feature"] = c.first_feature;
    j["num_features"] = c.num_features;
    cols.push_back(std::move(j));
  }
  Json skip = Json::array();
  for (const auto& [c, why] : skipped) skip.push_back({{"column", c}, {"reason", why}});
  return Json{{"features", feature_names}, {"columns", std::move(cols)}, {"skipped", skip}};
}

Result<TableEncoding> TableEncoding::FromJson(const Json& j) {
  if (!j.is_object() || !j.contains("columns") || !j["columns"].is_array()) {
    return InvalidArgumentError("table encoding: expected an object with a \"columns\" array");
  }
  TableEncoding enc;
  try {
    for (const Json& c : j["columns"]) {
      ColumnEncoding e;
      e.column = c.at("column").get<std::string>();
      std::string kind = c.at("kind").get<std::string>();
      bool known = false;
      for (FeatureKind k : {FeatureKind::kNumeric, FeatureKind::kBoolean, FeatureKind::kNumericText,
                            FeatureKind::kOneHot, FeatureKind::kDays}) {
        if (FeatureKindName(k) == kind) {
          e.kind = k;
          known = true;
        }
      }
      if (!known) {
        return InvalidArgumentError(
            fmt::format("table encoding: column '{}' has unknown kind '{}'", e.column, kind));
      }
      if (e.kind == FeatureKind::kOneHot) {
        e.values = c.at("values").get<std::vector<std::string>>();
      }
      enc.columns.push_back(std::move(e));
    }
    if (j.contains("skipped")) {
      for (const Json& s : j["skipped"]) {
        enc.skipped.emplace_back(s.at("column").get<std::string>(),
                                 s.at("reason").get<std::string>());
      }
    }
  } catch (const std::exception& e) {
    return InvalidArgumentError(fmt::format("table encoding: {}", e.what()));
  }
  AssignFeatures(enc);
  if (j.contains("features") && j["features"] != Json(enc.feature_names)) {
    return InvalidArgumentError("table encoding: \"features\" do not match the columns");
  }
  return enc;
}

Result<DenseMatrix> TableEncoding::Encode(DuckResult& rows) const {
  std::map<std::string, int> index;
  for (int c = 0; c < rows.ColumnCount(); ++c) index.emplace(rows.ColumnName(c), c);
  int64_t n = rows.RowCount();
  DenseMatrix x(n, static_cast<int64_t>(feature_names.size()));
  for (const auto& e : columns) {
    auto it = index.find(e.column);
    if (it == index.end()) {
      return NotFoundError(fmt::format("rows to encode have no column '{}'", e.column));
    }
    int col = it->second;
    duckdb_type t = rows.ColumnType(col);
    if (t == DUCKDB_TYPE_TIMESTAMP_TZ) {
      return InvalidArgumentError(
          fmt::format("column '{}' is a TIMESTAMP WITH TIME ZONE; cast it to TIMESTAMP", e.column));
    }
    int64_t f = e.first_feature;
    switch (e.kind) {
      case FeatureKind::kNumeric:
      case FeatureKind::kNumericText:
        for (int64_t r = 0; r < n; ++r) x.at(r, f) = NumericCell(rows, col, t, r);
        break;
      case FeatureKind::kBoolean:
        for (int64_t r = 0; r < n; ++r) x.at(r, f) = BooleanCell(rows, col, t, r);
        break;
      case FeatureKind::kDays:
        for (int64_t r = 0; r < n; ++r) x.at(r, f) = DaysCell(rows, col, r);
        break;
      case FeatureKind::kOneHot: {
        std::unordered_map<std::string, int64_t> slot;
        for (size_t k = 0; k < e.values.size(); ++k) {
          slot.emplace(e.values[k], static_cast<int64_t>(k));
        }
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t k = 0; k < e.num_features; ++k) x.at(r, f + k) = 0.0f;
          auto s = rows.Str(col, r);
          if (!s) continue;
          auto hit = slot.find(*s);
          if (hit != slot.end()) x.at(r, f + hit->second) = 1.0f;
        }
        break;
      }
    }
  }
  return x;
}

Json TableTrainResult::ToJson(int top) const {
  const TrainSummary& s = model.summary();
  Json tops = Json::array();
  for (size_t i = 0; i < importance.size() && static_cast<int>(i) < top; ++i) {
    tops.push_back({{"feature", importance[i].feature},
                    {"mean_abs_shap", NumOrNull(importance[i].mean_abs_shap)}});
  }
  return Json{{"table", table},
              {"label", label_column},
              {"id", id_column.empty() ? Json(nullptr) : Json(id_column)},
              {"auc", NumOrNull(test.roc_auc)},
              {"pr_auc", NumOrNull(test.pr_auc)},
              {"log_loss", NumOrNull(test.log_loss)},
              {"brier", NumOrNull(test.brier)},
              {"base_rate", NumOrNull(test.base_rate)},
              {"rows", rows},
              {"rows_unlabelled", rows_unlabelled},
              {"rows_train", rows_train},
              {"rows_valid", rows_valid},
              {"rows_test", rows_test},
              {"features", static_cast<int64_t>(encoding.feature_names.size())},
              {"rounds", s.rounds_run},
              {"best_iteration", s.best_iteration},
              {"best_score", NumOrNull(s.best_score)},
              {"metric", s.metric},
              {"stopped_early", s.stopped_early},
              {"params", model.params().ToJson()},
              {"top_features", std::move(tops)},
              {"encoding", encoding.ToJson()},
              {"test", test.ToJson()},
              {"elapsed_s", elapsed_s}};
}

Result<std::string> TableTrainFingerprint(sql::QueryEngine& engine, const TableTrainRequest& req) {
  ENGAGE_ASSIGN_OR_RETURN(Json data, LakeTablesIdentity(engine, {req.table}));
  Json params = req.params.ToJson();
  params.erase("nthread");  // threads change the time, not the model
  return Fingerprint(Json{{"kind", "table"},
                          {"data", std::move(data)},
                          {"table", req.table},
                          {"label", req.label_column},
                          {"id", req.id_column},
                          {"exclude", req.exclude},
                          {"test_fraction", req.test_fraction},
                          {"valid_fraction", req.valid_fraction},
                          {"seed", req.seed},
                          {"importance_rows", req.importance_rows},
                          {"params", std::move(params)}});
}

Json TableTrainCard(const TableTrainRequest& req, const TableTrainResult& r,
                    const std::string& fingerprint) {
  const EvalReport& t = r.test;
  const TrainSummary& s = r.summary();
  Json tops = r.ToJson(10)["top_features"];
  return Json{{"kind", "table"},
              {"fingerprint", fingerprint},
              {"params", r.model.params().ToJson()},
              {"features", r.feature_names()},
              {"data",
               {{"table", r.table},
                {"label", r.label_column},
                {"id", r.id_column.empty() ? Json(nullptr) : Json(r.id_column)},
                {"exclude", req.exclude},
                {"test_fraction", req.test_fraction},
                {"valid_fraction", req.valid_fraction},
                {"seed", req.seed},
                {"rows", r.rows},
                {"rows_unlabelled", r.rows_unlabelled}}},
              {"metrics",
               {{"valid",
                 {{"auc", NumOrNull(t.roc_auc)},
                  {"pr_auc", NumOrNull(t.pr_auc)},
                  {"log_loss", NumOrNull(t.log_loss)},
                  {"brier", NumOrNull(t.brier)},
                  {"base_rate", NumOrNull(t.base_rate)},
                  {"rows", t.count}}},
                {"evaluated_on", "the held-out test split"},
                {"report", t.ToJson()}}},
              {"training",
               {{"rows_train", r.rows_train},
                {"rows_valid", r.rows_valid},
                {"rows_test", r.rows_test},
                {"rounds", s.rounds_run},
                {"best_iteration", s.best_iteration},
                {"seconds", r.elapsed_s}}},
              {"encoding", r.encoding.ToJson()},
              {"top_features", std::move(tops)}};
}

Result<TableTrainResult> TrainOnTable(sql::QueryEngine& engine, const TableTrainRequest& req,
                                      const ProgressFn& progress) {
  auto start = std::chrono::steady_clock::now();
  if (!(req.test_fraction > 0 && req.test_fraction < 1)) {
    return InvalidArgumentError(
        fmt::format("test fraction {} must be between 0 and 1 (exclusive)", req.test_fraction));
  }
  if (!(req.valid_fraction >= 0 && req.valid_fraction < 1)) {
    return InvalidArgumentError(
        fmt::format("validation fraction {} must be in [0, 1)", req.valid_fraction));
  }
  if (req.label_column.empty()) return InvalidArgumentError("no label column given");
  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, engine.lake().config().Table(req.table));
  std::vector<std::string> named = {req.label_column};
  if (!req.id_column.empty()) named.push_back(req.id_column);
  named.insert(named.end(), req.exclude.begin(), req.exclude.end());
  for (const auto& c : named) {
    if (spec->FindColumn(c) == nullptr) {
      std::string have;
      for (const auto& col : spec->columns) have += (have.empty() ? "" : ", ") + col.name;
      return NotFoundError(
          fmt::format("table '{}' has no column '{}' (its columns: {})", req.table, c, have));
    }
  }
  if (req.id_column == req.label_column) {
    return InvalidArgumentError(
        fmt::format("column '{}' cannot be both the label and the id", req.label_column));
  }
  std::set<std::string> excluded(req.exclude.begin(), req.exclude.end());
  if (excluded.count(req.label_column)) {
    return InvalidArgumentError(
        fmt::format("the label column '{}' is in the excluded columns", req.label_column));
  }

  // One query reads the label, the id and every candidate feature.
  std::vector<std::string> select = {SqlIdent(req.label_column)};
  if (!req.id_column.empty()) select.push_back(SqlIdent(req.id_column));
  std::vector<std::string> candidates;
  for (const auto& c : spec->columns) {
    if (c.name == req.label_column || c.name == req.id_column || excluded.count(c.name)) continue;
    candidates.push_back(c.name);
    select.push_back(SqlIdent(c.name));
  }
  if (candidates.empty()) {
    return InvalidArgumentError(fmt::format(
        "table '{}' has no column left to use as a feature after the label, id and excluded "
        "columns",
        req.table));
  }
  std::string sql = fmt::format("SELECT {} FROM {}", fmt::join(select, ", "), SqlIdent(req.table));
  // With an id the row order (and so the model) does not depend on how the lake stores rows.
  if (!req.id_column.empty()) sql += fmt::format(" ORDER BY {}", SqlIdent(req.id_column));
  auto read = engine.RunTrusted(sql, "train");
  if (!read.ok()) return read.status().WithContext(fmt::format("reading table '{}'", req.table));
  DuckResult& res = *read;
  const int64_t n = res.RowCount();
  const int label_col = 0, id_col = req.id_column.empty() ? -1 : 1;

  // Labels; rows without one take no part.
  std::vector<float> labels(static_cast<size_t>(n), NaN());
  std::vector<int64_t> labelled;
  duckdb_type label_type = res.ColumnType(label_col);
  for (int64_t r = 0; r < n; ++r) {
    ENGAGE_ASSIGN_OR_RETURN(auto l, LabelCell(res, label_col, label_type, r, req.label_column));
    if (!l) continue;
    labels[static_cast<size_t>(r)] = *l;
    labelled.push_back(r);
  }
  if (labelled.empty()) {
    return FailedPreconditionError(
        fmt::format("table '{}' has no rows with a label in '{}' ({} rows read)", req.table,
                    req.label_column, n));
  }
  if (!HasBothClasses(labels, labelled)) {
    return FailedPreconditionError(
        fmt::format("label column '{}' of table '{}' has one class only "
                    "({})",
                    req.label_column, req.table, Classes(labels, labelled)));
  }

  // The split.
  std::vector<int64_t> train_rows, valid_rows, test_rows;
  if (id_col >= 0) {
    for (int64_t r : labelled) {
      SplitPart part = SplitOfId(res.Str(id_col, r).value_or(""), req.seed, req.test_fraction,
                                 req.valid_fraction);
      (part == SplitPart::kTest    ? test_rows
       : part == SplitPart::kValid ? valid_rows
                                   : train_rows)
          .push_back(r);
    }
  } else {
    std::vector<int64_t> order = labelled;
    std::mt19937_64 rng(req.seed);
    for (size_t i = order.size(); i > 1; --i) {  // Fisher-Yates, the same on every platform
      std::swap(order[i - 1], order[static_cast<size_t>(rng() % i)]);
    }
    auto total = static_cast<double>(order.size());
    auto n_test = static_cast<size_t>(std::llround(total * req.test_fraction));
    auto n_valid = static_cast<size_t>(
        std::llround(static_cast<double>(order.size() - n_test) * req.valid_fraction));
    for (size_t i = 0; i < order.size(); ++i) {
      (i < n_test ? test_rows : i < n_test + n_valid ? valid_rows : train_rows).push_back(order[i]);
    }
    // Rows keep the table's order within each split.
    for (auto* v : {&train_rows, &valid_rows, &test_rows}) std::sort(v->begin(), v->end());
  }
  if (test_rows.empty() || train_rows.empty()) {
    return FailedPreconditionError(
        fmt::format("table '{}' has {} labelled rows: too few for a training and a test split",
                    req.table, labelled.size()));
  }
  if (!HasBothClasses(labels, train_rows)) {
    return FailedPreconditionError(
        fmt::format("the training split of table '{}' has one class "
                    "only ({})",
                    req.table, Classes(labels, train_rows)));
  }

  // The encoding, from the rows the model learns from.
  std::vector<int64_t> fit_rows = train_rows;
  fit_rows.insert(fit_rows.end(), valid_rows.begin(), valid_rows.end());
  TableEncoding enc;
  int first_feature_col = id_col >= 0 ? 2 : 1;
  for (int c = first_feature_col; c < res.ColumnCount(); ++c) {
    std::string reason;
    auto e = DecideColumn(res, c, fit_rows, &reason);
    if (e) {
      enc.columns.push_back(std::move(*e));
    } else {
      enc.skipped.emplace_back(res.ColumnName(c), reason);
    }
  }
  AssignFeatures(enc);
  if (enc.feature_names.empty()) {
    return InvalidArgumentError(fmt::format("no usable feature in table '{}' (skipped: {})",
                                            req.table, enc.ToJson()["skipped"].dump()));
  }
  ENGAGE_ASSIGN_OR_RETURN(DenseMatrix x, enc.Encode(res));

  TrainData train = Gather(x, labels, train_rows, enc.feature_names);
  TrainData valid = Gather(x, labels, valid_rows, enc.feature_names);
  TrainData test = Gather(x, labels, test_rows, enc.feature_names);
  TrainParams params = req.params;
  params.seed = req.seed;
  bool use_valid = !valid_rows.empty();
  if (!use_valid) params.early_stopping_rounds = 0;
  auto model = Train(train, use_valid ? &valid : nullptr, params, progress);
  if (!model.ok()) {
    return model.status().WithContext(fmt::format("training on table '{}'", req.table));
  }
  TableTrainResult out(std::move(*model));
  ENGAGE_ASSIGN_OR_RETURN(std::vector<float> scores, out.model.Predict(test.x));
  ENGAGE_ASSIGN_OR_RETURN(out.test, Evaluate(test.labels, scores));

  // Importance: mean |SHAP| over (the first rows of) the test split.
  int64_t k = std::min<int64_t>(req.importance_rows, test.x.rows);
  if (k > 0) {
    DenseMatrix head(k, test.x.cols);
    std::copy(test.x.values.begin(), test.x.values.begin() + k * test.x.cols, head.values.begin());
    ENGAGE_ASSIGN_OR_RETURN(ContributionMatrix contrib, out.model.Contributions(head));
    std::vector<double> sum(static_cast<size_t>(test.x.cols), 0.0);
    for (int64_t r = 0; r < contrib.rows; ++r) {
      auto row = contrib.Row(r);
      for (int64_t c = 0; c < test.x.cols; ++c) sum[static_cast<size_t>(c)] += std::fabs(row[c]);
    }
    for (size_t c = 0; c < sum.size(); ++c) {
      out.importance.push_back({enc.feature_names[c], sum[c] / static_cast<double>(k)});
    }
    std::stable_sort(out.importance.begin(), out.importance.end(),
                     [](const FeatureImportance& a, const FeatureImportance& b) {
                       return a.mean_abs_shap > b.mean_abs_shap;
                     });
  }

  out.table = req.table;
  out.label_column = req.label_column;
  out.id_column = req.id_column;
  out.rows = n;
  out.rows_unlabelled = n - static_cast<int64_t>(labelled.size());
  out.rows_train = static_cast<int64_t>(train_rows.size());
  out.rows_valid = static_cast<int64_t>(valid_rows.size());
  out.rows_test = static_cast<int64_t>(test_rows.size());
  out.encoding = std::move(enc);
  out.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace engage::ml
