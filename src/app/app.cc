#include "engage/app/app.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
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
  app->monitoring_ = std::make_shared<Monitoring>(home, *app->clock_);
  ENGAGE_ASSIGN_OR_RETURN(
      app->reads_, ReadSides::Open(home, *app->clock_, options.query_threads, app->monitoring_));
  ENGAGE_ASSIGN_OR_RETURN(app->registry_, ml::ModelRegistry::Open(home, *app->clock_));
  app->runner_ = std::make_unique<ExecutionRunner>(home, app->reads_, app->monitoring_);
  app->serving_ = std::make_unique<Serving>(home);  // opened by whoever serves (Serving::Open)
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

namespace {

struct ChampionOutcome {
  bool became_champion = false;
  std::string note;
};

// The first version of a model that passes the quality bar becomes its champion, through the
// gate (so the alias history records it like any promotion); later ones are promoted by hand or
// by the pipeline. A version found identical to this training is not gated again.
Result<ChampionOutcome> ApplyFirstChampionRule(ml::ModelRegistry& registry, const Config& config,
                                               const ml::ModelVersion& v, bool existing) {
  ChampionOutcome out;
  auto champion = registry.Resolve(v.name + "@champion");
  if (!champion.ok() && champion.status().code() != StatusCode::kNotFound) {
    return champion.status();
  }
  if (champion.ok() && champion->version == v.version) {
    out.note = fmt::format("{}@{} is {}@champion", v.name, v.version, v.name);
    return out;
  }
  if (champion.ok()) {
    out.note = fmt::format(
        "{}@champion stays version {}: compare with `engage models diff {}@{} {}` and promote "
        "with `engage models promote {} {}`",
        v.name, champion->version, v.name, champion->version, v.version, v.name, v.version);
    return out;
  }
  if (existing) {
    out.note = fmt::format("'{}' has no champion: promote with `engage models promote {} {}`",
                           v.name, v.name, v.version);
    return out;
  }
  ml::PromotionGate gate = ml::PromotionGate::FromConfig(config.models);
  gate.min_improvement = 0;  // there is no champion to improve on
  ENGAGE_ASSIGN_OR_RETURN(ml::PromotionDecision d, registry.Promote(v.name, v.version, gate));
  out.became_champion = d.promoted;
  out.note = d.promoted
                 ? fmt::format(
                       "{}@{} is the first version of '{}' that passes the quality bar: "
                       "it is now {}@champion",
                       v.name, v.version, v.name, v.name)
                 : fmt::format("{}@{} did not become champion: {}", v.name, v.version, d.reason);
  return out;
}

}  // namespace

Result<EngagementTraining> TrainEngagementModel(sql::QueryEngine& engine,
                                                ml::ModelRegistry& registry, const Config& config,
                                                const ml::EngagementTrainOptions& options) {
  ml::EngagementTrainer trainer(engine, registry, config.engagement);
  EngagementTraining out;
  ENGAGE_ASSIGN_OR_RETURN(out.trained, trainer.Train(options));
  ENGAGE_ASSIGN_OR_RETURN(
      ChampionOutcome c,
      ApplyFirstChampionRule(registry, config, out.trained.version, out.trained.existing));
  out.became_champion = c.became_champion;
  out.champion_note = std::move(c.note);
  return out;
}

Json TableTraining::ToJson() const {
  Json j = Json::object();
  if (trained) {
    j = trained->ToJson();
  } else {
    // An identical version: what its card recorded, under the keys of TableTrainResult::ToJson.
    const Json& c = version.card;
    auto section = [&c](const char* name) {
      return c.contains(name) && c[name].is_object() ? c[name] : Json::object();
    };
    Json data = section("data"), training = section("training"), metrics = section("metrics");
    for (const char* k : {"table", "label", "id", "rows", "rows_unlabelled"}) {
      j[k] = data.value(k, Json());
    }
    for (const char* k : {"rows_train", "rows_valid", "rows_test", "rounds", "best_iteration"}) {
      j[k] = training.value(k, Json());
    }
    for (const char* k : {"auc", "pr_auc", "log_loss", "brier", "base_rate"}) {
      auto m = version.Metric(k);
      j[k] = m ? Json(*m) : Json();
    }
    for (const char* k : {"params", "top_features", "encoding"}) j[k] = c.value(k, Json());
    j["features"] = c.contains("features") ? Json(c["features"].size()) : Json();
    j["test"] = metrics.value("report", Json());
  }
  j["model"] = version.name;
  j["version"] = version.version;
  j["existing"] = existing;
  j["fingerprint"] = version.fingerprint();
  j["became_champion"] = became_champion;
  j["champion_note"] = champion_note;
  return j;
}

namespace {

std::string Num(double v) { return std::isnan(v) ? std::string("-") : fmt::format("{:.4f}", v); }

// The version found identical to a training, and the champion.
std::string ExistingText(const ml::ModelVersion& v, const std::string& champion_note) {
  return fmt::format("identical to version {} ({}@{}); nothing new registered\n\n{}\n{}\n",
                     v.version, v.name, v.version, v.ToText(), champion_note);
}

}  // namespace

std::string EngagementTraining::ToText() const {
  const ml::EngagementTrainResult& r = trained;
  if (r.existing) return ExistingText(r.version, champion_note);
  const Json& data = r.version.card.value("data", Json::object());
  return fmt::format(
      "registered {}@{}: {} training rows, {} validation rows (cutoff {})\n"
      "  validation AUC {} (recency-only baseline {}), PR-AUC {}, log-loss {}, Brier {}\n"
      "  {} rounds, best iteration {}, {:.1f} s\n  {}\n",
      r.version.name, r.version.version, r.rows_train, r.rows_valid,
      data.value("validation_cutoff", std::string("-")), Num(r.valid.roc_auc), Num(r.baseline_auc),
      Num(r.valid.pr_auc), Num(r.valid.log_loss), Num(r.valid.brier), r.summary.rounds_run,
      r.summary.best_iteration, r.seconds, champion_note);
}

std::string TableTraining::ToText() const {
  if (!trained) return ExistingText(version, champion_note);
  const ml::TableTrainResult& r = *trained;
  const ml::TrainSummary& s = r.summary();
  std::string out =
      fmt::format("table '{}', label '{}'{}: {} rows", r.table, r.label_column,
                  r.id_column.empty() ? "" : fmt::format(", id '{}'", r.id_column), r.rows);
  if (r.rows_unlabelled > 0)
    out += fmt::format(" ({} without a label, left out)", r.rows_unlabelled);
  out += fmt::format("\nsplit: {} train, {} validation, {} test; {} features from {} columns",
                     r.rows_train, r.rows_valid, r.rows_test, r.feature_names().size(),
                     r.encoding.columns.size());
  for (size_t i = 0; i < r.encoding.skipped.size(); ++i) {
    const auto& [col, why] = r.encoding.skipped[i];
    out += fmt::format("{}{} ({})", i == 0 ? "; skipped " : ", ", col, why);
  }
  out += fmt::format("\nboosting: {} rounds, best iteration {}", s.rounds_run, s.best_iteration);
  if (!s.metric.empty()) {
    out += fmt::format(" (validation {} {}){}", s.metric, Num(s.best_score),
                       s.stopped_early ? ", stopped early" : "");
  }
  const ml::EvalReport& t = r.test;
  out += fmt::format(
      "\n\ntest split: {} rows, {:.1f}% positive\n"
      "  ROC-AUC {}   PR-AUC {}   log-loss {}   Brier {}\n",
      t.count, 100 * t.base_rate, Num(t.roc_auc), Num(t.pr_auc), Num(t.log_loss), Num(t.brier));
  for (const auto& note : t.notes) out += fmt::format("  note: {}\n", note);
  if (!r.importance.empty()) {
    out += "\ntop features (mean |SHAP| on the test split, log-odds):\n";
    size_t width = 7;
    for (size_t i = 0; i < r.importance.size() && i < 10; ++i) {
      width = std::max(width, r.importance[i].feature.size());
    }
    out += fmt::format("{:<3} {:<{}} {}\n", "#", "feature", width, "mean |SHAP|");
    for (size_t i = 0; i < r.importance.size() && i < 10; ++i) {
      out += fmt::format("{:<3} {:<{}} {}\n", i + 1, r.importance[i].feature, width,
                         Num(r.importance[i].mean_abs_shap));
    }
  }
  return out + fmt::format("\nregistered {}@{}, trained in {:.1f} s\n  {}\n", version.name,
                           version.version, r.elapsed_s, champion_note);
}

Result<TableTraining> App::TrainTable(const ml::TableTrainRequest& request,
                                      const std::string& model_name,
                                      const ml::ProgressFn& progress) {
  TableTraining out;
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<ReadSide> reads, reads_->Current());
  WorkRecorder work(monitoring_.get(), reads->config(), "training", model_name,
                    CostContext{.model = model_name});
  sql::QueryEngine& engine = reads->query();
  ENGAGE_ASSIGN_OR_RETURN(std::string fingerprint, ml::TableTrainFingerprint(engine, request));
  ENGAGE_ASSIGN_OR_RETURN(auto same, registry_->FindIdentical(model_name, "table", fingerprint));
  if (!same) {
    ENGAGE_ASSIGN_OR_RETURN(ml::TableTrainResult r, ml::TrainOnTable(engine, request, progress));
    ENGAGE_ASSIGN_OR_RETURN(std::string model_json, r.model.ToJsonText());
    std::vector<ml::LineageRef> lineage = {{"table", request.table}};
    auto files = engine.CatalogFiles(request.table);
    std::set<std::string> ingests;
    if (files.ok()) {
      for (const auto& f : *files) ingests.insert(f.ingest_id);
    }
    for (const auto& id : ingests) lineage.push_back({"ingest", id});
    auto registered = registry_->Register(model_name, model_json,
                                          ml::TableTrainCard(request, r, fingerprint), lineage);
    if (registered.ok()) {
      out.version = std::move(*registered);
      out.trained.emplace(std::move(r));
    } else if (registered.status().code() != StatusCode::kAlreadyExists) {
      return registered.status();
    }
  }
  if (!out.trained) {  // identical to a registered version (found before or while registering)
    ENGAGE_ASSIGN_OR_RETURN(same, registry_->FindIdentical(model_name, "table", fingerprint));
    if (!same) return InternalError("the identical model version went away");
    out.version = std::move(*same);
    out.existing = true;
  }
  ENGAGE_ASSIGN_OR_RETURN(ChampionOutcome c, ApplyFirstChampionRule(*registry_, reads->config(),
                                                                    out.version, out.existing));
  out.became_champion = c.became_champion;
  out.champion_note = std::move(c.note);
  return out;
}

Result<EngagementTraining> App::TrainEngagement(const ml::EngagementTrainOptions& options) {
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<ReadSide> reads, reads_->Current());
  WorkRecorder work(monitoring_.get(), reads->config(), "training", options.model_name,
                    CostContext{.model = options.model_name});
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
  return PublishRecorded(monitoring_.get(), *lake_, refs, keep, *clock_);
}

Result<serve::PublishReport> PublishRecorded(Monitoring* monitoring, lake::Lake& lake,
                                             const std::vector<std::string>& refs, int keep,
                                             const Clock& clock) {
  std::string model = refs.empty() ? "" : refs.front().substr(0, refs.front().find('@'));
  WorkRecorder work(monitoring, lake.config(), "publish", model, CostContext{.model = model});
  ENGAGE_ASSIGN_OR_RETURN(serve::PublishReport r, PublishModels(lake, refs, keep, clock));
  // Each published prediction is one DynamoDB item written (one write unit up to 1 KB).
  int64_t items = 0;
  for (const serve::PublishedVersion& v : r.snapshot.versions) items += v.customers;
  work.set_units(items);
  return r;
}

Result<ml::ScoreReport> ScoreRecorded(Monitoring* monitoring, lake::Lake& lake,
                                      sql::QueryEngine& engine, ml::ModelRegistry& registry,
                                      const ml::ScoreOptions& options) {
  std::string model = options.model.substr(0, options.model.find('@'));
  WorkRecorder work(monitoring, lake.config(), "scoring", model, CostContext{.model = model});
  return ml::ScoreAll(lake, engine, registry, options);
}

Result<monitor::CostReport> App::CostReport(const monitor::CostQuery& query) {
  ENGAGE_ASSIGN_OR_RETURN(auto ledger, monitor::Ledger::Open(home_.meta_db(), *clock_));
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st, lake_->catalog().db().Prepare(
                                             "SELECT coalesce(sum(bytes), 0) FROM lake_files"));
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  ENGAGE_RETURN_IF_ERROR(ledger->SampleStorage(config().prices, row ? st.Int(0) : 0));
  return ledger->Report(query);
}

Result<std::unique_ptr<monitor::Budgets>> App::OpenBudgets() {
  return monitor::Budgets::Open(home_.meta_db(), *clock_);
}

Status App::SetBudget(const monitor::Budget& budget) {
  const std::string& scope = budget.scope;
  if (scope.rfind("table:", 0) == 0) {
    std::string table = scope.substr(6);
    if (!config().tables.count(table)) {
      std::string known;
      for (const auto& [name, spec] : config().tables) known += (known.empty() ? "" : ", ") + name;
      return InvalidArgumentError(
          fmt::format("budget '{}': scope {} names no table of engage.toml (tables: {})",
                      budget.name, scope, known));
    }
  } else if (scope.rfind("pipeline:", 0) == 0) {
    std::string name = scope.substr(9);
    bool ok = !name.empty() && name.size() <= 80;
    for (char c : name) {
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
    }
    if (!ok) {
      return InvalidArgumentError(fmt::format(
          "budget '{}': scope {} must name a state machine (1 to 80 letters, digits, '-' or '_')",
          budget.name, scope));
    }
  }
  ENGAGE_ASSIGN_OR_RETURN(auto budgets, OpenBudgets());
  return budgets->Set(budget);
}

Result<monitor::CheckRun> App::RunChecks(const monitor::CheckRequest& request) {
  ENGAGE_ASSIGN_OR_RETURN(auto reads, reads_->Current());
  ENGAGE_ASSIGN_OR_RETURN(monitor::CheckRun run,
                          monitor::RunChecks(*lake_, reads->query(), request));
  ENGAGE_ASSIGN_OR_RETURN(auto store, monitor::CheckStore::Open(home_.meta_db()));
  ENGAGE_RETURN_IF_ERROR(store->Record(run));
  monitoring_->RaiseCheckAlerts(config(), run);
  return run;
}

Result<std::vector<monitor::CheckRun>> App::CheckHistory(int64_t limit) {
  ENGAGE_ASSIGN_OR_RETURN(auto store, monitor::CheckStore::Open(home_.meta_db()));
  return store->History(limit);
}

Result<ml::HealthReport> App::ModelHealth(const std::string& model) {
  ENGAGE_ASSIGN_OR_RETURN(auto reads, reads_->Current());
  const Config& cfg = reads->config();
  ENGAGE_ASSIGN_OR_RETURN(ml::HealthReport r,
                          ml::ModelHealth(reads->query(), *registry_, cfg.engagement,
                                          {.model = model, .min_auc = cfg.models.health_min_auc}));
  if (!r.healthy) {
    monitor::Alert a;
    a.kind = "model_health";
    a.name = r.model;
    a.message = r.verdict;
    a.details = Json{{"model", r.model}, {"min_auc", r.min_auc}};
    if (const ml::HealthRun* run = r.LatestEvaluated()) {
      a.details["version"] = run->version;
      a.details["cutoff"] = run->cutoff;
      a.details["auc"] = run->auc;
    }
    // Once per verdict: asking again about the same run does not raise it again.
    monitoring_->RaiseOnce(cfg, std::move(a));
  }
  return r;
}

Result<std::unique_ptr<serve::SplitStore>> App::OpenSplits() {
  return serve::SplitStore::Open(home_.meta_db(), *clock_);
}

Result<serve::TrafficSplit> App::SetTrafficSplit(const std::string& model,
                                                 const std::vector<std::string>& arms,
                                                 const std::string& salt) {
  ENGAGE_ASSIGN_OR_RETURN(serve::TrafficSplit s, serve::TrafficSplit::Parse(model, arms, salt));
  for (const auto& a : s.arms)
    ENGAGE_RETURN_IF_ERROR(registry_->Resolve(model + "@" + a.ref).status());
  ENGAGE_ASSIGN_OR_RETURN(auto splits, OpenSplits());
  ENGAGE_RETURN_IF_ERROR(splits->Put(s));
  return s;
}

// Data-quality checks on the events before training: the checks declared on the events table
// ([[tables.<events>.checks]]; `engage init` writes the defaults there), or, when it declares
// none, the default engagement checks (DefaultEngagementChecks). Recorded like `engage check`'s.
Result<Json> RunQualityChecks(lake::Lake& lake, sql::QueryEngine& engine, Monitoring* monitoring) {
  const EngagementConfig& cfg = lake.config().engagement;
  features::FeatureBuilder builder(engine, cfg);
  ENGAGE_ASSIGN_OR_RETURN(std::string end, builder.DataEnd());
  std::string types;
  for (const auto& q : cfg.qualifying_types)
    types += (types.empty() ? "" : ", ") + lake::SqlQuote(q);
  std::string time_col = cfg.time_column;
  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, lake.config().Table(cfg.events_table));
  if (time_col.empty()) time_col = spec->time_column;
  std::string sql = fmt::format(
      "SELECT count(*), count(DISTINCT {cust}), count(*) FILTER (WHERE {type} IN ({types})), "
      "min(CAST({time} AS DATE))::VARCHAR FROM {tbl}",
      fmt::arg("cust", lake::SqlIdent(cfg.customer_column)),
      fmt::arg("type", lake::SqlIdent(cfg.type_column)), fmt::arg("types", types),
      fmt::arg("time", lake::SqlIdent(time_col)),
      fmt::arg("tbl", lake::SqlIdent(cfg.events_table)));
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckResult r, engine.RunTrusted(sql, "quality"));
  const std::vector<CheckSpec> defaults = DefaultEngagementChecks(cfg);
  monitor::CheckRequest request{.table = cfg.events_table};
  const bool declared = !spec->checks.empty();
  if (!declared) request.checks = &defaults;
  ENGAGE_ASSIGN_OR_RETURN(monitor::CheckRun run, monitor::RunChecks(lake, engine, request));
  ENGAGE_ASSIGN_OR_RETURN(auto store, monitor::CheckStore::Open(lake.home().meta_db()));
  ENGAGE_RETURN_IF_ERROR(store->Record(run));
  Json checks = Json::array();
  for (const auto& c : run.checks) {
    Json j = c.ToJson();
    j["declared"] = declared;
    checks.push_back(std::move(j));
  }
  if (!run.passed && monitoring != nullptr) monitoring->RaiseCheckAlerts(lake.config(), run);
  return Json{{"passed", run.passed},
              {"events", r.Int(0, 0)},
              {"customers", r.Int(1, 0)},
              {"qualifying_events", r.Int(2, 0)},
              {"first_day", r.Str(3, 0).value_or(end)},
              {"data_end", end},
              {"check_run", run.id},
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

Result<monitor::DriftReport> ModelDrift(sql::QueryEngine& engine, ml::ModelRegistry& registry,
                                        const monitor::DriftRequest& request) {
  const Config& config = engine.lake().config();
  ENGAGE_ASSIGN_OR_RETURN(ml::ModelVersion v, registry.Resolve(request.model));
  const std::string name = fmt::format("{}@{}", v.name, v.version);
  if (v.kind() != "engagement") {
    return FailedPreconditionError(fmt::format(
        "{} is a model of kind '{}': drift compares engagement models (scored by `engage score`) "
        "with their scoring runs",
        name, v.kind()));
  }
  const Json& profile = v.card.contains("drift_profile") ? v.card["drift_profile"] : Json();
  if (!profile.is_object() || !profile.contains("features") || !profile.contains("score")) {
    return FailedPreconditionError(fmt::format(
        "{} has no drift profile in its card (it was trained before Engage stored one): train a "
        "new version (engage train) to compare its scoring runs",
        name));
  }
  if (!config.tables.count("predictions")) {
    return FailedPreconditionError(
        fmt::format("no scoring run of {}: this home has no predictions table", name));
  }
  // The latest scoring run of this version.
  std::string where =
      fmt::format("model = {} AND model_version = {}", lake::SqlQuote(v.name), v.version);
  ENGAGE_ASSIGN_OR_RETURN(
      lake::DuckResult run,
      engine.RunTrusted(fmt::format("SELECT CAST(scored_at AS VARCHAR), CAST(cutoff AS VARCHAR), "
                                    "CAST(CAST(scored_at AS DATE) AS VARCHAR) FROM predictions "
                                    "WHERE {} ORDER BY scored_at DESC LIMIT 1",
                                    where),
                        "drift"));
  if (run.RowCount() == 0) {
    return FailedPreconditionError(fmt::format(
        "no scoring run of {} in the predictions table: run `engage score --model {}` first", name,
        name));
  }
  const std::string scored_at = run.Str(0, 0).value_or("");
  const std::string cutoff = run.Str(1, 0).value_or("");
  const std::string day = run.Str(2, 0).value_or("");
  std::set<std::string> wanted(request.columns.begin(), request.columns.end());
  std::set<std::string> known{"score"};
  for (const Json& f : profile["features"]) known.insert(f.value("name", ""));
  for (const auto& c : wanted) {
    if (!known.count(c)) {
      return NotFoundError(fmt::format(
          "{} has no feature '{}' (its features, and \"score\": see `engage models show {}`)", name,
          c, name));
    }
  }
  auto picked = [&](const std::string& c) { return wanted.empty() || wanted.count(c) > 0; };
  auto edges_of = [](const Json& p) {
    return p.value("edges", Json::array()).get<std::vector<double>>();
  };

  monitor::DriftReport report;
  report.model = name;
  report.thresholds = config.drift;
  Json cutoffs = v.card.value("data", Json::object()).value("cutoffs", Json::array());
  report.reference = cutoffs.empty() ? std::string("training")
                                     : fmt::format("training (cutoffs {} .. {})",
                                                   cutoffs.front().get<std::string>(),
                                                   cutoffs.back().get<std::string>());
  report.current = fmt::format("scoring run {} (cutoff {})", scored_at, cutoff);
  report.reference_rows = profile.value("rows", int64_t{0});

  // The scores of the run, binned on the training scores' edges.
  if (picked("score")) {
    const Json& p = profile["score"];
    std::vector<double> edges = edges_of(p);
    std::string list = monitor::SqlEdges(edges);
    ENGAGE_ASSIGN_OR_RETURN(
        lake::DuckResult s,
        engine.RunTrusted(fmt::format("SELECT count(*), engage_bin_counts(CAST(score AS DOUBLE), "
                                      "{}) FROM predictions WHERE dt = DATE '{}' AND scored_at = "
                                      "TIMESTAMP '{}' AND {}",
                                      list, day, scored_at, where),
                          "drift"));
    ENGAGE_ASSIGN_OR_RETURN(Json bins, ParseJson(s.Str(1, 0).value_or("[]"), "the scores' bins"));
    std::vector<int64_t> cur = bins.get<std::vector<int64_t>>();
    cur.resize(edges.size() + 1, 0);
    std::vector<int64_t> ref = p.value("counts", Json::array()).get<std::vector<int64_t>>();
    ref.resize(edges.size() + 1, 0);
    monitor::ColumnDrift d = monitor::CompareNumeric(
        "score", edges, p.value("deciles", Json::array()).get<std::vector<double>>(), ref,
        p.value("rows", int64_t{0}), cur, s.Int(0, 0), config.drift);
    report.current_rows = s.Int(0, 0);
    report.columns.push_back(std::move(d));
  }

  // The features at the run's cutoff, recomputed as scoring computed them.
  bool any_feature = false, btyd = false;
  for (const Json& f : profile["features"]) {
    std::string n = f.value("name", "");
    any_feature = any_feature || picked(n);
    btyd = btyd || n.rfind("btyd_", 0) == 0;
  }
  if (any_feature) {
    ml::EngagementTrainer trainer(engine, registry, config.engagement);
    ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame frame, trainer.BuildFeatures({cutoff}, btyd));
    report.current_rows = frame.rows();
    for (const Json& f : profile["features"]) {
      std::string n = f.value("name", "");
      if (!picked(n)) continue;
      int at = frame.Find(n);
      if (at < 0) {
        return FailedPreconditionError(fmt::format(
            "{} was trained on feature '{}', which the current [engagement] configuration does "
            "not produce: its scoring runs cannot be compared feature by feature",
            name, n));
      }
      std::vector<double> edges = edges_of(f);
      std::vector<int64_t> ref = f.value("counts", Json::array()).get<std::vector<int64_t>>();
      ref.resize(edges.size() + 1, 0);
      std::vector<int64_t> cur = monitor::BinValues(edges, frame.columns[static_cast<size_t>(at)]);
      report.columns.push_back(monitor::CompareNumeric(
          n, edges, f.value("deciles", Json::array()).get<std::vector<double>>(), ref,
          f.value("rows", int64_t{0}), cur, frame.rows(), config.drift));
    }
  }
  report.Decide();
  return report;
}

Result<monitor::DriftReport> App::Drift(const monitor::DriftRequest& request) {
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<ReadSide> reads, reads_->Current());
  ENGAGE_ASSIGN_OR_RETURN(monitor::DriftReport report,
                          request.model.empty() ? monitor::TableDrift(reads->query(), request)
                                                : ModelDrift(reads->query(), *registry_, request));
  if (report.dataset_drift) {
    monitor::Alert a;
    a.kind = "drift";
    a.name = report.model.empty() ? report.table : report.model;
    Json drifted = Json::array();
    for (const Json& c : report.ToJson()["columns"]) {
      if (c.value("drifted", false)) drifted.push_back(c["column"]);
    }
    a.message = fmt::format("dataset drift in {} ({} against {}): {} column(s) drifted: {}", a.name,
                            report.current, report.reference, drifted.size(), DumpJson(drifted));
    a.details = Json{{"reference", report.reference},
                     {"current", report.current},
                     {"columns", std::move(drifted)}};
    // Once per comparison: the same windows compared again do not raise it again.
    monitoring_->RaiseOnce(reads->config(), std::move(a));
  }
  return report;
}

Result<Json> App::QualityChecks() {
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<ReadSide> reads, reads_->Current());
  return RunQualityChecks(*lake_, reads->query(), monitoring_.get());
}

}  // namespace engage::app
