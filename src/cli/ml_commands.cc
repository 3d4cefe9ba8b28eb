// `engage btyd fit|predict`, `engage features`, `engage models ...` and `engage score`: flags
// and output; the work is in ml, features and app.
#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "engage/app/app.h"
#include "engage/core/fs.h"
#include "engage/features/features.h"
#include "engage/ml/btyd.h"
#include "engage/ml/health.h"
#include "engage/ml/registry.h"
#include "engage/ml/scoring.h"

namespace engage::cli {

namespace {

void AddBtyd(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* btyd = app.add_subcommand(
      "btyd", "BG/NBD and Gamma-Gamma: probability alive, expected transactions, CLV");
  btyd->require_subcommand(1);
  struct O {
    ml::SummaryRequest summary;
    std::string time_unit = "week", out;
    std::optional<double> horizon;
    int64_t limit = 10;
    ml::ClvOptions clv;
    bool json = false;
  };
  auto& o = Keep<O>();
  auto* fit = btyd->add_subcommand(
      "fit", "Fit BG/NBD and Gamma-Gamma by maximum likelihood on an events table");
  auto* predict = btyd->add_subcommand(
      "predict", "Per-customer probability alive, expected transactions, expected spend and CLV");
  for (CLI::App* cmd : {fit, predict}) {
    cmd->add_option("table", o.summary.table, "Lake table of events (one row per transaction)")
        ->required();
    cmd->add_option("--calibration-end", o.summary.calibration_end,
                    "Last day of the calibration period, YYYY-MM-DD (inclusive; default: the "
                    "last event's day)");
    cmd->add_option("--customer-column", o.summary.customer_column, "Customer id column");
    cmd->add_option("--time-column", o.summary.time_column,
                    "Event time column (default: the table's time_column)");
    cmd->add_option("--amount-column", o.summary.amount_column,
                    "Transaction value column for Gamma-Gamma (\"\" for none)");
    cmd->add_option("--types", o.summary.types,
                    "Transaction types (comma-separated) of --type-column; default: [engagement] "
                    "qualifying_types for its events table, else every row is a transaction")
        ->delimiter(',');
    cmd->add_option("--type-column", o.summary.type_column, "Column of --types")
        ->default_str("[engagement] type_column");
    cmd->add_option("--time-unit", o.time_unit, "Time unit of t_x, T and α: week or day")
        ->check(CLI::IsMember({"week", "day"}));
    cmd->add_flag("--json", o.json, "Print JSON");
  }
  predict
      ->add_option("--horizon", o.horizon,
                   "Horizon for expected transactions, in time units (default: 4 weeks or 30 "
                   "days)")
      ->check([](const std::string& s) {
        double v = std::strtod(s.c_str(), nullptr);  // NaN fails both comparisons
        return v > 0 && v <= 36500 ? std::string() : "must be above 0 and at most 36500";
      });
  predict->add_option("--clv-periods", o.clv.periods, "CLV horizon in periods (months)")
      ->check(CLI::Range(1, 1200));
  predict->add_option("--discount-rate", o.clv.discount_rate, "CLV discount rate per period")
      ->check(CLI::Range(0.0, 10.0));
  predict->add_option("--out", o.out, "Write every customer's outputs to this CSV file");
  predict->add_option("--limit", o.limit, "Customers to print (without --out; 0 = all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000'000}));
  auto run = [&g, &o](bool predicting) -> Status {
    o.summary.days_per_unit = o.time_unit == "day" ? 1 : 7;
    double horizon = !predicting ? 0 : o.horizon.value_or(o.time_unit == "day" ? 30 : 4);
    ENGAGE_RETURN_IF_ERROR(CheckOutputPath(o.out));
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(auto reads, application->reads().Current());
    ml::ApplyEngagementTypes(reads->config().engagement, &o.summary);
    ENGAGE_ASSIGN_OR_RETURN(ml::BtydAnalysis a,
                            ml::AnalyzeBtyd(reads->query(), o.summary, horizon, o.clv));
    if (!o.out.empty()) {
      ENGAGE_RETURN_IF_ERROR(WriteOutputFile(o.out, ml::BtydPredictionsCsv(a.predictions)));
    }
    size_t shown = !o.out.empty() ? 0 : o.limit > 0 ? static_cast<size_t>(o.limit) : SIZE_MAX;
    Json j = a.ToJson(shown);
    if (!o.out.empty()) {
      j.erase("predictions");
      j["out"] = o.out;
    }
    Emit(o.json, j, [&] {
      std::fputs(a.ToText(shown).c_str(), stdout);
      if (!o.out.empty())
        std::printf("wrote %zu customers to %s\n", a.customers.size(), o.out.c_str());
    });
    return Status::Ok();
  };
  OnRun(fit, action, [run] { return run(false); });
  OnRun(predict, action, [run] { return run(true); });
}

void AddFeatures(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "features", "Point-in-time features and engagement labels ([engagement] in engage.toml)");
  struct O {
    std::vector<std::string> cutoffs;
    std::string out;
    bool json = false, sql = false, training = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("--cutoff", o.cutoffs,
                  "Cutoff day(s), YYYY-MM-DD: features use events before it (default: the day "
                  "after the last event)");
  cmd->add_flag("--training", o.training,
                "Use the training cutoffs (the latest labelled day and earlier ones)");
  cmd->add_option("--out", o.out, "Write the rows to this CSV file");
  cmd->add_flag("--sql", o.sql, "Print the SQL for the (first) cutoff and stop");
  cmd->add_flag("--json", o.json, "Print a JSON summary (per feature: missing share, mean)");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_RETURN_IF_ERROR(CheckOutputPath(o.out));
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(auto reads, application->reads().Current());
    features::FeatureBuilder builder(reads->query(), reads->config().engagement);
    ENGAGE_ASSIGN_OR_RETURN(std::vector<std::string> days, builder.Cutoffs(o.cutoffs, o.training));
    if (o.sql) {
      ENGAGE_ASSIGN_OR_RETURN(std::string text, builder.Sql(days.front()));
      std::printf("%s\n", text.c_str());
      return Status::Ok();
    }
    ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame f, builder.Build(days));
    if (!o.out.empty()) ENGAGE_RETURN_IF_ERROR(WriteOutputFile(o.out, f.ToCsv()));
    Json summary = f.Summary();
    summary["cutoffs"] = days;
    if (!o.out.empty()) summary["out"] = o.out;
    Emit(o.json, summary, [&] {
      std::fputs(f.SummaryText().c_str(), stdout);
      if (!o.out.empty()) std::printf("wrote %s\n", o.out.c_str());
    });
    return Status::Ok();
  });
}

void AddModels(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* models = app.add_subcommand("models", "The model registry: versions, cards, aliases");
  models->require_subcommand(1);
  struct O {
    std::string a, b;
    bool json = false;
  };
  auto& o = Keep<O>();
  // A subcommand with --json and up to two positional arguments, each "!name: help" (required)
  // or "?name: help"; `run` gets the opened application.
  auto add = [&](const char* name, const char* help, const char* a1, const char* a2,
                 std::function<Status(app::App&)> run) -> CLI::App* {
    auto* cmd = models->add_subcommand(name, help);
    for (auto [spec, value] : {std::pair{a1, &o.a}, std::pair{a2, &o.b}}) {
      if (spec == nullptr) continue;
      std::string text(spec + 1);
      cmd->add_option(text.substr(0, text.find(':')), *value, text.substr(text.find(':') + 2))
          ->required(spec[0] == '!');
    }
    cmd->add_flag("--json", o.json, "Print JSON");
    OnRun(cmd, action, [&g, run]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
      return run(*application);
    });
    return cmd;
  };
  add("list", "Every model version, newest first", "?name: only this model", nullptr,
      [&o](app::App& a) -> Status {
        ENGAGE_ASSIGN_OR_RETURN(auto versions, a.registry().List(o.a));
        Emit(o.json, ml::VersionsSummaryJson(versions),
             [&] { std::fputs(ml::VersionsTable(versions).c_str(), stdout); });
        return Status::Ok();
      });
  add("show", "A version's summary, or its whole card with --json",
      "!model: name, name@3 or name@champion", nullptr, [&o](app::App& a) -> Status {
        ENGAGE_ASSIGN_OR_RETURN(auto v, a.registry().Resolve(o.a));
        Emit(o.json, v.ToJson(), [&v] { std::fputs(v.ToText().c_str(), stdout); });
        return Status::Ok();
      });
  add("promote",
      "Make a version the champion if it passes the gate ([models] in engage.toml): "
      "promote NAME N, or promote NAME@N",
      "!model: name@version, or name followed by the version", "?version: the version number",
      [&o](app::App& a) -> Status {
        ENGAGE_ASSIGN_OR_RETURN(std::string ref, ml::VersionRef(o.a, o.b));
        ENGAGE_ASSIGN_OR_RETURN(auto v, a.registry().Resolve(ref));
        ENGAGE_ASSIGN_OR_RETURN(
            auto d, a.registry().Promote(v.name, v.version,
                                         ml::PromotionGate::FromConfig(a.config().models)));
        Json j = d.ToJson();
        j["model"] = v.name;
        j["version"] = v.version;
        Emit(o.json, j, [&] { std::fputs(d.ToText(v.name, v.version).c_str(), stdout); });
        // Not passing the gate is an answer, not a failure of the command; scripts read --json.
        return Status::Ok();
      });
  add("alias", "Point an alias at a version without the gate (an operator's override)",
      "!model: name@version", "!alias: e.g. challenger", [&o](app::App& a) -> Status {
        if (o.a.find('@') == std::string::npos) {
          return InvalidArgumentError(fmt::format(
              "name the version to point '{}' at: `engage models alias {}@N {}`", o.b, o.a, o.b));
        }
        ENGAGE_ASSIGN_OR_RETURN(auto v, a.registry().Resolve(o.a));
        ml::AliasChange c{v.name, o.b, v.version, std::nullopt};
        ENGAGE_ASSIGN_OR_RETURN(c.previous, a.registry().SetAlias(v.name, o.b, v.version));
        Emit(o.json, c.ToJson(), [&c] { std::fputs(c.ToText().c_str(), stdout); });
        return Status::Ok();
      });
  add("health",
      "Realised AUC, log-loss and calibration of each scoring run whose outcomes are in "
      "(docs/monitor.md)",
      "!model: name (every version that scored), name@alias or name@N", nullptr,
      [&o](app::App& a) -> Status {
        ENGAGE_ASSIGN_OR_RETURN(ml::HealthReport r, a.ModelHealth(o.a));
        Emit(o.json, r.ToJson(), [&r] { std::fputs(r.ToText().c_str(), stdout); });
        // Like `engage check`: the report is printed either way, the exit status says whether
        // it is healthy.
        return r.healthy ? Status::Ok() : Status(StatusCode::kUnknown, r.verdict);
      })
      ->footer(
          "Exit status: 0 when healthy (also when every run is still pending), 1 when the latest "
          "evaluated run's realised AUC is below [models] health_min_auc; other errors as usual "
          "(3 unknown model or alias, 7 never scored or no events).");
  add("diff", "Differences between two versions of a model: metrics, params, data, features",
      "!a: name@version", "!b: name@version, or just the version", [&o](app::App& a) -> Status {
        ENGAGE_ASSIGN_OR_RETURN(auto va, a.registry().Resolve(o.a));
        ENGAGE_ASSIGN_OR_RETURN(auto vb, a.registry().ResolveIn(va.name, o.b));
        if (va.name != vb.name) {
          return InvalidArgumentError(fmt::format(
              "diff compares two versions of one model, not {} and {}", va.name, vb.name));
        }
        ENGAGE_ASSIGN_OR_RETURN(Json d, a.registry().Diff(va.name, va.version, vb.version));
        Emit(o.json, d, [&d] { std::fputs(ml::DiffToText(d).c_str(), stdout); });
        return Status::Ok();
      });
}

void AddScore(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "score", "Score every customer at the latest cutoff into the predictions table");
  struct O {
    ml::ScoreOptions score;
    bool no_reasons = false, json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("--model", o.score.model, "name, name@version or name@alias");
  cmd->add_option("--cutoff", o.score.cutoff,
                  "Score as of this day, YYYY-MM-DD (default: the day after the last event)");
  cmd->add_flag("--no-reasons", o.no_reasons, "Skip the top-3 reasons (SHAP contributions)");
  cmd->add_flag("--json", o.json, "Print the report as JSON");
  OnRun(cmd, action, [&g, &o]() -> Status {
    o.score.reasons = !o.no_reasons;
    o.score.stage = [](const std::string& what) { std::fprintf(stderr, "%s\n", what.c_str()); };
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(auto writer, application->OpenWriter());
    ENGAGE_ASSIGN_OR_RETURN(auto reads, application->reads().Current());
    ENGAGE_ASSIGN_OR_RETURN(ml::ScoreReport r,
                            app::ScoreRecorded(&application->monitoring(), *writer, reads->query(),
                                               application->registry(), o.score));
    Emit(o.json, r.ToJson(), [&r] { std::fputs(r.ToText().c_str(), stdout); });
    return Status::Ok();
  });
}

}  // namespace

void RegisterMlCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddBtyd(app, g, action);
  AddFeatures(app, g, action);
  AddModels(app, g, action);
  AddScore(app, g, action);
}

}  // namespace engage::cli
