#include "engage/ml/engagement.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>

#include "engage/lake/duck.h"
#include "engage/ml/btyd.h"

namespace engage::ml {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void Stage(const EngagementTrainOptions& o, const std::string& what) {
  if (o.stage) o.stage(what);
}

// Rows [first, first + n) of `frame` as a dense matrix with their labels.
TrainData Slice(const features::FeatureFrame& frame, const std::vector<int64_t>& rows) {
  TrainData d;
  d.x = DenseMatrix(static_cast<int64_t>(rows.size()), static_cast<int64_t>(frame.names.size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < frame.columns.size(); ++j) {
      d.x.at(static_cast<int64_t>(i), static_cast<int64_t>(j)) =
          frame.columns[j][static_cast<size_t>(rows[i])];
    }
    d.labels.push_back(frame.labels[static_cast<size_t>(rows[i])]);
  }
  d.feature_names = frame.names;
  return d;
}

// A compact summary of one feature's (or the scores') distribution at training, stored in the
// model card for `engage drift --model`: the values' 99 percentiles as bin edges (distinct,
// ascending), the deciles among them, the counts of values per bin (edges[i-1] < v <= edges[i];
// the last bin v > every edge) and the missing (NaN) values. The monitor component bins the
// scoring run's values on the same edges (monitor::BinValues) and compares the counts.
Json DriftProfileOf(const std::vector<float>& values) {
  std::vector<double> sorted;
  sorted.reserve(values.size());
  for (float v : values) {
    if (!std::isnan(v)) sorted.push_back(v);
  }
  std::sort(sorted.begin(), sorted.end());
  const int64_t n = static_cast<int64_t>(sorted.size());
  std::vector<double> edges, deciles;
  for (int i = 1; i < 100 && n > 0; ++i) {
    int64_t at = std::clamp<int64_t>((i * n + 99) / 100 - 1, 0, n - 1);
    double q = sorted[static_cast<size_t>(at)];
    if (!std::isfinite(q)) continue;
    edges.push_back(q);
    if (i % 10 == 0) deciles.push_back(q);
  }
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  deciles.erase(std::unique(deciles.begin(), deciles.end()), deciles.end());
  std::vector<int64_t> counts(edges.size() + 1, 0);
  for (double v : sorted) {
    counts[static_cast<size_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin())]++;
  }
  return Json{{"rows", static_cast<int64_t>(values.size())},
              {"missing", static_cast<int64_t>(values.size()) - n},
              {"edges", edges},
              {"deciles", deciles},
              {"counts", counts}};
}

}  // namespace

TrainParams EngagementTrainOptions::DefaultEngagementParams() {
  TrainParams p;
  p.eta = 0.05;
  p.max_depth = 5;
  p.min_child_weight = 5;
  p.subsample = 0.8;
  p.colsample_bytree = 0.8;
  p.num_boost_round = 600;
  p.early_stopping_rounds = 40;
  p.eval_metric = "auc";
  return p;
}

Json EngagementTrainResult::ToJson() const {
  Json j = Json::object();
  j["model"] = version.name;
  j["version"] = version.version;
  j["existing"] = existing;
  j["fingerprint"] = fingerprint;
  if (existing) {
    // What the version's card recorded when it was trained.
    const Json& c = version.card;
    Json none = Json::object();
    const Json& m = c.contains("metrics") && c["metrics"].is_object() ? c["metrics"] : none;
    const Json& t = c.contains("training") && c["training"].is_object() ? c["training"] : none;
    j["valid"] = m.value("report", Json());
    j["baseline_auc"] = m.contains("baseline") ? m["baseline"].value("auc", Json()) : Json();
    for (const char* k : {"rows_train", "rows_valid", "rounds", "best_iteration", "seconds"}) {
      j[k] = t.value(k, Json());
    }
    return j;
  }
  j["valid"] = valid.ToJson();
  j["baseline_auc"] = baseline_auc;
  j["rows_train"] = rows_train;
  j["rows_valid"] = rows_valid;
  j["rounds"] = summary.rounds_run;
  j["best_iteration"] = summary.best_iteration;
  j["seconds"] = seconds;
  return j;
}

namespace {

// The [engagement] settings that shape the training data (not the segments, which only name
// scores), for the fingerprint.
Json TrainingSettings(const EngagementConfig& c) {
  Json sql = Json::array();
  for (const auto& f : c.sql_features) sql.push_back(Json::array({f.name, f.sql}));
  return Json{{"events_table", c.events_table},         {"customers_table", c.customers_table},
              {"customer_column", c.customer_column},   {"time_column", c.time_column},
              {"type_column", c.type_column},           {"channel_column", c.channel_column},
              {"amount_column", c.amount_column},       {"signup_column", c.signup_column},
              {"qualifying_types", c.qualifying_types}, {"horizon_days", c.horizon_days},
              {"windows_days", c.windows_days},         {"lookback_days", c.lookback_days},
              {"event_types", c.event_types},           {"channels", c.channels},
              {"training_cutoffs", c.training_cutoffs}, {"cutoff_step_days", c.cutoff_step_days},
              {"sql_features", std::move(sql)}};
}

}  // namespace

Result<std::string> EngagementTrainer::TrainingFingerprint(const EngagementTrainOptions& o) {
  ENGAGE_ASSIGN_OR_RETURN(
      Json data, LakeTablesIdentity(engine_, {config_.events_table, config_.customers_table}));
  Json params = o.params.ToJson();
  params.erase("nthread");  // threads change the time, not the model
  return Fingerprint(Json{{"kind", "engagement"},
                          {"data", std::move(data)},
                          {"engagement", TrainingSettings(config_)},
                          {"params", std::move(params)},
                          {"btyd_features", o.btyd_features}});
}

Status EngagementTrainer::AddBtydFeatures(const std::string& cutoff, features::FeatureFrame* frame,
                                          int64_t first_row, int64_t rows, Json* params) {
  ENGAGE_ASSIGN_OR_RETURN(int64_t t, features::ParseDay(cutoff));
  // The repeat-buying history before the cutoff (qualifying events only), within the lookback.
  SummaryRequest req;
  req.table = config_.events_table;
  req.customer_column = config_.customer_column;
  req.time_column = config_.time_column;
  req.amount_column = config_.amount_column;
  req.calibration_end = features::FormatDay(t - 1);
  req.days_per_unit = 7;
  req.type_column = config_.type_column;
  req.types = config_.qualifying_types;
  req.where = fmt::format("dt >= DATE '{}'", features::FormatDay(t - config_.lookback_days));
  ENGAGE_ASSIGN_OR_RETURN(std::vector<CustomerSummary> summaries, SummarizeEvents(engine_, req));
  std::vector<float> alive(static_cast<size_t>(rows), kNaN), expected = alive, spend = alive,
                                                             clv = alive;
  Json p = Json::object();
  bool fitted = false;
  // A fit needs some repeat buyers; without them the columns stay missing for this cutoff.
  int64_t repeaters = 0;
  for (const auto& s : summaries) repeaters += s.x > 0 ? 1 : 0;
  if (repeaters >= 10) {
    auto bg = FitBgNbd(summaries);
    if (bg.ok()) {
      fitted = true;
      p["bgnbd"] = bg->ToJson();
      std::optional<GammaGammaParams> gg;
      if (!config_.amount_column.empty()) {
        auto g = FitGammaGamma(summaries);
        if (g.ok()) {
          gg = g->params;
          p["gamma_gamma"] = g->ToJson();
        }
      }
      std::unordered_map<std::string, size_t> index;
      for (size_t i = 0; i < summaries.size(); ++i) index[summaries[i].customer_id] = i;
      double horizon_weeks = config_.horizon_days / 7.0;
      ClvOptions clv_options;
      for (int64_t r = 0; r < rows; ++r) {
        auto it = index.find(frame->customer_ids[static_cast<size_t>(first_row + r)]);
        if (it == index.end()) continue;
        const CustomerSummary& c = summaries[it->second];
        size_t k = static_cast<size_t>(r);
        alive[k] = static_cast<float>(ProbabilityAlive(bg->params, c));
        expected[k] = static_cast<float>(ExpectedTransactions(bg->params, c, horizon_weeks));
        if (gg) {
          spend[k] = static_cast<float>(ExpectedSpend(*gg, c));
          clv[k] = static_cast<float>(CustomerLifetimeValue(bg->params, *gg, c, clv_options));
        }
      }
    }
  }
  if (!fitted) p["skipped"] = fmt::format("{} repeat buyers before {}", repeaters, cutoff);
  if (params != nullptr) (*params)[cutoff] = std::move(p);
  // Write into the frame's columns (created by the caller for all rows).
  const std::pair<const char*, std::vector<float>*> cols[] = {
      {"btyd_p_alive", &alive},
      {"btyd_expected_transactions", &expected},
      {"btyd_expected_spend", &spend},
      {"btyd_clv", &clv}};
  for (const auto& [name, values] : cols) {
    int j = frame->Find(name);
    if (j < 0) return InternalError(fmt::format("feature column {} missing", name));
    std::copy(values->begin(), values->end(),
              frame->columns[static_cast<size_t>(j)].begin() + first_row);
  }
  return Status::Ok();
}

Result<features::FeatureFrame> EngagementTrainer::BuildFeatures(
    const std::vector<std::string>& cutoffs, bool btyd_features, Json* btyd_params) {
  features::FeatureBuilder builder(engine_, config_);
  ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame frame, builder.Build(cutoffs));
  if (!btyd_features) return frame;
  for (const char* name :
       {"btyd_p_alive", "btyd_expected_transactions", "btyd_expected_spend", "btyd_clv"}) {
    ENGAGE_RETURN_IF_ERROR(
        frame.AddColumn(name, std::vector<float>(static_cast<size_t>(frame.rows()), kNaN)));
  }
  // Rows are ordered by cutoff: each cutoff's rows are one contiguous range.
  int64_t start = 0;
  while (start < frame.rows()) {
    int64_t end = start;
    while (end < frame.rows() &&
           frame.cutoffs[static_cast<size_t>(end)] == frame.cutoffs[static_cast<size_t>(start)]) {
      ++end;
    }
    ENGAGE_RETURN_IF_ERROR(AddBtydFeatures(frame.cutoffs[static_cast<size_t>(start)], &frame, start,
                                           end - start, btyd_params));
    start = end;
  }
  return frame;
}

Result<EngagementTrainResult> EngagementTrainer::Train(const EngagementTrainOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  EngagementTrainResult out;
  ENGAGE_ASSIGN_OR_RETURN(out.fingerprint, TrainingFingerprint(o));
  auto existing = [&]() -> Result<EngagementTrainResult> {
    ENGAGE_ASSIGN_OR_RETURN(auto same,
                            registry_.FindIdentical(o.model_name, "engagement", out.fingerprint));
    if (!same) return InternalError("the identical model version went away");
    EngagementTrainResult found;
    found.version = std::move(*same);
    found.existing = true;
    found.fingerprint = out.fingerprint;
    return found;
  };
  {
    ENGAGE_ASSIGN_OR_RETURN(auto same,
                            registry_.FindIdentical(o.model_name, "engagement", out.fingerprint));
    if (same) return existing();
  }
  features::FeatureBuilder builder(engine_, config_);
  ENGAGE_ASSIGN_OR_RETURN(std::vector<std::string> cutoffs, builder.TrainingCutoffs());
  ENGAGE_ASSIGN_OR_RETURN(std::string data_end, builder.DataEnd());
  if (cutoffs.size() < 2) {
    return FailedPreconditionError(
        "training needs at least two cutoffs (one to train on, the latest to validate on): set "
        "[engagement] training_cutoffs >= 2");
  }
  Stage(o, fmt::format("building features at {} cutoff(s): {} .. {}", cutoffs.size(),
                       cutoffs.front(), cutoffs.back()));
  Json btyd_params = Json::object();
  ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame frame,
                          BuildFeatures(cutoffs, o.btyd_features, &btyd_params));
  // Time split: the latest cutoff validates, the earlier ones train.
  std::vector<int64_t> train_rows, valid_rows;
  for (int64_t i = 0; i < frame.rows(); ++i) {
    if (std::isnan(frame.labels[static_cast<size_t>(i)])) continue;
    (frame.cutoffs[static_cast<size_t>(i)] == cutoffs.back() ? valid_rows : train_rows)
        .push_back(i);
  }
  auto classes = [&](const std::vector<int64_t>& rows) {
    std::set<float> seen;
    for (int64_t r : rows) seen.insert(frame.labels[static_cast<size_t>(r)]);
    return seen.size();
  };
  if (train_rows.size() < 20 || valid_rows.size() < 20 || classes(train_rows) < 2 ||
      classes(valid_rows) < 2) {
    return FailedPreconditionError(fmt::format(
        "too little labelled data to train: {} training rows and {} validation rows (both need "
        "engaged and not engaged customers); ingest more history or lower [engagement] "
        "horizon_days",
        train_rows.size(), valid_rows.size()));
  }
  TrainData train = Slice(frame, train_rows);
  TrainData valid = Slice(frame, valid_rows);
  Stage(o, fmt::format("training XGBoost on {} rows, validating on {} rows ({} features)",
                       train_rows.size(), valid_rows.size(), frame.names.size()));
  ENGAGE_ASSIGN_OR_RETURN(Model model, ml::Train(train, &valid, o.params, o.rounds));
  ENGAGE_ASSIGN_OR_RETURN(std::vector<float> scores, model.Predict(valid.x));
  ENGAGE_ASSIGN_OR_RETURN(EvalReport report, Evaluate(valid.labels, scores));
  // Baseline: recency only (more recent activity, higher score).
  int recency = frame.Find("recency_days");
  std::vector<float> baseline(valid_rows.size());
  for (size_t i = 0; i < valid_rows.size(); ++i) {
    float r = recency >= 0
                  ? frame.columns[static_cast<size_t>(recency)][static_cast<size_t>(valid_rows[i])]
                  : kNaN;
    baseline[i] = std::isnan(r) ? -1e9f : -r;
  }
  ENGAGE_ASSIGN_OR_RETURN(double baseline_auc, RocAuc(valid.labels, baseline));

  out.valid = report;
  out.baseline_auc = baseline_auc;
  out.summary = model.summary();
  out.rows_train = static_cast<int64_t>(train_rows.size());
  out.rows_valid = static_cast<int64_t>(valid_rows.size());
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // The model card.
  Json card = Json::object();
  card["kind"] = "engagement";
  card["fingerprint"] = out.fingerprint;
  card["params"] = o.params.ToJson();
  card["features"] = frame.names;
  card["data"] = Json{
      {"events_table", config_.events_table},         {"customers_table", config_.customers_table},
      {"qualifying_types", config_.qualifying_types}, {"horizon_days", config_.horizon_days},
      {"lookback_days", config_.lookback_days},       {"cutoffs", cutoffs},
      {"validation_cutoff", cutoffs.back()},          {"data_end", data_end}};
  Json valid_metrics = report.ToJson();
  Json metrics = Json::object();
  metrics["valid"] =
      Json{{"auc", report.roc_auc}, {"pr_auc", report.pr_auc},       {"log_loss", report.log_loss},
           {"brier", report.brier}, {"base_rate", report.base_rate}, {"rows", report.count}};
  metrics["baseline"] = Json{{"name", "recency only"}, {"auc", baseline_auc}};
  metrics["report"] = std::move(valid_metrics);
  card["metrics"] = std::move(metrics);
  card["training"] = Json{{"rows_train", out.rows_train},
                          {"rows_valid", out.rows_valid},
                          {"rounds", out.summary.rounds_run},
                          {"best_iteration", out.summary.best_iteration},
                          {"seconds", out.seconds}};
  card["btyd"] = std::move(btyd_params);
  // What `engage drift --model` compares a scoring run with: the features of the labelled rows
  // (training and validation cutoffs) and the scores of the validation rows.
  Json profile_features = Json::array();
  for (size_t j = 0; j < frame.names.size(); ++j) {
    std::vector<float> values;
    values.reserve(train_rows.size() + valid_rows.size());
    for (const auto* rows : {&train_rows, &valid_rows}) {
      for (int64_t r : *rows) values.push_back(frame.columns[j][static_cast<size_t>(r)]);
    }
    Json f = DriftProfileOf(values);
    f["name"] = frame.names[j];
    profile_features.push_back(std::move(f));
  }
  card["drift_profile"] = Json{{"features", std::move(profile_features)},
                               {"score", DriftProfileOf(scores)},
                               {"rows", out.rows_train + out.rows_valid}};
  // Lineage: the ingests whose files the features read.
  std::vector<LineageRef> lineage;
  lineage.push_back({"table", config_.events_table});
  std::set<std::string> ingests;
  for (const std::string& table : {config_.events_table, config_.customers_table}) {
    if (table.empty()) continue;
    auto files = engine_.CatalogFiles(table);
    if (!files.ok()) continue;
    for (const auto& f : *files) ingests.insert(f.ingest_id);
  }
  for (const auto& id : ingests) lineage.push_back({"ingest", id});
  card["ingest_ids"] = std::vector<std::string>(ingests.begin(), ingests.end());
  Stage(o, "registering the model");
  ENGAGE_ASSIGN_OR_RETURN(std::string model_json, model.ToJsonText());
  auto registered = registry_.Register(o.model_name, model_json, std::move(card), lineage);
  // Another process registered the same training meanwhile: that version stands.
  if (registered.status().code() == StatusCode::kAlreadyExists) return existing();
  ENGAGE_ASSIGN_OR_RETURN(out.version, std::move(registered));
  return out;
}

}  // namespace engage::ml
