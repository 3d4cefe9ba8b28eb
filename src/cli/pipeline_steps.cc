// Engage's ML steps for ASL Task states (engage:quality, engage:features, engage:train,
// engage:evaluate, engage:promote, engage:score, engage:publish, engage:cost-summary,
// engage:notify) and `engage run pipeline`, which runs pipelines/engagement.asl.json.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "engage/core/clock.h"
#include "engage/core/fs.h"
#include "engage/features/features.h"
#include "engage/flow/tasks.h"
#include "engage/lake/duck.h"
#include "engage/ml/engagement.h"
#include "engage/ml/registry.h"
#include "engage/ml/scoring.h"
#include "engage/serve/store.h"
#include "engage/sql/query.h"

namespace engage::cli {

namespace {

struct Opened {
  std::unique_ptr<lake::Lake> lake;
  std::unique_ptr<sql::QueryEngine> engine;
  std::unique_ptr<ml::ModelRegistry> registry;
};

Result<Opened> OpenAll(const HomePaths& home, bool writer) {
  Opened o;
  lake::LakeOptions opts;
  opts.writer = writer;
  ENGAGE_ASSIGN_OR_RETURN(o.lake, lake::Lake::Open(home, opts));
  ENGAGE_ASSIGN_OR_RETURN(o.engine, sql::QueryEngine::Open(*o.lake));
  ENGAGE_ASSIGN_OR_RETURN(o.registry, ml::ModelRegistry::Open(home, SystemClock::Default()));
  return o;
}

std::string StringParam(const Json& p, const char* key, const std::string& fallback) {
  if (p.is_object() && p.contains(key) && p[key].is_string()) return p[key].get<std::string>();
  return fallback;
}

// The model a step acts on, as a role resource: "model/<name>" from the parameter `key`
// ("name", "name@alias" or "name@version"), else from `fallback`.
flow::StepResourcesFn ModelOf(const char* key, const char* fallback) {
  return [key, fallback](const Json& p) -> Result<std::vector<std::string>> {
    std::string ref = StringParam(p, key, fallback);
    return std::vector<std::string>{"model/" + ref.substr(0, ref.find('@'))};
  };
}

// engage:publish: every model it publishes.
Result<std::vector<std::string>> PublishedModels(const Json& p) {
  std::vector<std::string> out;
  if (p.is_object() && p.contains("models") && p["models"].is_array()) {
    for (const auto& m : p["models"]) {
      if (!m.is_string()) return InvalidArgumentError("publish: models must be strings");
      std::string ref = m.get<std::string>();
      out.push_back("model/" + ref.substr(0, ref.find('@')));
    }
    return out;
  }
  std::string ref = StringParam(p, "model", "engagement@champion");
  out.push_back("model/" + ref.substr(0, ref.find('@')));
  return out;
}

// Data-quality checks on the events before training: enough history, qualifying events, no
// sudden drop in volume, few rejected rows in the latest ingest.
Result<Json> QualityChecks(Opened& o) {
  const EngagementConfig& cfg = o.lake->config().engagement;
  features::FeatureBuilder builder(*o.engine, cfg);
  ENGAGE_ASSIGN_OR_RETURN(std::string end, builder.DataEnd());
  ENGAGE_ASSIGN_OR_RETURN(int64_t end_day, features::ParseDay(end));
  std::string types;
  for (const auto& q : cfg.qualifying_types)
    types += (types.empty() ? "" : ", ") + lake::SqlQuote(q);
  std::string time_col = cfg.time_column;
  if (time_col.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, o.lake->config().Table(cfg.events_table));
    time_col = spec->time_column;
  }
  std::string sql = fmt::format(
      "SELECT count(*), count(DISTINCT {cust}), count(*) FILTER (WHERE {type} IN ({types})), "
      "min(CAST({time} AS DATE))::VARCHAR, "
      "count(*) FILTER (WHERE dt >= DATE '{w1}'), "
      "count(*) FILTER (WHERE dt >= DATE '{w2}' AND dt < DATE '{w1}') FROM {tbl}",
      fmt::arg("cust", lake::SqlIdent(cfg.customer_column)),
      fmt::arg("type", lake::SqlIdent(cfg.type_column)), fmt::arg("types", types),
      fmt::arg("time", lake::SqlIdent(time_col)), fmt::arg("w1", features::FormatDay(end_day - 7)),
      fmt::arg("w2", features::FormatDay(end_day - 14)),
      fmt::arg("tbl", lake::SqlIdent(cfg.events_table)));
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckResult r, o.engine->RunTrusted(sql, "quality"));
  int64_t events = r.Int(0, 0), customers = r.Int(1, 0), qualifying = r.Int(2, 0);
  std::string first = r.Str(3, 0).value_or(end);
  int64_t last7 = r.Int(4, 0), prev7 = r.Int(5, 0);
  ENGAGE_ASSIGN_OR_RETURN(int64_t first_day, features::ParseDay(first));
  int64_t days = end_day - first_day;
  int64_t needed = cfg.horizon_days + cfg.cutoff_step_days * (cfg.training_cutoffs - 1) + 30;
  Json checks = Json::array();
  bool passed = true;
  auto check = [&](const char* name, bool ok, bool blocking, std::string detail) {
    checks.push_back(Json{{"check", name},
                          {"ok", ok},
                          {"severity", blocking ? "error" : "warning"},
                          {"detail", std::move(detail)}});
    if (!ok && blocking) passed = false;
  };
  check("events_present", events > 0, true, fmt::format("{} events", events));
  check("qualifying_events", qualifying > 0, true,
        fmt::format("{} events of the qualifying types", qualifying));
  check("history_days", days >= needed, true,
        fmt::format("{} days of history; training needs at least {}", days, needed));
  double ratio = prev7 > 0 ? static_cast<double>(last7) / static_cast<double>(prev7) : 1.0;
  check("volume_last_7_days", ratio >= 0.5, false,
        fmt::format("{} events in the last 7 days vs {} the 7 before ({:.2f}x)", last7, prev7,
                    ratio));
  ENGAGE_ASSIGN_OR_RETURN(auto ingests, o.lake->catalog().RecentIngests(50));
  auto latest = std::find_if(ingests.begin(), ingests.end(),
                             [&](const auto& i) { return i.table == cfg.events_table; });
  if (latest != ingests.end()) {
    const auto& last = *latest;
    double rejected = last.rows_read > 0 ? static_cast<double>(last.rows_rejected) /
                                               static_cast<double>(last.rows_read)
                                         : 0.0;
    check("latest_ingest_rejects", rejected <= 0.01, false,
          fmt::format("ingest {} rejected {} of {} rows", last.id, last.rows_rejected,
                      last.rows_read));
  }
  return Json{{"passed", passed},           {"events", events},
              {"customers", customers},     {"qualifying_events", qualifying},
              {"first_day", first},         {"data_end", end},
              {"checks", std::move(checks)}};
}

}  // namespace

void RegisterMlSteps(flow::TaskRegistry& tasks, const HomePaths& home) {
  tasks.RegisterStep(
      "quality",
      [home](const Json&) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, false));
        ENGAGE_ASSIGN_OR_RETURN(Json report, QualityChecks(o));
        if (!report["passed"].get<bool>()) {
          std::string failed;
          for (const Json& c : report["checks"]) {
            if (!c["ok"].get<bool>() && c["severity"] == "error") {
              failed += (failed.empty() ? "" : "; ") + c["detail"].get<std::string>();
            }
          }
          return FailedPreconditionError("data-quality checks failed: " + failed);
        }
        return report;
      },
      "Data-quality checks on the events ([engagement]); fails on blocking problems");
  tasks.RegisterStep(
      "features",
      [home](const Json&) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, false));
        features::FeatureBuilder builder(*o.engine, o.lake->config().engagement);
        ENGAGE_ASSIGN_OR_RETURN(auto cutoffs, builder.TrainingCutoffs());
        ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame f, builder.Build(cutoffs));
        int64_t positive = 0;
        for (float l : f.labels) positive += l == 1 ? 1 : 0;
        return Json{{"cutoffs", cutoffs},
                    {"rows", f.rows()},
                    {"features", f.names.size()},
                    {"positive_rate", f.rows() > 0 ? static_cast<double>(positive) / f.rows() : 0}};
      },
      "Builds the point-in-time training features and reports their shape");
  tasks.RegisterStep(
      "train",
      [home](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, false));
        ml::EngagementTrainer trainer(*o.engine, *o.registry, o.lake->config().engagement);
        ml::EngagementTrainOptions options;
        options.model_name = StringParam(p, "model", "engagement");
        ENGAGE_ASSIGN_OR_RETURN(ml::EngagementTrainResult r, trainer.Train(options));
        Json j = r.ToJson();
        j.erase("valid");
        j["auc"] = r.valid.roc_auc;
        j["pr_auc"] = r.valid.pr_auc;
        j["log_loss"] = r.valid.log_loss;
        return j;
      },
      "Trains and registers the engagement model: {\"model\": \"engagement\"}",
      ModelOf("model", "engagement"));
  tasks.RegisterStep(
      "evaluate",
      [home](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, false));
        std::string name = StringParam(p, "model", "engagement");
        if (!p.contains("version") || !p["version"].is_number_integer()) {
          return InvalidArgumentError("engage:evaluate needs {\"model\", \"version\": n}");
        }
        ENGAGE_ASSIGN_OR_RETURN(ml::ModelVersion v,
                                o.registry->Get(name, p["version"].get<int64_t>()));
        const ModelsConfig& gate = o.lake->config().models;
        auto value = v.Metric(gate.promotion_metric);
        auto champion = o.registry->Resolve(name + "@champion");
        std::optional<double> champ_value;
        if (champion.ok()) champ_value = champion->Metric(gate.promotion_metric);
        bool quality = value && *value >= gate.min_quality;
        bool beats = value && (!champ_value || *value > *champ_value + gate.min_improvement);
        Json j = Json::object();
        j["model"] = name;
        j["version"] = v.version;
        j["metric"] = gate.promotion_metric;
        j["value"] = value ? Json(*value) : Json();
        j["baseline_auc"] = v.card["metrics"]["baseline"]["auc"];
        j["champion_version"] = champion.ok() ? Json(champion->version) : Json();
        j["champion_value"] = champ_value ? Json(*champ_value) : Json();
        j["min_quality"] = gate.min_quality;
        j["passes_quality"] = quality;
        j["beats_champion"] = beats;
        j["promote"] = quality && beats;
        return j;
      },
      "Compares a model version with the champion and the quality bar ([models])",
      ModelOf("model", "engagement"));
  tasks.RegisterStep(
      "promote",
      [home](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, false));
        std::string name = StringParam(p, "model", "engagement");
        if (!p.contains("version") || !p["version"].is_number_integer()) {
          return InvalidArgumentError("engage:promote needs {\"model\", \"version\": n}");
        }
        const ModelsConfig& m = o.lake->config().models;
        ml::PromotionGate gate;
        gate.metric = m.promotion_metric;
        gate.min_value = m.min_quality;
        gate.min_improvement = m.min_improvement;
        ENGAGE_ASSIGN_OR_RETURN(auto d,
                                o.registry->Promote(name, p["version"].get<int64_t>(), gate));
        Json j = d.ToJson();
        j["model"] = name;
        j["version"] = p["version"];
        return j;
      },
      "Promotes a version to champion through the gate: {\"model\", \"version\"}",
      ModelOf("model", "engagement"));
  tasks.RegisterStep(
      "score",
      [home](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, true));
        ml::ScoreOptions options;
        options.model = StringParam(p, "model", "engagement@champion");
        ENGAGE_ASSIGN_OR_RETURN(ml::ScoreReport r,
                                ml::ScoreAll(*o.lake, *o.engine, *o.registry, options));
        return r.ToJson();
      },
      "Scores every customer into the predictions table: {\"model\": \"engagement@champion\"}",
      ModelOf("model", "engagement@champion"));
  tasks.RegisterStep(
      "publish",
      [home](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, false));
        std::vector<std::string> refs;
        if (p.contains("models") && p["models"].is_array()) {
          for (const auto& m : p["models"]) {
            if (!m.is_string()) return InvalidArgumentError("publish: models must be strings");
            refs.push_back(m.get<std::string>());
          }
        } else if (p.contains("version") && p["version"].is_number_integer()) {
          refs.push_back(fmt::format("{}@{}", StringParam(p, "model", "engagement"),
                                     p["version"].get<int64_t>()));
        } else {
          refs.push_back(StringParam(p, "model", "engagement@champion"));
        }
        ENGAGE_ASSIGN_OR_RETURN(serve::PublishReport r, PublishModels(*o.lake, refs, 3));
        Json j = r.ToJson();
        j["published"] = true;
        return j;
      },
      "Publishes the latest predictions to the serving store (LMDB under serving/): "
      "{\"model\": \"engagement\", \"version\": 3}, {\"model\": \"engagement@champion\"} or "
      "{\"models\": [\"engagement@champion\", "
      "\"engagement@challenger\"]}",
      PublishedModels);
  tasks.RegisterStep(
      "cost-summary",
      [home](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, false));
        std::string since = StringParam(p, "since", "");
        ENGAGE_ASSIGN_OR_RETURN(
            SqliteStmt st,
            o.lake->catalog().db().Prepare(
                "SELECT source, count(*), sum(bytes_scanned), sum(cost_usd), sum(elapsed_ms) "
                "FROM query_history WHERE at >= ? GROUP BY source ORDER BY source"));
        st.Bind(1, since);
        Json by_source = Json::array();
        int64_t bytes = 0;
        double cost = 0;
        while (true) {
          ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
          if (!row) break;
          by_source.push_back(Json{{"source", st.Text(0)},
                                   {"queries", st.Int(1)},
                                   {"bytes_scanned", st.Int(2)},
                                   {"cost_usd", st.Double(3)},
                                   {"elapsed_ms", st.Double(4)}});
          bytes += st.Int(2);
          cost += st.Double(3);
        }
        return Json{{"since", since},
                    {"bytes_scanned", bytes},
                    {"cost_usd", cost},
                    {"by_source", std::move(by_source)}};
      },
      "Bytes scanned and cost of every query since a time: {\"since\": \"<ISO time>\"}");
  tasks.RegisterStep(
      "notify",
      [home](const Json& p) -> Result<Json> {
        // A notification is a line in <home>/notifications.log (and on stderr): a webhook or
        // SNS topic on AWS.
        std::string line =
            fmt::format("{} {}\n", FormatIsoUtc(SystemClock::Default().NowMicros()), DumpJson(p));
        PosixFileSystem fs;
        ENGAGE_RETURN_IF_ERROR(fs.AppendFile(home.root + "/notifications.log", line));
        std::fprintf(stderr, "notification: %s", line.c_str());
        return Json{{"notified", true}};
      },
      "Records a notification in <home>/notifications.log");
}

}  // namespace engage::cli
