// `engage train`: gradient-boosted trees (XGBoost) on a labelled lake table, evaluated on a
// held-out split. The plain-table mode (--table) lives in TrainTable; another mode can sit beside
// it and be chosen in the action.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engage/app/app.h"
#include "engage/core/fs.h"
#include "engage/core/progress.h"
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

// Boosting rounds on the status line (a terminal only).
ml::ProgressFn RoundProgress(StatusLine& line, const ml::TrainParams& params) {
  if (!line.enabled()) return nullptr;
  std::string metric = params.eval_metric.empty() ? "metric" : params.eval_metric;
  int total = params.num_boost_round;
  return [&line, metric, total](int round, double score) {
    line.Show(fmt::format("boosting: round {}/{}, validation {} {}", round + 1, total, metric,
                          std::isnan(score) ? "-" : fmt::format("{:.4f}", score)),
              round + 1 == total);
  };
}

// `engage train --table T --label C ...`: the plain labelled table mode.
Status TrainTable(const GlobalOptions& g, TrainArgs& a) {
  if (a.req.label_column.empty()) {
    return InvalidArgumentError("--label is required with --table (the column holding the label)");
  }
  a.req.params = ml::DefaultTableTrainParams();
  ENGAGE_RETURN_IF_ERROR(ml::ApplyTrainParams(a.params, a.req.params));
  ENGAGE_RETURN_IF_ERROR(CheckOutputPath(a.save));
  ENGAGE_ASSIGN_OR_RETURN(auto app, OpenApp(g));
  StatusLine line;
  auto trained = app->TrainTable(a.req, a.model.empty() ? a.req.table : a.model,
                                 RoundProgress(line, a.req.params));
  line.Finish();
  ENGAGE_RETURN_IF_ERROR(trained.status());
  if (!a.save.empty()) {  // the registered model file (XGBoost JSON)
    ENGAGE_ASSIGN_OR_RETURN(std::string model_json,
                            PosixFileSystem().ReadFile(trained->version.model_path()));
    ENGAGE_RETURN_IF_ERROR(WriteOutputFile(a.save, model_json));
  }
  Json j = trained->ToJson();
  j["saved"] = a.save.empty() ? Json(nullptr) : Json(a.save);
  Emit(a.json, j, [&] {
    std::fputs(trained->ToText().c_str(), stdout);
    if (!a.save.empty()) std::printf("saved the model to %s\n", a.save.c_str());
  });
  return Status::Ok();
}

Status TrainEngagementModel(const GlobalOptions& g, const std::string& model_name,
                            const ml::TrainParams& params, bool json) {
  ENGAGE_ASSIGN_OR_RETURN(auto app, OpenApp(g));
  ml::EngagementTrainOptions options;
  options.model_name = model_name;
  options.params = params;
  StatusLine line;
  options.stage = [&line](const std::string& what) {
    line.Finish();
    std::fprintf(stderr, "%s\n", what.c_str());
  };
  options.rounds = RoundProgress(line, params);
  auto trained = app->TrainEngagement(options);
  line.Finish();
  ENGAGE_RETURN_IF_ERROR(trained.status());
  Emit(json, trained->ToJson(), [&] { std::fputs(trained->ToText().c_str(), stdout); });
  return Status::Ok();
}

}  // namespace

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
  auto* a = &Keep<TrainArgs>();
  auto* table = cmd->add_option("--table", a->req.table,
                                "Lake table with one labelled example per row (default: train the "
                                "engagement model)");
  cmd->add_option("--model", a->model,
                  "The model name to register (default: engagement, or the --table name)");
  // These shape a labelled table's training; the engagement model takes its from [engagement].
  cmd->add_option("--label", a->req.label_column,
                  "Column holding the label (0/1, true/false or yes/no); required with --table")
      ->needs(table);
  cmd->add_option("--id", a->req.id_column,
                  "Id column: not a feature; a hash of it decides each row's split, so a row "
                  "always lands in the same split")
      ->needs(table);
  cmd->add_option("--exclude", a->req.exclude, "Columns that are not features (comma-separated)")
      ->delimiter(',')
      ->needs(table);
  cmd->add_option("--test-fraction", a->req.test_fraction,
                  "Share of the rows held out for the test split")
      ->needs(table);
  cmd->add_option("--valid-fraction", a->req.valid_fraction,
                  "Share of the other rows used for early stopping (0: no early stopping)")
      ->needs(table);
  auto* seed = cmd->add_option("--seed", a->req.seed,
                               "Seed of the split and of XGBoost's sampling (default 42 with "
                               "--table, else XGBoost's)");
  cmd->add_option("--param", a->params,
                  "XGBoost parameter key=value (repeatable), e.g. --param max_depth=4 "
                  "--param num_boost_round=500 --param scale_pos_weight=3");
  cmd->add_option("--save", a->save, "Write the model to this file (XGBoost JSON)")->needs(table);
  cmd->add_flag("--json", a->json, "Print the result as one JSON object");
  OnRun(cmd, action, [&g, a, seed]() -> Status {
    if (!a->req.table.empty()) return TrainTable(g, *a);
    ml::TrainParams params = ml::EngagementTrainOptions::DefaultEngagementParams();
    ENGAGE_RETURN_IF_ERROR(ml::ApplyTrainParams(a->params, params));
    if (seed->count() > 0) params.seed = a->req.seed;
    return TrainEngagementModel(g, a->model.empty() ? "engagement" : a->model, params, a->json);
  });
}

}  // namespace engage::cli
