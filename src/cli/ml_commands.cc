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

struct Fits {
  ml::BgNbdFit bgnbd;
  std::optional<ml::GammaGammaFit> gamma_gamma;  // none without amounts or repeat spend
  std::string gamma_gamma_skipped;
};

Result<Fits> FitBoth(const std::vector<ml::CustomerSummary>& customers, bool with_amounts) {
  Fits f;
  ENGAGE_ASSIGN_OR_RETURN(f.bgnbd, ml::FitBgNbd(customers));
  if (!with_amounts) {
    f.gamma_gamma_skipped = "no amount column";
    return f;
  }
  auto gg = ml::FitGammaGamma(customers);
  if (gg.ok()) {
    f.gamma_gamma = *gg;
  } else if (gg.status().code() == StatusCode::kInvalidArgument) {
    f.gamma_gamma_skipped = gg.status().message();
  } else {
    return gg.status();
  }
  return f;
}

Json FitsJson(const Fits& f, const BtydArgs& a, int64_t customers) {
  Json j = Json::object();
  j["table"] = a.summary.table;
  j["calibration_end"] = a.summary.calibration_end;
  j["time_unit"] = a.time_unit;
  j["customers"] = customers;
  j["bgnbd"] = f.bgnbd.ToJson();
  if (f.gamma_gamma) {
    j["gamma_gamma"] = f.gamma_gamma->ToJson();
  } else {
    j["gamma_gamma"] = nullptr;
    j["gamma_gamma_skipped"] = f.gamma_gamma_skipped;
  }
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
      ENGAGE_ASSIGN_OR_RETURN(Fits f, FitBoth(customers, !a->summary.amount_column.empty()));
      if (a->json) {
        PrintJson(FitsJson(f, *a, static_cast<int64_t>(customers.size())));
        return Status::Ok();
      }
      const auto& b = f.bgnbd;
      std::printf("%zu customers, calibration to %s, time in %ss\n\n", customers.size(),
                  a->summary.calibration_end.empty() ? "the last event"
                                                     : a->summary.calibration_end.c_str(),
                  a->time_unit.c_str());
      std::printf("BG/NBD       r = %.4f  alpha = %.4f  a = %.4f  b = %.4f\n", b.params.r,
                  b.params.alpha, b.params.a, b.params.b);
      std::printf("             log-likelihood %.4f over %ld customers\n", b.report.log_likelihood,
                  static_cast<long>(b.report.customers));
      if (f.gamma_gamma) {
        const auto& gg = *f.gamma_gamma;
        std::printf("Gamma-Gamma  p = %.4f  q = %.4f  gamma = %.4f\n", gg.params.p, gg.params.q,
                    gg.params.gamma);
        std::printf("             log-likelihood %.4f over %ld repeat customers (%ld left out)\n",
                    gg.report.log_likelihood, static_cast<long>(gg.report.customers),
                    static_cast<long>(gg.report.excluded));
      } else {
        std::printf("Gamma-Gamma  not fitted: %s\n", f.gamma_gamma_skipped.c_str());
      }
      return Status::Ok();
    };
  });
}

// Per-customer outputs as CSV (customer ids are quoted when needed).
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
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
      ENGAGE_ASSIGN_OR_RETURN(Fits f, FitBoth(customers, !a->summary.amount_column.empty()));
      double days = a->summary.days_per_unit;
      double h = *horizon > 0 ? *horizon : (days == 1 ? 30 : 4);
      clv->period_length = 30.0 / days;
      std::string csv =
          "customer_id,x,t_x,T,monetary,p_alive,expected_transactions,expected_spend,clv\n";
      Json rows = Json::array();
      int64_t shown = 0;
      for (const auto& c : customers) {
        double alive = ml::ProbabilityAlive(f.bgnbd.params, c);
        double expected = ml::ExpectedTransactions(f.bgnbd.params, c, h);
        std::optional<double> spend, value;
        if (f.gamma_gamma) {
          spend = ml::ExpectedSpend(f.gamma_gamma->params, c);
          value = ml::CustomerLifetimeValue(f.bgnbd.params, f.gamma_gamma->params, c, *clv);
        }
        auto opt = [](const std::optional<double>& v) {
          return v ? fmt::format("{:.6g}", *v) : std::string();
        };
        csv +=
            fmt::format("{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},{}\n", CsvField(c.customer_id),
                        c.x, c.t_x, c.T, c.monetary, alive, expected, opt(spend), opt(value));
        if (out->empty() && (*limit == 0 || shown < *limit)) {
          ++shown;
          Json r = Json::object();
          r["customer_id"] = c.customer_id;
          r["x"] = c.x;
          r["t_x"] = c.t_x;
          r["T"] = c.T;
          r["monetary"] = c.monetary;
          r["p_alive"] = alive;
          r["expected_transactions"] = expected;
          r["expected_spend"] = spend ? Json(*spend) : Json();
          r["clv"] = value ? Json(*value) : Json();
          rows.push_back(std::move(r));
        }
      }
      if (!out->empty()) {
        PosixFileSystem fs;
        ENGAGE_RETURN_IF_ERROR(fs.WriteFileAtomic(*out, csv));
      }
      if (a->json) {
        Json j = FitsJson(f, *a, static_cast<int64_t>(customers.size()));
        j["horizon"] = h;
        if (!out->empty()) {
          j["out"] = *out;
        } else {
          j["predictions"] = std::move(rows);
        }
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
      for (const Json& r : rows) {
        auto num = [](const Json& v) {
          return v.is_null() ? std::string("-") : fmt::format("{:.4f}", v.get<double>());
        };
        table.push_back({r["customer_id"].get<std::string>(),
                         fmt::format("{}", r["x"].get<double>()), num(r["p_alive"]),
                         num(r["expected_transactions"]), num(r["expected_spend"]), num(r["clv"])});
      }
      PrintTable({"customer_id", "x", "p_alive", "expected_transactions", "expected_spend", "clv"},
                 table);
      if (static_cast<int64_t>(customers.size()) > shown) {
        std::printf("(%ld of %zu customers; --out FILE writes all)\n", static_cast<long>(shown),
                    customers.size());
      }
      return Status::Ok();
    };
  });
}

// Feature rows as CSV: customer_id, cutoff, label, then the features (empty for missing).
std::string FeaturesCsv(const features::FeatureFrame& f) {
  std::string out = "customer_id,cutoff,label";
  for (const auto& n : f.names) out += "," + n;
  out += "\n";
  auto num = [](float v) { return std::isnan(v) ? std::string() : fmt::format("{}", v); };
  for (int64_t i = 0; i < f.rows(); ++i) {
    out += CsvField(f.customer_ids[i]) + "," + f.cutoffs[i] + "," + num(f.labels[i]);
    for (const auto& col : f.columns) out += "," + num(col[i]);
    out += "\n";
  }
  return out;
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
      ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame f, builder.Build(days));
      if (!out->empty()) {
        PosixFileSystem fs;
        ENGAGE_RETURN_IF_ERROR(fs.WriteFileAtomic(*out, FeaturesCsv(f)));
      }
      Json summary = Json::object();
      summary["cutoffs"] = days;
      summary["rows"] = f.rows();
      int64_t labelled = 0, positive = 0;
      for (float l : f.labels) {
        labelled += std::isnan(l) ? 0 : 1;
        positive += l == 1 ? 1 : 0;
      }
      summary["labelled"] = labelled;
      summary["positive_rate"] = labelled > 0 ? static_cast<double>(positive) / labelled : 0.0;
      Json cols = Json::array();
      for (size_t j = 0; j < f.names.size(); ++j) {
        int64_t missing = 0;
        double sum = 0;
        for (float v : f.columns[j]) {
          if (std::isnan(v)) {
            ++missing;
          } else {
            sum += v;
          }
        }
        int64_t present = f.rows() - missing;
        cols.push_back(Json{{"name", f.names[j]},
                            {"missing", f.rows() > 0 ? static_cast<double>(missing) / f.rows() : 0},
                            {"mean", present > 0 ? sum / present : 0.0}});
      }
      summary["features"] = std::move(cols);
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
                  static_cast<long>(f.rows()), days.size(), static_cast<long>(labelled),
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

  auto* list = models->add_subcommand("list", "Every model version, newest first");
  auto name = std::make_shared<std::string>();
  list->add_option("name", *name, "Only this model");
  list->add_flag("--json", *json, "Print JSON");
  list->callback([action, open, name, json] {
    *action = [open, name, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto h, open());
      ENGAGE_ASSIGN_OR_RETURN(auto versions, h.second->List(*name));
      if (*json) {
        Json out = Json::array();
        for (const auto& v : versions) {
          Json j = v.ToJson();
          j.erase("card");
          j["metrics"] = v.card.contains("metrics") ? v.card["metrics"]["valid"] : Json();
          out.push_back(std::move(j));
        }
        PrintJson(out);
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& v : versions) {
        std::string aliases;
        for (const auto& a : v.aliases) aliases += (aliases.empty() ? "" : ",") + a;
        rows.push_back({v.name, std::to_string(v.version), v.created_at, aliases, Metric(v, "auc"),
                        Metric(v, "pr_auc"), Metric(v, "log_loss")});
      }
      PrintTable({"model", "version", "created", "aliases", "auc", "pr_auc", "log_loss"}, rows);
      return Status::Ok();
    };
  });

  auto* show =
      models->add_subcommand("show", "A version's model card (name, name@3, name@champion)");
  auto ref = std::make_shared<std::string>();
  show->add_option("model", *ref, "name[@version|@alias]")->required();
  auto show_json = std::make_shared<bool>(false);
  show->add_flag("--json", *show_json, "Print the card as JSON (the default for now)");
  show->callback([action, open, ref] {
    *action = [open, ref]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto h, open());
      ENGAGE_ASSIGN_OR_RETURN(auto v, h.second->Resolve(*ref));
      PrintJson(v.ToJson());
      return Status::Ok();
    };
  });

  auto* promote = models->add_subcommand(
      "promote", "Make a version the champion if it passes the gate ([models] in engage.toml)");
  auto pref = std::make_shared<std::string>();
  promote->add_option("model", *pref, "name@version")->required();
  promote->add_flag("--json", *json, "Print JSON");
  promote->callback([action, open, pref, json] {
    *action = [open, pref, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto h, open());
      ENGAGE_ASSIGN_OR_RETURN(auto v, h.second->Resolve(*pref));
      ml::PromotionGate gate = GateFromConfig(h.first->config());
      ENGAGE_ASSIGN_OR_RETURN(auto d, h.second->Promote(v.name, v.version, gate));
      if (*json) {
        Json j = d.ToJson();
        j["model"] = v.name;
        j["version"] = v.version;
        PrintJson(j);
      } else {
        std::printf("%s %s@%ld: %s\n", d.promoted ? "promoted" : "not promoted", v.name.c_str(),
                    static_cast<long>(v.version), d.reason.c_str());
      }
      // Not passing the gate is an answer, not a failure of the command; scripts read --json.
      return Status::Ok();
    };
  });

  auto* alias = models->add_subcommand(
      "alias", "Point an alias at a version without the gate (an operator's override)");
  auto aref = std::make_shared<std::string>();
  auto aname = std::make_shared<std::string>();
  alias->add_option("model", *aref, "name@version")->required();
  alias->add_option("alias", *aname, "e.g. challenger")->required();
  alias->callback([action, open, aref, aname] {
    *action = [open, aref, aname]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto h, open());
      ENGAGE_ASSIGN_OR_RETURN(auto v, h.second->Resolve(*aref));
      ENGAGE_RETURN_IF_ERROR(h.second->SetAlias(v.name, *aname, v.version));
      std::printf("%s@%s -> version %ld\n", v.name.c_str(), aname->c_str(),
                  static_cast<long>(v.version));
      return Status::Ok();
    };
  });

  auto* diff = models->add_subcommand("diff", "Differences between two versions of a model");
  auto da = std::make_shared<std::string>();
  auto db = std::make_shared<std::string>();
  diff->add_option("a", *da, "name@version")->required();
  diff->add_option("b", *db, "name@version (or just the version)")->required();
  diff->callback([action, open, da, db] {
    *action = [open, da, db]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto h, open());
      ENGAGE_ASSIGN_OR_RETURN(auto a, h.second->Resolve(*da));
      std::string bref = db->find('@') == std::string::npos &&
                                 db->find_first_not_of("0123456789") == std::string::npos
                             ? a.name + "@" + *db
                             : *db;
      ENGAGE_ASSIGN_OR_RETURN(auto b, h.second->Resolve(bref));
      if (a.name != b.name) {
        return InvalidArgumentError("diff compares two versions of the same model");
      }
      ENGAGE_ASSIGN_OR_RETURN(Json d, h.second->Diff(a.name, a.version, b.version));
      PrintJson(d);
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
  const ml::EngagementTrainResult& r = trained->trained;
  if (json) {
    PrintJson(trained->ToJson());
    return Status::Ok();
  }
  std::printf("registered %s@%ld: %ld training rows, %ld validation rows (cutoff %s)\n",
              r.version.name.c_str(), static_cast<long>(r.version.version),
              static_cast<long>(r.rows_train), static_cast<long>(r.rows_valid),
              r.version.card["data"]["validation_cutoff"].get<std::string>().c_str());
  std::printf(
      "  validation AUC %.4f (recency-only baseline %.4f), PR-AUC %.4f, log-loss %.4f, "
      "Brier %.4f\n",
      r.valid.roc_auc, r.baseline_auc, r.valid.pr_auc, r.valid.log_loss, r.valid.brier);
  std::printf("  %d rounds, best iteration %d, %.1f s\n", r.summary.rounds_run,
              r.summary.best_iteration, r.seconds);
  std::printf("  %s\n", trained->champion_note.c_str());
  return Status::Ok();
}

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
