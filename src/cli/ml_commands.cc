// `engage features`: point-in-time features and labels; `engage btyd fit|predict`: BG/NBD and
// Gamma-Gamma on an events table of the lake.
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "engage/app/app.h"
#include "engage/core/clock.h"
#include "engage/core/fs.h"
#include "engage/features/features.h"
#include "engage/ml/btyd.h"
#include "engage/ml/engagement.h"
#include "engage/ml/registry.h"
#include "engage/ml/scoring.h"
#include "engage/sql/query.h"

namespace engage::cli {

namespace {

struct BtydArgs {
  ml::SummaryRequest summary;
  std::string time_unit = "week";
  bool json = false;
};

// The options `fit` and `predict` share: which table and columns, the calibration end and the
// time unit.
void AddSummaryOptions(CLI::App* cmd, BtydArgs& a) {
  cmd->add_option("table", a.summary.table, "Lake table of events (one row per transaction)")
      ->required();
  cmd->add_option("--calibration-end", a.summary.calibration_end,
                  "Last day of the calibration period, YYYY-MM-DD (inclusive; default: the "
                  "last event's day)");
  cmd->add_option("--customer-column", a.summary.customer_column, "Customer id column")
      ->default_str("customer_id");
  cmd->add_option("--time-column", a.summary.time_column,
                  "Event time column (default: the table's time_column)");
  cmd->add_option("--amount-column", a.summary.amount_column,
                  "Transaction value column for Gamma-Gamma (\"\" for none)")
      ->default_str("amount");
  cmd->add_option("--time-unit", a.time_unit, "Time unit of t_x, T and α: week or day")
      ->check(CLI::IsMember({"week", "day"}))
      ->default_str("week");
  cmd->add_flag("--json", a.json, "Print JSON");
}

Result<std::vector<ml::CustomerSummary>> Summaries(const GlobalOptions& g, BtydArgs& a) {
  a.summary.days_per_unit = a.time_unit == "day" ? 1 : 7;
  ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
  ENGAGE_ASSIGN_OR_RETURN(auto engine, sql::QueryEngine::Open(*lake));
  ENGAGE_ASSIGN_OR_RETURN(auto customers, ml::SummarizeEvents(*engine, a.summary));
  if (customers.empty()) {
    return FailedPreconditionError(fmt::format(
        "table '{}' has no customer with a transaction on or before the calibration end",
        a.summary.table));
  }
  return customers;
}

Json FitsJson(const ml::BtydFits& f, const BtydArgs& a, size_t customers) {
  Json j = f.ToJson();
  j["table"] = a.summary.table;
  j["calibration_end"] = a.summary.calibration_end;
  j["time_unit"] = a.time_unit;
  j["customers"] = static_cast<int64_t>(customers);
  return j;
}

void AddFit(CLI::App& parent, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = parent.add_subcommand(
      "fit", "Fit BG/NBD and Gamma-Gamma by maximum likelihood on an events table");
  auto a = std::make_shared<BtydArgs>();
  AddSummaryOptions(cmd, *a);
  cmd->callback([&g, action, a] {
    *action = [&g, a]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto customers, Summaries(g, *a));
      ENGAGE_ASSIGN_OR_RETURN(auto f, ml::FitBtyd(customers, !a->summary.amount_column.empty()));
      if (a->json) {
        PrintJson(FitsJson(f, *a, customers.size()));
        return Status::Ok();
      }
      std::printf("%zu customers, calibration to %s, time in %ss\n\n%s", customers.size(),
                  a->summary.calibration_end.empty() ? "the last event"
                                                     : a->summary.calibration_end.c_str(),
                  a->time_unit.c_str(), f.ToText().c_str());
      return Status::Ok();
    };
  });
}

void AddPredict(CLI::App& parent, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = parent.add_subcommand(
      "predict", "Per-customer probability alive, expected transactions, expected spend and CLV");
  auto a = std::make_shared<BtydArgs>();
  auto horizon = std::make_shared<double>(0);
  auto out = std::make_shared<std::string>();
  auto limit = std::make_shared<int64_t>(10);
  auto clv = std::make_shared<ml::ClvOptions>();
  AddSummaryOptions(cmd, *a);
  cmd->add_option("--horizon", *horizon,
                  "Horizon for expected transactions, in time units (default: 4 weeks or 30 "
                  "days)");
  cmd->add_option("--clv-periods", clv->periods, "CLV horizon in periods (months)")
      ->default_str("12")
      ->check(CLI::Range(1, 1200));
  cmd->add_option("--discount-rate", clv->discount_rate, "CLV discount rate per period")
      ->default_str("0.01")
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--out", *out, "Write every customer's outputs to this CSV file");
  cmd->add_option("--limit", *limit, "Customers to print (without --out; 0 = all)")
      ->default_str("10");
  cmd->callback([&g, action, a, horizon, out, limit, clv] {
    *action = [&g, a, horizon, out, limit, clv]() -> Status {
      if (*horizon < 0) return InvalidArgumentError("--horizon must not be negative");
      ENGAGE_ASSIGN_OR_RETURN(auto customers, Summaries(g, *a));
      ENGAGE_ASSIGN_OR_RETURN(auto f, ml::FitBtyd(customers, !a->summary.amount_column.empty()));
      double h = *horizon > 0 ? *horizon : (a->summary.days_per_unit == 1 ? 30 : 4);
      clv->period_length = 30.0 / a->summary.days_per_unit;
      auto predictions = ml::PredictBtyd(f, customers, h, *clv);
      size_t shown = out->empty() && *limit > 0 ? std::min<size_t>(*limit, predictions.size())
                                                : (out->empty() ? predictions.size() : 0);
      if (!out->empty()) {
        ENGAGE_RETURN_IF_ERROR(
            PosixFileSystem().WriteFileAtomic(*out, ml::BtydPredictionsCsv(predictions)));
      }
      if (a->json) {
        Json j = FitsJson(f, *a, customers.size());
        j["horizon"] = h;
        if (!out->empty()) j["out"] = *out;
        if (out->empty()) j["predictions"] = Json::array();
        for (size_t i = 0; i < shown; ++i) j["predictions"].push_back(predictions[i].ToJson());
        PrintJson(j);
        return Status::Ok();
      }
      std::printf("BG/NBD r=%.4f alpha=%.4f a=%.4f b=%.4f; horizon %g %ss\n", f.bgnbd.params.r,
                  f.bgnbd.params.alpha, f.bgnbd.params.a, f.bgnbd.params.b, h,
                  a->time_unit.c_str());
      if (!out->empty()) {
        std::printf("wrote %zu customers to %s\n", customers.size(), out->c_str());
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> table;
      auto num = [](const std::optional<double>& v) {
        return v ? fmt::format("{:.4f}", *v) : std::string("-");
      };
      for (size_t i = 0; i < shown; ++i) {
        const auto& p = predictions[i];
        table.push_back({p.customer->customer_id, fmt::format("{}", p.customer->x), num(p.p_alive),
                         num(p.expected_transactions), num(p.expected_spend), num(p.clv)});
      }
      PrintTable({"customer_id", "x", "p_alive", "expected_transactions", "expected_spend", "clv"},
                 table);
      if (customers.size() > shown) {
        std::printf("(%zu of %zu customers; --out FILE writes all)\n", shown, customers.size());
      }
      return Status::Ok();
    };
  });
}

void AddFeatures(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "features", "Point-in-time features and engagement labels ([engagement] in engage.toml)");
  auto cutoffs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto show_sql = std::make_shared<bool>(false);
  auto training = std::make_shared<bool>(false);
  cmd->add_option("--cutoff", *cutoffs,
                  "Cutoff day(s), YYYY-MM-DD: features use events before it (default: the day "
                  "after the last event)");
  cmd->add_flag("--training", *training,
                "Use the training cutoffs (the latest labelled day and earlier ones)");
  cmd->add_option("--out", *out, "Write the rows to this CSV file");
  cmd->add_flag("--sql", *show_sql, "Print the SQL for the (first) cutoff and stop");
  cmd->add_flag("--json", *json, "Print a JSON summary (per feature: missing share, mean)");
  cmd->callback([&g, action, cutoffs, out, json, show_sql, training] {
    *action = [&g, cutoffs, out, json, show_sql, training]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
      ENGAGE_ASSIGN_OR_RETURN(auto engine, sql::QueryEngine::Open(*lake));
      features::FeatureBuilder builder(*engine, lake->config().engagement);
      std::vector<std::string> days = *cutoffs;
      if (*training) {
        if (!days.empty()) return InvalidArgumentError("--training and --cutoff are exclusive");
        ENGAGE_ASSIGN_OR_RETURN(days, builder.TrainingCutoffs());
      }
      if (days.empty()) {
        ENGAGE_ASSIGN_OR_RETURN(std::string end, builder.DataEnd());
        days.push_back(end);
      }
      if (*show_sql) {
        ENGAGE_ASSIGN_OR_RETURN(std::string text, builder.Sql(days.front()));
        std::printf("%s\n", text.c_str());
        return Status::Ok();
      }
      if (!cutoffs->empty()) ENGAGE_RETURN_IF_ERROR(builder.CheckCutoffs(days));
      ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame f, builder.Build(days));
      if (!out->empty()) ENGAGE_RETURN_IF_ERROR(PosixFileSystem().WriteFileAtomic(*out, f.ToCsv()));
      Json summary = f.Summary();
      summary["cutoffs"] = days;
      if (!out->empty()) summary["out"] = *out;
      if (*json) {
        PrintJson(summary);
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const Json& c : summary["features"]) {
        rows.push_back({c["name"].get<std::string>(),
                        fmt::format("{:.1f}%", 100 * c["missing"].get<double>()),
                        fmt::format("{:.4g}", c["mean"].get<double>())});
      }
      PrintTable({"feature", "missing", "mean"}, rows);
      std::printf("%ld rows at %zu cutoff(s), %ld labelled, positive rate %.4f%s%s\n",
                  static_cast<long>(f.rows()), days.size(), summary["labelled"].get<long>(),
                  summary["positive_rate"].get<double>(), out->empty() ? "" : "; wrote ",
                  out->c_str());
      return Status::Ok();
    };
  });
}

std::string Metric(const ml::ModelVersion& v, const char* name) {
  auto m = v.Metric(name);
  return m ? fmt::format("{:.4f}", *m) : std::string("-");
}

ml::PromotionGate GateFromConfig(const Config& cfg) {
  ml::PromotionGate gate;
  gate.metric = cfg.models.promotion_metric;
  gate.min_value = cfg.models.min_quality;
  gate.min_improvement = cfg.models.min_improvement;
  return gate;
}

void AddModels(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* models = app.add_subcommand("models", "The model registry: versions, cards, aliases");
  models->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  auto open =
      [&g]() -> Result<std::pair<std::unique_ptr<lake::Lake>, std::unique_ptr<ml::ModelRegistry>>> {
    ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
    ENGAGE_ASSIGN_OR_RETURN(auto reg,
                            ml::ModelRegistry::Open(lake->home(), SystemClock::Default()));
    return std::make_pair(std::move(lake), std::move(reg));
  };
  // A subcommand with --json and up to two positional arguments, each "!name: help" (required)
  // or "?name: help".
  auto arg1 = std::make_shared<std::string>(), arg2 = std::make_shared<std::string>();
  auto add = [&](const char* name, const char* help, const char* a1, const char* a2) {
    auto* cmd = models->add_subcommand(name, help);
    for (auto [spec, value] : {std::pair{a1, arg1}, std::pair{a2, arg2}}) {
      if (spec == nullptr) continue;
      std::string text(spec + 1);
      cmd->add_option(text.substr(0, text.find(':')), *value, text.substr(text.find(':') + 2))
          ->required(spec[0] == '!');
    }
    cmd->add_flag("--json", *json, "Print JSON");
    return cmd;
  };

  add("list", "Every model version, newest first", "?name: only this model", nullptr)
      ->callback([action, open, arg1, json] {
        *action = [open, arg1, json]() -> Status {
          ENGAGE_ASSIGN_OR_RETURN(auto h, open());
          ENGAGE_ASSIGN_OR_RETURN(auto versions, h.second->List(*arg1));
          Json out = Json::array();
          std::vector<std::vector<std::string>> rows;
          for (const auto& v : versions) {
            Json j = v.ToJson();
            j.erase("card");
            j["metrics"] = v.card.contains("metrics") ? v.card["metrics"]["valid"] : Json();
            out.push_back(std::move(j));
            std::string aliases;
            for (const auto& a : v.aliases) aliases += (aliases.empty() ? "" : ",") + a;
            rows.push_back({v.name, std::to_string(v.version), v.created_at, aliases,
                            Metric(v, "auc"), Metric(v, "pr_auc"), Metric(v, "log_loss")});
          }
          if (*json) {
            PrintJson(out);
          } else {
            PrintTable({"model", "version", "created", "aliases", "auc", "pr_auc", "log_loss"},
                       rows);
          }
          return Status::Ok();
        };
      });

  add("show", "A version's summary, or its whole card with --json",
      "!model: name, name@3 or "
      "name@champion",
      nullptr)
      ->callback([action, open, arg1, json] {
        *action = [open, arg1, json]() -> Status {
          ENGAGE_ASSIGN_OR_RETURN(auto h, open());
          ENGAGE_ASSIGN_OR_RETURN(auto v, h.second->Resolve(*arg1));
          if (*json) {
            PrintJson(v.ToJson());
          } else {
            std::printf("%s", v.ToText().c_str());
          }
          return Status::Ok();
        };
      });

  add("promote",
      "Make a version the champion if it passes the gate ([models] in engage.toml): "
      "promote NAME N, or promote NAME@N",
      "!model: name@version, or name followed by the version", "?version: the version number")
      ->callback([action, open, arg1, arg2, json] {
        *action = [open, arg1, arg2, json]() -> Status {
          if (!arg2->empty() && arg1->find('@') != std::string::npos) {
            return InvalidArgumentError(fmt::format(
                "give the version once: `engage models promote {} {}` or `engage models promote "
                "{}@{}`",
                arg1->substr(0, arg1->find('@')), *arg2, arg1->substr(0, arg1->find('@')), *arg2));
          }
          ENGAGE_ASSIGN_OR_RETURN(auto h, open());
          ENGAGE_ASSIGN_OR_RETURN(auto v,
                                  h.second->Resolve(arg2->empty() ? *arg1 : *arg1 + "@" + *arg2));
          ENGAGE_ASSIGN_OR_RETURN(
              auto d, h.second->Promote(v.name, v.version, GateFromConfig(h.first->config())));
          Json j = d.ToJson();
          j["model"] = v.name;
          j["version"] = v.version;
          if (*json) {
            PrintJson(j);
          } else {
            std::printf("%s %s@%ld: %s\n", d.promoted ? "promoted" : "not promoted", v.name.c_str(),
                        static_cast<long>(v.version), d.reason.c_str());
          }
          // Not passing the gate is an answer, not a failure of the command; scripts read --json.
          return Status::Ok();
        };
      });

  add("alias", "Point an alias at a version without the gate (an operator's override)",
      "!model: name@version", "!alias: e.g. challenger")
      ->callback([action, open, arg1, arg2, json] {
        *action = [open, arg1, arg2, json]() -> Status {
          ENGAGE_ASSIGN_OR_RETURN(auto h, open());
          if (arg1->find('@') == std::string::npos) {
            return InvalidArgumentError(
                fmt::format("name the version to point '{}' at: `engage models alias {}@N {}`",
                            *arg2, *arg1, *arg2));
          }
          ENGAGE_ASSIGN_OR_RETURN(auto v, h.second->Resolve(*arg1));
          ENGAGE_ASSIGN_OR_RETURN(auto previous, h.second->SetAlias(v.name, *arg2, v.version));
          if (*json) {
            PrintJson(Json{{"model", v.name},
                           {"alias", *arg2},
                           {"version", v.version},
                           {"previous", previous ? Json(*previous) : Json()}});
          } else {
            std::printf("%s@%s -> version %ld%s\n", v.name.c_str(), arg2->c_str(),
                        static_cast<long>(v.version),
                        previous ? fmt::format(" (was {})", *previous).c_str() : "");
          }
          return Status::Ok();
        };
      });

  add("diff", "Differences between two versions of a model: metrics, params, data, features",
      "!a: name@version", "!b: name@version, or just the version")
      ->callback([action, open, arg1, arg2, json] {
        *action = [open, arg1, arg2, json]() -> Status {
          ENGAGE_ASSIGN_OR_RETURN(auto h, open());
          ENGAGE_ASSIGN_OR_RETURN(auto a, h.second->Resolve(*arg1));
          // "3" (not a model's name) is a version of a's model.
          bool bare = arg2->find('@') == std::string::npos && !IsValidIdentifier(*arg2);
          ENGAGE_ASSIGN_OR_RETURN(auto b, h.second->Resolve(bare ? a.name + "@" + *arg2 : *arg2));
          if (a.name != b.name) {
            return InvalidArgumentError(fmt::format(
                "diff compares two versions of one model, not {} and {}", a.name, b.name));
          }
          ENGAGE_ASSIGN_OR_RETURN(Json d, h.second->Diff(a.name, a.version, b.version));
          if (*json) {
            PrintJson(d);
          } else {
            std::printf("%s", ml::DiffToText(d).c_str());
          }
          return Status::Ok();
        };
      });
}

void AddScore(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "score", "Score every customer at the latest cutoff into the predictions table");
  auto o = std::make_shared<ml::ScoreOptions>();
  auto no_reasons = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--model", o->model, "name, name@version or name@alias")
      ->default_str("engagement@champion");
  cmd->add_option("--cutoff", o->cutoff,
                  "Score as of this day, YYYY-MM-DD (default: the day after the last event)");
  cmd->add_flag("--no-reasons", *no_reasons, "Skip the top-3 reasons (SHAP contributions)");
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([&g, action, o, no_reasons, json] {
    *action = [&g, o, no_reasons, json]() -> Status {
      o->reasons = !*no_reasons;
      o->stage = [](const std::string& what) { std::fprintf(stderr, "%s\n", what.c_str()); };
      ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/true));
      ENGAGE_ASSIGN_OR_RETURN(auto engine, sql::QueryEngine::Open(*lake));
      ENGAGE_ASSIGN_OR_RETURN(auto registry,
                              ml::ModelRegistry::Open(lake->home(), SystemClock::Default()));
      ENGAGE_ASSIGN_OR_RETURN(ml::ScoreReport r, ml::ScoreAll(*lake, *engine, *registry, *o));
      if (*json) {
        PrintJson(r.ToJson());
        return Status::Ok();
      }
      std::printf("scored %ld customers at %s with %s@%ld (mean score %.4f); ingest %s\n",
                  static_cast<long>(r.customers), r.cutoff.c_str(), r.model.c_str(),
                  static_cast<long>(r.version), r.mean_score, r.ingest_id.c_str());
      std::vector<std::vector<std::string>> rows;
      for (const auto& [name, n] : r.segments) {
        rows.push_back({name, std::to_string(n),
                        fmt::format("{:.1f}%", r.customers > 0 ? 100.0 * n / r.customers : 0)});
      }
      PrintTable({"segment", "customers", "share"}, rows);
      std::printf(
          "features %.2f s, XGBoost %.3f s (%.0f customers/s), reasons %.2f s, write "
          "%.2f s\n",
          r.features_seconds, r.predict_seconds,
          r.predict_seconds > 0 ? r.customers / r.predict_seconds : 0.0, r.reasons_seconds,
          r.write_seconds);
      return Status::Ok();
    };
  });
}

}  // namespace

void RegisterMlCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* btyd = app.add_subcommand(
      "btyd", "BG/NBD and Gamma-Gamma: probability alive, expected transactions, CLV");
  btyd->require_subcommand(1);
  AddFit(*btyd, g, action);
  AddPredict(*btyd, g, action);
  AddFeatures(app, g, action);
  AddModels(app, g, action);
  AddScore(app, g, action);
}

}  // namespace engage::cli
