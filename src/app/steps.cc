#include "engage/app/steps.h"

#include <fmt/format.h>
#include <glob.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "engage/app/app.h"
#include "engage/app/monitoring.h"
#include "engage/core/clock.h"
#include "engage/core/fs.h"
#include "engage/features/features.h"
#include "engage/flow/tasks.h"
#include "engage/lake/duck.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "engage/ml/engagement.h"
#include "engage/ml/registry.h"
#include "engage/ml/scoring.h"
#include "engage/monitor/cost.h"
#include "engage/serve/store.h"
#include "engage/sql/query.h"

namespace engage::app {

namespace fs = std::filesystem;

namespace {

// What a step works with: its own lake handle (a writer for the steps that write), the query
// engine (the process's shared one when there is one), and the model registry.
struct Opened {
  std::unique_ptr<lake::Lake> lake;
  std::shared_ptr<ReadSide> reads;               // keeps the shared engine alive
  std::unique_ptr<sql::QueryEngine> own_engine;  // without a shared one
  sql::QueryEngine* engine = nullptr;
  std::unique_ptr<ml::ModelRegistry> registry;
  Monitoring* monitoring = nullptr;  // the application's, when the steps run in one
};

Result<Opened> OpenAll(const HomePaths& home, const std::shared_ptr<ReadSides>& reads,
                       bool writer) {
  Opened o;
  lake::LakeOptions opts;
  opts.writer = writer;
  ENGAGE_ASSIGN_OR_RETURN(o.lake, lake::Lake::Open(home, opts));
  if (reads != nullptr) {
    ENGAGE_ASSIGN_OR_RETURN(o.reads, reads->Current());
    o.engine = &o.reads->query();
    o.monitoring = reads->monitoring();
  } else {
    ENGAGE_ASSIGN_OR_RETURN(o.own_engine, sql::QueryEngine::Open(*o.lake));
    o.engine = o.own_engine.get();
  }
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

void RegisterMlSteps(flow::TaskRegistry& tasks, const HomePaths& home,
                     const std::shared_ptr<ReadSides>& reads) {
  tasks.RegisterStep(
      "quality",
      [home, reads](const Json&) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, reads, false));
        ENGAGE_ASSIGN_OR_RETURN(Json report, RunQualityChecks(*o.lake, *o.engine, o.monitoring));
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
      [home, reads](const Json&) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, reads, false));
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
      [home, reads](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, reads, false));
        ml::EngagementTrainer trainer(*o.engine, *o.registry, o.lake->config().engagement);
        ml::EngagementTrainOptions options;
        options.model_name = StringParam(p, "model", "engagement");
        WorkRecorder work(o.monitoring, o.lake->config(), "training", options.model_name,
                          CostContext{.model = options.model_name});
        ENGAGE_ASSIGN_OR_RETURN(ml::EngagementTrainResult r, trainer.Train(options));
        Json j = r.ToJson();  // "existing": an identical version was found, nothing trained
        j.erase("valid");
        for (const char* k : {"auc", "pr_auc", "log_loss"}) {
          auto m = r.version.Metric(k);
          j[k] = m ? Json(*m) : Json();
        }
        return j;
      },
      "Trains and registers the engagement model, or finds the version already trained on the "
      "same data and parameters (\"existing\": true): {\"model\": \"engagement\"}",
      ModelOf("model", "engagement"));
  tasks.RegisterStep(
      "evaluate",
      [home, reads](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, reads, false));
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
      [home, reads](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, reads, false));
        std::string name = StringParam(p, "model", "engagement");
        if (!p.contains("version") || !p["version"].is_number_integer()) {
          return InvalidArgumentError("engage:promote needs {\"model\", \"version\": n}");
        }
        auto gate = ml::PromotionGate::FromConfig(o.lake->config().models);
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
      [home, reads](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, reads, true));
        ml::ScoreOptions options;
        options.model = StringParam(p, "model", "engagement@champion");
        ENGAGE_ASSIGN_OR_RETURN(ml::ScoreReport r, ScoreRecorded(o.monitoring, *o.lake, *o.engine,
                                                                 *o.registry, options));
        return r.ToJson();
      },
      "Scores every customer into the predictions table: {\"model\": \"engagement@champion\"}",
      ModelOf("model", "engagement@champion"));
  tasks.RegisterStep(
      "publish",
      [home, reads](const Json& p) -> Result<Json> {
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, reads, false));
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
        ENGAGE_ASSIGN_OR_RETURN(serve::PublishReport r, PublishRecorded(o.monitoring, *o.lake, refs,
                                                                        3, SystemClock::Default()));
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
        // The run's own cost, from the ledger: everything recorded with this execution's id
        // (its steps so far and the queries, training and scoring inside them). Outside an
        // execution, the ledger's totals by kind since {"since"}.
        ENGAGE_ASSIGN_OR_RETURN(auto ledger,
                                monitor::Ledger::Open(home.meta_db(), SystemClock::Default()));
        const std::string execution = CurrentCostContext().execution_id;
        std::string since = StringParam(p, "since", "");
        if (!execution.empty()) {
          ENGAGE_ASSIGN_OR_RETURN(monitor::ExecutionCost c, ledger->ForExecution(execution));
          Json j = c.ToJson();
          j["execution_id"] = execution;
          j["cost_usd"] = c.total_usd;
          return j;
        }
        ENGAGE_ASSIGN_OR_RETURN(monitor::CostReport r, ledger->Report({.since = since}));
        Json j = r.ToJson();
        j["cost_usd"] = r.total_usd;
        return j;
      },
      "What this execution has cost so far, from the cost ledger (per step, local usage and the "
      "cloud price); outside an execution, the ledger's totals by kind since {\"since\": \"<ISO "
      "time>\"}");
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

bool HasGlob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// The files an engage:ingest input names, each resolved (symlinks and `..` followed) and inside
// one of `c.input_dirs`; a glob is expanded here, so the lake reads exactly what was checked.
// Relative inputs resolve against the home. The refusal names the input as given and the config
// key, is the same whether or not the file exists, and reads nothing.
Result<std::vector<std::string>> ConfinedInputs(const std::string& input, const StepConfinement& c,
                                                const HomePaths& home) {
  auto refused = [&input] {
    return PermissionDeniedError(fmt::format(
        "{}engage:ingest input '{}' is not a file inside [flow] input_dirs of engage.toml "
        "(executions started over HTTP read only those directories)",
        flow::kAccessDeniedPrefix, input));
  };
  if (input.empty() || c.input_dirs.empty()) return refused();
  fs::path p(input);
  if (!p.is_absolute()) p = fs::path(home.root) / p;
  std::vector<std::string> candidates;
  if (HasGlob(input)) {
    glob_t g{};
    int rc = ::glob(p.string().c_str(), GLOB_NOSORT, nullptr, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) candidates.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
    if (candidates.empty()) return refused();
  } else {
    candidates.push_back(p.string());
  }
  std::vector<std::string> out;
  for (const std::string& cand : candidates) {
    std::error_code ec;
    fs::path real = fs::canonical(cand, ec);
    if (ec || !fs::is_regular_file(real, ec)) return refused();
    std::string r = real.string();
    bool inside = std::any_of(c.input_dirs.begin(), c.input_dirs.end(), [&r](const std::string& d) {
      return r.size() > d.size() && r.compare(0, d.size(), d) == 0 && r[d.size()] == '/';
    });
    if (!inside) return refused();
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Replaces every occurrence of `from` in `s` by `to`.
void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// Engage's own steps, callable as "engage:<name>" Task resources. The lake is opened lazily so
// definitions that do not use it run without one. With an authorizer on `tasks` (a role),
// engage:query checks each table the query reads and engage:ingest its target table.
}  // namespace

// [flow] input_dirs resolved: relative ones against the home, symlinks followed.
std::vector<std::string> ResolveInputDirs(const FlowConfig& flow, const HomePaths& home) {
  std::vector<std::string> out;
  for (const std::string& d : flow.input_dirs) {
    fs::path p(d);
    if (!p.is_absolute()) p = fs::path(home.root) / p;
    std::error_code ec;
    fs::path real = fs::canonical(p, ec);
    if (!ec && fs::is_directory(real, ec)) out.push_back(real.string());
  }
  return out;
}

void RegisterEngageSteps(flow::TaskRegistry& tasks, const HomePaths& home,
                         const StepConfinement& confinement,
                         const std::shared_ptr<ReadSides>& reads) {
  flow::TaskRegistry* registry = &tasks;
  tasks.RegisterStep(
      "query",
      [home, reads, registry](const Json& p) -> Result<Json> {
        if (!p.is_object() || !p.contains("sql") || !p["sql"].is_string()) {
          return InvalidArgumentError("engage:query needs Parameters {\"sql\": \"SELECT ...\"}");
        }
        ENGAGE_ASSIGN_OR_RETURN(Opened o, OpenAll(home, reads, false));
        sql::QueryRequest req;
        req.sql = p["sql"].get<std::string>();
        req.source = "flow";
        // A step's query is bounded like the CLI's (the Task's TimeoutSeconds bounds the step).
        req.timeout_ms =
            o.lake->config().query.timeout_seconds.value_or(sql::kDefaultCliQueryTimeoutSeconds) *
            1000;
        if (p.contains("max_scan_bytes") && p["max_scan_bytes"].is_number_integer()) {
          req.max_scan_bytes = p["max_scan_bytes"].get<int64_t>();
        }
        if (registry->has_authorizer()) {
          // The tables are those the query engine resolves, whatever the spelling.
          req.authorize = [registry](const std::set<std::string>& tables) -> Status {
            for (const auto& t : tables) {
              ENGAGE_RETURN_IF_ERROR(
                  registry->Authorize("engage:query", t == "*" ? "table/*" : "table/" + t));
            }
            return Status::Ok();
          };
        }
        ENGAGE_ASSIGN_OR_RETURN(auto r, o.engine->Run(req));
        return r.ToJson();
      },
      "Runs read-only SQL over the lake: {\"sql\": \"SELECT ...\", \"max_scan_bytes\": n}",
      // Checked per table by the query engine (above).
      [](const Json&) -> Result<std::vector<std::string>> { return std::vector<std::string>{}; });
  tasks.RegisterStep(
      "ingest",
      [home, confinement, reads](const Json& p) -> Result<Json> {
        if (!p.is_object() || !p.contains("table") || !p["table"].is_string() ||
            !p.contains("inputs") || !p["inputs"].is_array()) {
          return InvalidArgumentError(
              "engage:ingest needs Parameters {\"table\": \"events\", \"inputs\": [\"f.csv\"]}");
        }
        lake::IngestRequest req;
        req.table = p["table"].get<std::string>();
        // Resolved path -> the input as given, to put back into error messages.
        std::vector<std::pair<std::string, std::string>> given;
        for (const Json& in : p["inputs"]) {
          if (!in.is_string()) return InvalidArgumentError("engage:ingest inputs must be strings");
          std::string input = in.get<std::string>();
          if (!confinement.confine_inputs) {
            req.inputs.push_back(input);
            continue;
          }
          ENGAGE_ASSIGN_OR_RETURN(auto files, ConfinedInputs(input, confinement, home));
          for (auto& f : files) {
            given.emplace_back(f, input);
            req.inputs.push_back(std::move(f));
          }
        }
        if (p.contains("ingest_id") && p["ingest_id"].is_string()) {
          req.ingest_id = p["ingest_id"].get<std::string>();
        }
        lake::LakeOptions opts;
        opts.writer = true;
        ENGAGE_ASSIGN_OR_RETURN(auto l, lake::Lake::Open(home, opts));
        Monitoring* monitoring = reads != nullptr ? reads->monitoring() : nullptr;
        auto r = IngestRecorded(monitoring, *l, req);
        if (!r.ok() && !given.empty()) {
          std::string msg = r.status().message();
          for (const auto& [resolved, as_given] : given) ReplaceAll(msg, resolved, as_given);
          return Status(r.status().code(), std::move(msg));
        }
        ENGAGE_RETURN_IF_ERROR(r.status());
        return r->ToJson();
      },
      "Ingests files into a lake table: {\"table\": \"events\", \"inputs\": [\"a.csv\"]}",
      [](const Json& p) -> Result<std::vector<std::string>> {
        if (!p.is_object() || !p.contains("table") || !p["table"].is_string()) {
          return InvalidArgumentError(
              "engage:ingest needs Parameters {\"table\": \"events\", \"inputs\": [\"f.csv\"]}");
        }
        return std::vector<std::string>{"table/" + p["table"].get<std::string>()};
      });
  RegisterMlSteps(tasks, home, reads);
}

}  // namespace engage::app
