#include "engage/app/app.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "engage/app/pipelines.h"
#include "engage/features/features.h"
#include "engage/flow/registry.h"
#include "engage/lake/duck.h"
#include "engage/serve/ab.h"
#include "engage/serve/machines.h"

namespace engage::app {

Json EngagementTraining::ToJson() const {
  Json j = trained.ToJson();
  j["became_champion"] = became_champion;
  j["champion_note"] = champion_note;
  return j;
}

Result<std::unique_ptr<App>> App::Open(const HomePaths& home, AppOptions options) {
  std::unique_ptr<App> app(new App());
  app->home_ = home;
  app->clock_ = options.clock != nullptr ? options.clock : &SystemClock::Default();
  lake::LakeOptions lake_options;
  lake_options.clock = app->clock_;
  ENGAGE_ASSIGN_OR_RETURN(app->lake_, lake::Lake::Open(home, lake_options));
  ENGAGE_ASSIGN_OR_RETURN(app->reads_, ReadSides::Open(home, *app->clock_, options.query_threads));
  ENGAGE_ASSIGN_OR_RETURN(app->registry_, ml::ModelRegistry::Open(home, *app->clock_));
  app->runner_ = std::make_unique<ExecutionRunner>(home, app->reads_);
  return app;
}

App::~App() {
  // Executions still running are stopped (ABORTED in their history) and joined.
  if (runner_) runner_->Shutdown(ExecutionRunner::ShutdownMode::kAbort, 10000);
}

Result<std::unique_ptr<lake::Lake>> App::OpenWriter() {
  lake::LakeOptions options;
  options.clock = clock_;
  options.writer = true;
  return lake::Lake::Open(home_, options);
}

Result<EngagementTraining> TrainEngagementModel(sql::QueryEngine& engine,
                                                ml::ModelRegistry& registry, const Config& config,
                                                const ml::EngagementTrainOptions& options) {
  ml::EngagementTrainer trainer(engine, registry, config.engagement);
  EngagementTraining out;
  ENGAGE_ASSIGN_OR_RETURN(out.trained, trainer.Train(options));
  const ml::ModelVersion& v = out.trained.version;
  auto champion = registry.Resolve(v.name + "@champion");
  if (champion.ok()) {
    out.champion_note = fmt::format(
        "{}@champion stays version {}: compare with `engage models diff {} {} {}` and promote "
        "with `engage models promote {} {}`",
        v.name, champion->version, v.name, champion->version, v.version, v.name, v.version);
    return out;
  }
  if (champion.status().code() != StatusCode::kNotFound) return champion.status();
  // The first version that passes the quality bar becomes champion, through the gate (so the
  // alias history records it like any promotion).
  ml::PromotionGate gate;
  gate.metric = config.models.promotion_metric;
  gate.min_value = config.models.min_quality;
  gate.min_improvement = 0;
  ENGAGE_ASSIGN_OR_RETURN(ml::PromotionDecision d, registry.Promote(v.name, v.version, gate));
  out.became_champion = d.promoted;
  out.champion_note =
      d.promoted ? fmt::format(
                       "{}@{} is the first version of '{}' that passes the quality bar: "
                       "it is now {}@champion",
                       v.name, v.version, v.name, v.name)
                 : fmt::format("{}@{} did not become champion: {}", v.name, v.version, d.reason);
  return out;
}

Result<EngagementTraining> App::TrainEngagement(const ml::EngagementTrainOptions& options) {
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<ReadSide> reads, reads_->Current());
  return TrainEngagementModel(reads->query(), *registry_, reads->config(), options);
}

Result<serve::PublishReport> PublishModels(lake::Lake& lake, const std::vector<std::string>& refs,
                                           int keep, const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(auto registry, ml::ModelRegistry::Open(lake.home(), clock));
  serve::PublishOptions o;
  o.keep = keep;
  for (const auto& ref : refs) {
    ENGAGE_ASSIGN_OR_RETURN(ml::ModelVersion v, registry->Resolve(ref));
    if (o.versions.empty()) {
      o.model = v.name;
    } else if (v.name != o.model) {
      return InvalidArgumentError(fmt::format(
          "one snapshot serves one model: '{}' is not a version of '{}'", ref, o.model));
    }
    o.versions.push_back(v.version);
  }
  // A traffic split on the model: its arms' versions are published with it.
  ENGAGE_ASSIGN_OR_RETURN(auto splits, serve::SplitStore::Open(lake.home().meta_db(), clock));
  ENGAGE_ASSIGN_OR_RETURN(std::optional<serve::TrafficSplit> split, splits->Get(o.model));
  if (split) {
    for (auto& arm : split->arms) {
      auto v = registry->Resolve(fmt::format("{}@{}", o.model, arm.ref));
      if (!v.ok()) {
        return FailedPreconditionError(fmt::format(
            "the traffic split of '{}' has arm '{}' = {}@{}: {} (change the split with engage ab "
            "split set, or clear it)",
            o.model, arm.name, o.model, arm.ref, v.status().message()));
      }
      arm.version = v->version;
      if (std::find(o.versions.begin(), o.versions.end(), v->version) == o.versions.end()) {
        o.versions.push_back(v->version);
      }
    }
    o.split = std::move(split);
  }
  return serve::Publish(lake, o, clock);
}

Result<serve::PublishReport> App::Publish(const std::vector<std::string>& refs, int keep) {
  return PublishModels(*lake_, refs, keep, *clock_);
}

// Data-quality checks on the events before training: enough history, qualifying events, no
// sudden drop in volume, few rejected rows in the latest ingest.
Result<Json> RunQualityChecks(lake::Lake& lake, sql::QueryEngine& engine) {
  const EngagementConfig& cfg = lake.config().engagement;
  features::FeatureBuilder builder(engine, cfg);
  ENGAGE_ASSIGN_OR_RETURN(std::string end, builder.DataEnd());
  ENGAGE_ASSIGN_OR_RETURN(int64_t end_day, features::ParseDay(end));
  std::string types;
  for (const auto& q : cfg.qualifying_types)
    types += (types.empty() ? "" : ", ") + lake::SqlQuote(q);
  std::string time_col = cfg.time_column;
  if (time_col.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, lake.config().Table(cfg.events_table));
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
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckResult r, engine.RunTrusted(sql, "quality"));
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
  ENGAGE_ASSIGN_OR_RETURN(auto ingests, lake.catalog().RecentIngests(50));
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

Result<Json> App::StartRegisteredExecution(const Json& request) {
  if (!request.is_object()) return InvalidArgumentError("the request must be a JSON object");
  if (request.contains("definition")) {
    return InvalidArgumentError(
        "inline definitions are not run: register the state machine first (PUT "
        "/v1/state-machines/{name} or `engage flow register`), then send {\"state_machine\": "
        "NAME, \"input\": {...}}");
  }
  std::string machine_name;
  bool shipped = false;
  if (request.contains("pipeline")) {
    if (!request["pipeline"].is_string() ||
        request["pipeline"].get<std::string>() != kEngagementPipelineName) {
      return NotFoundError(
          "no shipped pipeline of that name (the shipped one is 'engagement'; register others "
          "and start them with {\"state_machine\": NAME})");
    }
    machine_name = kEngagementPipelineName;
    shipped = true;
  } else if (request.contains("state_machine") && request["state_machine"].is_string()) {
    machine_name = request["state_machine"].get<std::string>();
  } else {
    return InvalidArgumentError(
        "send {\"state_machine\": NAME, \"input\": {...}} (a registered state machine) or "
        "{\"pipeline\": \"engagement\"}");
  }
  ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(machine_name));
  ExecutionRequest run;
  if (request.contains("name")) {
    if (!request["name"].is_string()) return InvalidArgumentError("name must be a string");
    run.name = request["name"].get<std::string>();
    ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(run.name, "execution name"));
  }
  Json input = request.value("input", Json::object());
  if (!input.is_object()) return InvalidArgumentError("input must be a JSON object");
  ENGAGE_ASSIGN_OR_RETURN(auto machines,
                          flow::StateMachineRegistry::Open(home_.meta_db(), *clock_));
  ENGAGE_ASSIGN_OR_RETURN(
      serve::RunnableMachine m,
      serve::LoadRunnableMachine(*machines, machine_name, EngagementPipelineDefinition()));
  if (shipped || machine_name == kEngagementPipelineName) {
    if (!input.contains("model")) input["model"] = "engagement";
    if (!input.contains("ingest")) input["ingest"] = Json::array();
  }
  // The definition runs parsed, from meta.db: no file is written for it.
  run.state_machine = m.name;
  run.machine = m.machine;
  run.definition = m.definition;
  run.input = std::move(input);
  run.role = m.role;
  run.background = true;
  ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, runner_->Start(std::move(run)));
  return rec.ToJson();
}

Result<Json> App::QualityChecks() {
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<ReadSide> reads, reads_->Current());
  return RunQualityChecks(*lake_, reads->query());
}

}  // namespace engage::app
