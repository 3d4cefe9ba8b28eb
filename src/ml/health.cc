#include "engage/ml/health.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "engage/core/text.h"
#include "engage/features/features.h"
#include "engage/lake/duck.h"
#include "engage/ml/metrics.h"

namespace engage::ml {

using lake::SqlIdent;
using lake::SqlQuote;

namespace {

constexpr int kDeciles = 10;

Json NumberOrNull(double v) { return std::isnan(v) ? Json(nullptr) : Json(v); }

std::string Figure(double v, int digits) {
  return std::isnan(v) ? std::string("-") : fmt::format("{:.{}f}", v, digits);
}

// The last day of an outcome window, from its end (the first day after it).
std::string LastDay(const std::string& window_end) {
  auto end = features::ParseDay(window_end);
  return end.ok() ? features::FormatDay(*end - 1) : window_end;
}

// The outcome a version predicted: its card's horizon and qualifying types, else [engagement]'s.
struct Target {
  int horizon_days = 30;
  std::vector<std::string> qualifying_types;
  std::string trained_until;  // card data.data_end: the training read events before this day
};

Target TargetOf(const std::optional<ModelVersion>& v, const EngagementConfig& config) {
  Target t{config.horizon_days, config.qualifying_types};
  if (!v || !v->card.is_object() || !v->card.contains("data") || !v->card["data"].is_object()) {
    return t;
  }
  const Json& data = v->card["data"];
  if (data.contains("data_end") && data["data_end"].is_string()) {
    t.trained_until = data["data_end"].get<std::string>();
  }
  if (data.contains("horizon_days") && data["horizon_days"].is_number_integer() &&
      data["horizon_days"].get<int64_t>() > 0 && data["horizon_days"].get<int64_t>() <= 36500) {
    t.horizon_days = data["horizon_days"].get<int>();
  }
  if (data.contains("qualifying_types") && data["qualifying_types"].is_array() &&
      !data["qualifying_types"].empty()) {
    std::vector<std::string> types;
    for (const Json& type : data["qualifying_types"]) {
      if (!type.is_string()) return t;
      types.push_back(type.get<std::string>());
    }
    t.qualifying_types = std::move(types);
  }
  return t;
}

// The label query of one run: its scores and whether each customer had a qualifying event in
// [cutoff, cutoff + horizon). Reads the run's predictions partition (the day of scored_at) and
// the events partitions of the window only.
std::string OutcomeSql(const std::string& model, const HealthRun& run, const Target& target,
                       const EngagementConfig& c, const std::string& time_column) {
  std::string types;
  for (const auto& t : target.qualifying_types) types += (types.empty() ? "" : ", ") + SqlQuote(t);
  std::string ts = fmt::format("CAST({} AS TIMESTAMP)", SqlIdent(time_column));
  return fmt::format(
      "WITH p AS (\n"
      "  SELECT CAST(customer_id AS VARCHAR) AS c, score FROM predictions\n"
      "  WHERE dt = DATE '{day}' AND date_trunc('second', scored_at) = TIMESTAMP '{at}' AND cutoff "
      "= DATE '{t0}'\n"
      "    AND model = {model} AND model_version = {version}),\n"
      "o AS (\n"
      "  SELECT DISTINCT CAST({cust} AS VARCHAR) AS c FROM {events}\n"
      "  WHERE dt >= DATE '{t0}' AND dt <= DATE '{last}' AND {ts} >= TIMESTAMP '{t0} 00:00:00'\n"
      "    AND {ts} < TIMESTAMP '{t1} 00:00:00' AND {type} IN ({types}))\n"
      "SELECT p.score, CAST(o.c IS NOT NULL AS INTEGER) AS engaged\n"
      "FROM p LEFT JOIN o ON o.c = p.c",
      fmt::arg("day", run.scored_at.substr(0, 10)), fmt::arg("at", run.scored_at),
      fmt::arg("t0", run.cutoff), fmt::arg("model", SqlQuote(model)),
      fmt::arg("version", run.version), fmt::arg("cust", SqlIdent(c.customer_column)),
      fmt::arg("events", SqlIdent(c.events_table)), fmt::arg("last", LastDay(run.window_end)),
      fmt::arg("ts", ts), fmt::arg("t1", run.window_end), fmt::arg("type", SqlIdent(c.type_column)),
      fmt::arg("types", types));
}

std::string RunName(const std::string& model, const HealthRun& r) {
  return fmt::format("{}@{} scored at {} (cutoff {})", model, r.version, r.scored_at, r.cutoff);
}

}  // namespace

Status EvaluateHealthRun(std::span<const float> labels, std::span<const float> scores,
                         double min_auc, HealthRun* run) {
  ENGAGE_ASSIGN_OR_RETURN(double log_loss, LogLoss(labels, scores));
  ENGAGE_ASSIGN_OR_RETURN(std::vector<CalibrationBin> bins,
                          Calibration(labels, scores, kDeciles, BinStrategy::kQuantile));
  run->evaluated = true;
  run->customers = static_cast<int64_t>(labels.size());
  run->positives = std::count(labels.begin(), labels.end(), 1.0f);
  run->log_loss = log_loss;
  run->notes.clear();
  if (run->positives == 0 || run->positives == run->customers) {
    run->auc = std::numeric_limits<double>::quiet_NaN();
    run->notes.push_back(fmt::format("auc: undefined, {} of the {} customers engaged",
                                     run->positives == 0 ? "none" : "all", run->customers));
  } else {
    ENGAGE_ASSIGN_OR_RETURN(run->auc, RocAuc(labels, scores));
  }
  run->calibration.clear();
  for (size_t b = 0; b < bins.size(); ++b) {
    if (bins[b].count == 0) continue;  // fewer customers than deciles
    run->calibration.push_back(HealthDecile{static_cast<int>(b) + 1, bins[b].count,
                                            bins[b].positives, bins[b].mean_predicted,
                                            bins[b].observed_rate});
  }
  run->below_min_auc = !std::isnan(run->auc) && run->auc < min_auc;
  return Status::Ok();
}

const HealthRun* HealthReport::LatestEvaluated() const {
  // runs are sorted oldest first.
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    if (it->evaluated) return &*it;
  }
  return nullptr;
}

int64_t HealthReport::PendingRuns() const {
  return std::count_if(runs.begin(), runs.end(), [](const HealthRun& r) { return !r.evaluated; });
}

Json HealthReport::ToJson() const {
  Json j = Json::object();
  j["model"] = model;
  if (version) j["version"] = *version;
  j["min_auc"] = min_auc;
  j["data_end"] = data_end;
  j["healthy"] = healthy;
  j["verdict"] = verdict;
  Json arr = Json::array();
  for (const HealthRun& r : runs) {
    Json o = Json::object();
    o["scored_at"] = r.scored_at;
    o["cutoff"] = r.cutoff;
    o["version"] = r.version;
    o["horizon_days"] = r.horizon_days;
    o["window_end"] = r.window_end;
    o["status"] = r.evaluated ? "evaluated" : "pending";
    o["customers"] = r.customers;
    if (r.evaluated) {
      o["positives"] = r.positives;
      o["auc"] = NumberOrNull(r.auc);
      o["log_loss"] = NumberOrNull(r.log_loss);
      Json cal = Json::array();
      for (const HealthDecile& d : r.calibration) {
        cal.push_back(Json{{"decile", d.decile},
                           {"customers", d.customers},
                           {"positives", d.positives},
                           {"predicted", d.predicted},
                           {"observed", d.observed}});
      }
      o["calibration"] = std::move(cal);
      o["below_min_auc"] = r.below_min_auc;
      o["notes"] = r.notes;
    }
    arr.push_back(std::move(o));
  }
  j["runs"] = std::move(arr);
  return j;
}

std::string HealthReport::ToText() const {
  std::string out = fmt::format(
      "model {}{}: minimum AUC {:.2f}; the events end on {}, so outcome windows up to that day "
      "are known\n",
      model, version ? fmt::format("@{}", *version) : std::string(), min_auc, LastDay(data_end));
  for (const HealthRun& r : runs) {
    out += fmt::format("\n{}@{} scored at {}, cutoff {}, outcomes {} .. {} ({} days): ", model,
                       r.version, r.scored_at, r.cutoff, r.cutoff, LastDay(r.window_end),
                       r.horizon_days);
    if (!r.evaluated) {
      out += fmt::format("pending ({} customers scored; known once the events reach {})\n",
                         r.customers, LastDay(r.window_end));
      continue;
    }
    out += fmt::format("{} customers, {} engaged ({:.1f}%)\n", r.customers, r.positives,
                       r.customers > 0 ? 100.0 * static_cast<double>(r.positives) /
                                             static_cast<double>(r.customers)
                                       : 0.0);
    out += fmt::format("  AUC {}{}  log-loss {}\n", Figure(r.auc, 4),
                       r.below_min_auc ? fmt::format(" (below {:.2f})", min_auc) : "",
                       Figure(r.log_loss, 4));
    for (const std::string& n : r.notes) out += "  " + n + "\n";
    std::vector<std::vector<std::string>> rows;
    for (const HealthDecile& d : r.calibration) {
      rows.push_back({std::to_string(d.decile), std::to_string(d.customers), Figure(d.predicted, 4),
                      Figure(d.observed, 4)});
    }
    std::string table = FormatTable({"decile", "customers", "predicted", "observed"}, rows);
    for (size_t at = 0; at < table.size();) {
      size_t nl = table.find('\n', at);
      out += "  " + table.substr(at, nl - at + 1);
      at = nl == std::string::npos ? table.size() : nl + 1;
    }
  }
  out += fmt::format("\n{}: {}\n", healthy ? "healthy" : "UNHEALTHY", verdict);
  return out;
}

Result<HealthReport> ModelHealth(sql::QueryEngine& engine, ModelRegistry& registry,
                                 const EngagementConfig& config, const HealthRequest& request) {
  HealthReport report;
  report.min_auc = request.min_auc;
  // The model (and version): the registry's errors name what is missing.
  ENGAGE_ASSIGN_OR_RETURN(ModelVersion named, registry.Resolve(request.model));
  report.model = named.name;
  if (request.model.find('@') != std::string::npos) report.version = named.version;
  if (named.kind() != "" && named.kind() != "engagement") {
    return FailedPreconditionError(fmt::format(
        "{}@{} is a model of kind '{}': model health evaluates the engagement models that "
        "`engage score` scores",
        named.name, named.version, named.kind()));
  }

  // The runs of the model (or version) in the predictions table.
  std::string where = fmt::format("model = {}", SqlQuote(report.model));
  if (report.version) where += fmt::format(" AND model_version = {}", *report.version);
  ENGAGE_ASSIGN_OR_RETURN(
      lake::DuckResult listed,
      engine.RunTrusted(fmt::format("SELECT strftime(scored_at, '%Y-%m-%dT%H:%M:%S'), "
                                    "CAST(cutoff AS VARCHAR), model_version, count(*) FROM "
                                    "predictions WHERE {} GROUP BY ALL ORDER BY 2, 1, 3",
                                    where),
                        "health"));
  // What the messages call it: as the user wrote it, with the version an alias names.
  std::string who = request.model;
  std::string numbered = fmt::format("{}@{}", report.model, named.version);
  if (report.version && who != numbered) who += fmt::format(" ({})", numbered);
  if (listed.RowCount() == 0) {
    return FailedPreconditionError(fmt::format(
        "{} has never scored: the predictions table has no rows of it; run `engage score "
        "--model {}` first (with --cutoff DAY to score as of an earlier day whose outcomes are "
        "already in the events)",
        who, request.model));
  }

  // The data's "now": outcomes are known up to the day after the last event.
  features::FeatureBuilder builder(engine, config);
  auto end = builder.DataEnd();
  if (!end.ok()) {
    return Status(end.status().code(),
                  fmt::format("the outcomes of {}'s predictions come from table '{}': {}", who,
                              config.events_table, end.status().message()));
  }
  report.data_end = *end;
  ENGAGE_ASSIGN_OR_RETURN(int64_t end_day, features::ParseDay(report.data_end));
  // DataEnd found the events table and its columns.
  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* events,
                          engine.lake().config().Table(config.events_table));
  std::string time_column = config.time_column.empty() ? events->time_column : config.time_column;

  std::map<int64_t, std::optional<ModelVersion>> versions;  // the cards of the versions seen
  for (int64_t i = 0; i < listed.RowCount(); ++i) {
    HealthRun run;
    run.scored_at = listed.Str(0, i).value_or("");
    run.cutoff = listed.Str(1, i).value_or("");
    run.version = listed.Int(2, i);
    run.customers = listed.Int(3, i);
    if (!versions.count(run.version)) {
      auto v = registry.Get(report.model, run.version);
      // Predictions of a version the registry no longer knows are judged by [engagement]'s target.
      versions[run.version] = v.ok() ? std::optional<ModelVersion>(*v) : std::nullopt;
    }
    Target target = TargetOf(versions[run.version], config);
    run.horizon_days = target.horizon_days;
    ENGAGE_ASSIGN_OR_RETURN(int64_t t, features::ParseDay(run.cutoff));
    run.window_end = features::FormatDay(t + target.horizon_days);
    if (t + target.horizon_days <= end_day) {
      auto outcome =
          engine.RunTrusted(OutcomeSql(report.model, run, target, config, time_column), "health");
      if (!outcome.ok()) {
        return Status(outcome.status().code(),
                      fmt::format("reading the outcomes of {}: {}", RunName(report.model, run),
                                  outcome.status().message()));
      }
      std::vector<float> scores, labels;
      scores.reserve(static_cast<size_t>(outcome->RowCount()));
      labels.reserve(static_cast<size_t>(outcome->RowCount()));
      for (int64_t k = 0; k < outcome->RowCount(); ++k) {
        scores.push_back(outcome->IsNull(0, k) ? std::numeric_limits<float>::quiet_NaN()
                                               : static_cast<float>(outcome->Double(0, k)));
        labels.push_back(static_cast<float>(outcome->Int(1, k)));
      }
      Status evaluated = EvaluateHealthRun(labels, scores, request.min_auc, &run);
      if (evaluated.ok() && !target.trained_until.empty() && run.cutoff < target.trained_until) {
        // Backfilled scores of a period the model learnt from say little about the future.
        run.notes.push_back(fmt::format(
            "in-sample: {}@{} was trained on events before {}, which include (part of) this "
            "outcome window, so its figures are optimistic",
            report.model, run.version, target.trained_until));
      }
      if (!evaluated.ok()) {
        return Status(evaluated.code(), fmt::format("evaluating {}: {}", RunName(report.model, run),
                                                    evaluated.message()));
      }
    }
    report.runs.push_back(std::move(run));
  }
  // report.runs are in the query's order: cutoff, then scored_at, then version.
  const HealthRun* latest = report.LatestEvaluated();
  if (latest == nullptr) {
    std::string first = report.runs.front().window_end;
    for (const HealthRun& r : report.runs) first = std::min(first, r.window_end);
    report.healthy = true;
    report.verdict = fmt::format(
        "no scoring run of {} can be evaluated yet: all {} are pending (the events end on {}; "
        "the first outcome window is known once they reach {})",
        who, report.runs.size(), LastDay(report.data_end), LastDay(first));
  } else if (std::isnan(latest->auc)) {
    report.healthy = true;
    report.verdict =
        fmt::format("the latest evaluated run, {}, has no AUC ({}); log-loss {:.4f}",
                    RunName(report.model, *latest),
                    latest->notes.empty() ? "one class" : latest->notes.front(), latest->log_loss);
  } else {
    report.healthy = !latest->below_min_auc;
    report.verdict = fmt::format(
        "the latest evaluated run, {}, has realised AUC {:.4f} {} the "
        "minimum {:.2f} ([models] health_min_auc)",
        RunName(report.model, *latest), latest->auc,
        latest->below_min_auc ? "below" : "at or above", report.min_auc);
  }
  int64_t pending = report.PendingRuns();
  if (latest != nullptr && pending > 0) {
    report.verdict += fmt::format("; {} run(s) still pending", pending);
  }
  return report;
}

}  // namespace engage::ml
