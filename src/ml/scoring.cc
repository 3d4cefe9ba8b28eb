#include "engage/ml/scoring.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include "engage/core/fs.h"
#include "engage/core/ids.h"
#include "engage/lake/duck.h"
#include "engage/lake/ingest.h"
#include "engage/ml/engagement.h"
#include "engage/ml/xgb.h"

namespace engage::ml {

namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Json ScoreReport::ToJson() const {
  Json j = Json::object();
  j["model"] = model;
  j["version"] = version;
  j["cutoff"] = cutoff;
  j["scored_at"] = scored_at;
  j["customers"] = customers;
  j["segments"] = segments;
  j["mean_score"] = mean_score;
  j["features_seconds"] = features_seconds;
  j["predict_seconds"] = predict_seconds;
  j["predict_customers_per_second"] =
      predict_seconds > 0 ? static_cast<double>(customers) / predict_seconds : 0.0;
  j["reasons_seconds"] = reasons_seconds;
  j["write_seconds"] = write_seconds;
  j["ingest_id"] = ingest_id;
  return j;
}

std::string Segment(const EngagementConfig& config, double score) {
  for (size_t i = 0; i < config.segment_thresholds.size(); ++i) {
    if (score >= config.segment_thresholds[i]) return config.segment_names[i];
  }
  return config.segment_names.back();
}

Result<ScoreReport> ScoreAll(lake::Lake& lake, sql::QueryEngine& engine, ModelRegistry& registry,
                             const ScoreOptions& o) {
  auto stage = [&o](const std::string& what) {
    if (o.stage) o.stage(what);
  };
  const EngagementConfig& cfg = lake.config().engagement;
  ENGAGE_ASSIGN_OR_RETURN(ModelVersion v, registry.Resolve(o.model));
  std::string kind = v.card.value("kind", std::string("engagement"));
  if (kind != "engagement") {
    return FailedPreconditionError(fmt::format(
        "{}@{} is a model of kind '{}' (trained with engage train --table), not an engagement "
        "model: engage score scores the models of `engage train` without --table",
        v.name, v.version, kind));
  }
  features::FeatureBuilder builder(engine, cfg);
  if (!o.cutoff.empty()) ENGAGE_RETURN_IF_ERROR(builder.CheckCutoffs({o.cutoff}));
  ENGAGE_ASSIGN_OR_RETURN(Model model, Model::Load(v.model_path(), o.nthread));
  std::vector<std::string> names = model.FeatureNames();
  ScoreReport report;
  report.model = v.name;
  report.version = v.version;
  report.cutoff = o.cutoff;
  if (report.cutoff.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(report.cutoff, builder.DataEnd());
  }
  bool btyd = false;
  for (const auto& n : names) btyd |= n.rfind("btyd_", 0) == 0;
  stage(fmt::format("building features at {}", report.cutoff));
  auto t0 = std::chrono::steady_clock::now();
  EngagementTrainer trainer(engine, registry, cfg);
  ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame frame,
                          trainer.BuildFeatures({report.cutoff}, btyd));
  report.features_seconds = Since(t0);
  // The model's columns, in its order.
  DenseMatrix x(frame.rows(), static_cast<int64_t>(names.size()));
  for (size_t j = 0; j < names.size(); ++j) {
    int src = frame.Find(names[j]);
    if (src < 0) {
      return FailedPreconditionError(fmt::format(
          "model {}@{} needs feature '{}', which the current [engagement] configuration does "
          "not produce; retrain the model or restore the configuration",
          v.name, v.version, names[j]));
    }
    const std::vector<float>& col = frame.columns[static_cast<size_t>(src)];
    for (int64_t i = 0; i < frame.rows(); ++i) x.at(i, static_cast<int64_t>(j)) = col[i];
  }
  stage(fmt::format("scoring {} customers with {}@{}", frame.rows(), v.name, v.version));
  t0 = std::chrono::steady_clock::now();
  ENGAGE_ASSIGN_OR_RETURN(std::vector<float> scores, model.Predict(x));
  report.predict_seconds = Since(t0);
  std::vector<std::string> reasons(static_cast<size_t>(frame.rows()));
  if (o.reasons && frame.rows() > 0) {
    stage("explaining scores (top 3 reasons per customer)");
    t0 = std::chrono::steady_clock::now();
    ENGAGE_ASSIGN_OR_RETURN(ContributionMatrix contribs, model.Contributions(x));
    for (int64_t i = 0; i < frame.rows(); ++i) {
      ENGAGE_ASSIGN_OR_RETURN(std::vector<Reason> top, TopReasons(contribs.Row(i), names, 3));
      Json arr = Json::array();
      for (const Reason& r : top) {
        arr.push_back(
            Json{{"feature", r.feature}, {"contribution", std::round(r.contribution * 1e4) / 1e4}});
      }
      reasons[static_cast<size_t>(i)] = DumpJson(arr);
    }
    report.reasons_seconds = Since(t0);
  }

  // The rows: a Parquet file in the home's tmp/, ingested into `predictions`.
  stage("writing the predictions table");
  t0 = std::chrono::steady_clock::now();
  int64_t now = lake.clock().NowMicros();
  report.scored_at = FormatIsoUtc(now);
  int alive = frame.Find("btyd_p_alive"), expected = frame.Find("btyd_expected_transactions"),
      clv = frame.Find("btyd_clv");
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckDb db, lake::DuckDb::Open({}));
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckConn conn, db.Connect());
  ENGAGE_RETURN_IF_ERROR(conn.Exec(
      "CREATE TABLE p (customer_id VARCHAR, score DOUBLE, segment VARCHAR, p_alive DOUBLE, "
      "expected_transactions DOUBLE, clv DOUBLE, reasons VARCHAR)"));
  {
    lake::ChunkWriter w(
        conn, "p",
        {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_DOUBLE,
         DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_VARCHAR});
    double sum = 0;
    for (int64_t i = 0; i < frame.rows(); ++i) {
      size_t k = static_cast<size_t>(i);
      const std::string& id = frame.customer_ids[k];
      w.SetString(0, id.data(), id.size());
      w.Set<double>(1, scores[k]);
      std::string seg = Segment(cfg, scores[k]);
      w.SetString(2, seg.data(), seg.size());
      ++report.segments[seg];
      sum += scores[k];
      int cols[] = {alive, expected, clv};
      for (int c = 0; c < 3; ++c) {
        float val = cols[c] >= 0 ? frame.columns[static_cast<size_t>(cols[c])][k] : NAN;
        if (std::isnan(val)) {
          w.SetNull(3 + c);
        } else {
          w.Set<double>(3 + c, val);
        }
      }
      if (reasons[k].empty()) {
        w.SetNull(6);
      } else {
        w.SetString(6, reasons[k].data(), reasons[k].size());
      }
      ENGAGE_RETURN_IF_ERROR(w.Commit());
    }
    ENGAGE_RETURN_IF_ERROR(w.Close());
    report.customers = frame.rows();
    report.mean_score = frame.rows() > 0 ? sum / static_cast<double>(frame.rows()) : 0;
  }
  PosixFileSystem fs;
  ENGAGE_RETURN_IF_ERROR(fs.CreateDirs(lake.home().tmp()));
  std::string file = fmt::format("{}/predictions-{}-{}.parquet", lake.home().tmp(),
                                 NewId(lake.clock()), ::getpid());
  Cleanup remove_file([&] { (void)fs.RemoveAll(file); });
  ENGAGE_RETURN_IF_ERROR(conn.Exec(fmt::format(
      "COPY (SELECT customer_id, TIMESTAMP '{at}' AS scored_at, DATE '{cutoff}' AS cutoff, score, "
      "segment, p_alive, expected_transactions, clv, reasons, {model} AS model, {version}::BIGINT "
      "AS model_version FROM p ORDER BY customer_id) TO {file} (FORMAT parquet)",
      fmt::arg("at", FormatIsoUtc(now).substr(0, 19)), fmt::arg("cutoff", report.cutoff),
      fmt::arg("model", lake::SqlQuote(v.name)), fmt::arg("version", v.version),
      fmt::arg("file", lake::SqlQuote(file)))));
  lake::IngestRequest req;
  req.table = "predictions";
  req.inputs = {file};
  ENGAGE_ASSIGN_OR_RETURN(lake::IngestReport ingested, lake::Ingest(lake, req));
  if (ingested.record.rows_rejected > 0) {
    return InternalError(fmt::format("{} prediction rows were rejected (see {})",
                                     ingested.record.rows_rejected, ingested.quarantine_file));
  }
  report.ingest_id = ingested.record.id;
  report.write_seconds = Since(t0);
  return report;
}

}  // namespace engage::ml
