// `engage train`: gradient-boosted trees (XGBoost) on a labelled lake table, evaluated on a
// held-out split. The plain-table mode (--table) lives in TrainTable; another mode can sit beside
// it and be chosen in the action.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engage/app/app.h"
#include "engage/core/fs.h"
#include "engage/ml/engagement.h"
#include "engage/ml/table_train.h"

namespace engage::cli {

namespace {

struct TrainArgs {
  ml::TableTrainRequest req;
  std::vector<std::string> params;  // key=value
  std::string model;                // registered name; default: engagement or the table
  std::string save;
  bool json = false;
};

std::string Num(double v, const char* fmt_spec = "{:.4f}") {
  return std::isnan(v) ? std::string("-") : fmt::format(fmt::runtime(fmt_spec), v);
}

// One line on stderr per tenth of a second while boosting, when stderr is a terminal.
ml::ProgressFn RoundProgress(const ml::TrainParams& params) {
  if (::isatty(STDERR_FILENO) != 1) return nullptr;
  auto last = std::make_shared<std::chrono::steady_clock::time_point>();
  std::string metric = params.eval_metric.empty() ? "metric" : params.eval_metric;
  int total = params.num_boost_round;
  return [last, metric, total](int round, double score) {
    auto now = std::chrono::steady_clock::now();
    if (now - *last < std::chrono::milliseconds(100) && round + 1 < total) return;
    *last = now;
    std::fprintf(stderr, "\r\033[Kboosting: round %d/%d, validation %s %s", round + 1, total,
                 metric.c_str(), Num(score).c_str());
  };
}

// --param key=value flags onto `params`.
Status ApplyParams(const std::vector<std::string>& flags, ml::TrainParams& params) {
  for (const std::string& kv : flags) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError(fmt::format("--param '{}' is not key=value", kv));
    }
    std::string key = kv.substr(0, eq);
    if (key == "seed") return InvalidArgumentError("use --seed instead of --param seed=...");
    ENGAGE_RETURN_IF_ERROR(ml::SetTrainParam(params, key, kv.substr(eq + 1)));
  }
  return Status::Ok();
}

// `engage train --table T --label C ...`: the plain labelled table mode.
Status TrainTable(const GlobalOptions& g, TrainArgs& a) {
  if (a.req.label_column.empty()) {
    return InvalidArgumentError("--label is required with --table (the column holding the label)");
  }
  a.req.params = ml::DefaultTableTrainParams();
  ENGAGE_RETURN_IF_ERROR(ApplyParams(a.params, a.req.params));
  ENGAGE_ASSIGN_OR_RETURN(auto app, OpenApp(g));
  ml::ProgressFn progress = RoundProgress(a.req.params);
  auto trained = app->TrainTable(a.req, a.model.empty() ? a.req.table : a.model, progress);
  if (progress) std::fprintf(stderr, "\r\033[K");
  ENGAGE_RETURN_IF_ERROR(trained.status());
  if (!a.save.empty()) {  // the registered model file (XGBoost JSON)
    PosixFileSystem fs;
    ENGAGE_ASSIGN_OR_RETURN(std::string model_json, fs.ReadFile(trained->version.model_path()));
    ENGAGE_RETURN_IF_ERROR(fs.WriteFileAtomic(a.save, model_json));
  }
  if (a.json) {
    Json j = trained->ToJson();
    j["saved"] = a.save.empty() ? Json(nullptr) : Json(a.save);
    PrintJson(j);
  } else {
    std::printf("%s%s", trained->ToText().c_str(),
                a.save.empty() ? "" : fmt::format("saved the model to {}\n", a.save).c_str());
  }
  return Status::Ok();
}

}  // namespace

Status TrainEngagementModel(const GlobalOptions& g, const std::string& model_name,
                            const ml::TrainParams& params, bool json) {
  ENGAGE_ASSIGN_OR_RETURN(auto app, OpenApp(g));
  ml::EngagementTrainOptions options;
  options.model_name = model_name;
  options.params = params;
  options.stage = [](const std::string& what) { std::fprintf(stderr, "%s\n", what.c_str()); };
  if (::isatty(STDERR_FILENO) == 1) {
    options.rounds = [](int round, double score) {
      std::fprintf(stderr, "\rround %d  valid auc %.4f", round + 1, score);
    };
  }
  auto trained = app->TrainEngagement(options);
  if (options.rounds) std::fprintf(stderr, "\n");
  ENGAGE_RETURN_IF_ERROR(trained.status());
  if (json) {
    PrintJson(trained->ToJson());
  } else {
    std::printf("%s", trained->ToText().c_str());
  }
  return Status::Ok();
}

void RegisterTrainCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "train",
      "Train the engagement model ([engagement] in engage.toml) and register it, or with --table "
      "a binary classifier on a labelled lake table evaluated on a held-out split");
  cmd->footer(
      "Without --table: features at the training cutoffs plus BG/NBD and Gamma-Gamma, XGBoost\n"
      "validated on the latest labelled cutoff, a new version in the registry (engage models).\n\n"
      "With --table, every column other than the label, --id and --exclude is a feature: numbers "
      "as they are,\n"
      "booleans 0/1, dates as days since 1970, text that is (95%) numeric as a number, other\n"
      "text one-hot (its 50 most frequent values). Labels: 0/1, true/false or yes/no.\n"
      "Defaults: eta 0.05, max_depth 4, subsample 0.8, colsample_bytree 0.8, up to 1000 rounds,\n"
      "early stopping after 50 rounds without a better validation log-loss.\n\n"
      "Example:\n"
      "  engage train --table telco --label churn --id customer_id --save churn.json");
  auto a = std::make_shared<TrainArgs>();
  cmd->add_option("--table", a->req.table,
                  "Lake table with one labelled example per row (default: train the engagement "
                  "model)");
  cmd->add_option("--model", a->model,
                  "The model name to register (default: engagement, or the --table name)");
  cmd->add_option("--label", a->req.label_column,
                  "Column holding the label (0/1, true/false or yes/no); required with --table");
  cmd->add_option("--id", a->req.id_column,
                  "Id column: not a feature; a hash of it decides each row's split, so a row "
                  "always lands in the same split");
  cmd->add_option("--exclude", a->req.exclude, "Columns that are not features (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--test-fraction", a->req.test_fraction,
                  "Share of the rows held out for the test split")
      ->capture_default_str();
  cmd->add_option("--valid-fraction", a->req.valid_fraction,
                  "Share of the other rows used for early stopping (0: no early stopping)")
      ->capture_default_str();
  cmd->add_option("--seed", a->req.seed, "Seed of the split and of XGBoost's sampling")
      ->capture_default_str();
  cmd->add_option("--param", a->params,
                  "XGBoost parameter key=value (repeatable), e.g. --param max_depth=4 "
                  "--param num_boost_round=500 --param scale_pos_weight=3");
  cmd->add_option("--save", a->save, "Write the model to this file (XGBoost JSON)");
  cmd->add_flag("--json", a->json, "Print the result as one JSON object");
  cmd->callback([&g, action, a] {
    *action = [&g, a]() -> Status {
      if (a->req.table.empty()) {
        if (!a->req.label_column.empty() || !a->save.empty()) {
          return InvalidArgumentError(
              "--label and --save go with --table; the engagement model takes its data "
              "settings from [engagement] in engage.toml");
        }
        ml::TrainParams params = ml::EngagementTrainOptions::DefaultEngagementParams();
        ENGAGE_RETURN_IF_ERROR(ApplyParams(a->params, params));
        return TrainEngagementModel(g, a->model.empty() ? "engagement" : a->model, params, a->json);
      }
      return TrainTable(g, *a);
    };
  });
}

}  // namespace engage::cli
