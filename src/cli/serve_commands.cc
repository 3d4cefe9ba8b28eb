// `engage publish`, `engage serve` and `engage ab`: flags and output; the work is in app and
// server.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engage/app/app.h"
#include "engage/core/clock.h"
#include "engage/ml/registry.h"
#include "engage/serve/ab.h"
#include "engage/serve/store.h"
#include "engage/server/run.h"
#include "engage/sql/query.h"

namespace engage::cli {

namespace {

void AddPublish(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "publish",
      "Copy the latest predictions of one or more model versions into the serving store "
      "(an atomic switch: servers see the old or the new snapshot, never a mix)");
  auto refs = std::make_shared<std::vector<std::string>>();
  auto keep = std::make_shared<int>(3);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--model", *refs,
                  "name@alias or name@version, repeatable; the first is served by default "
                  "(default: engagement@champion)");
  cmd->add_option("--keep", *keep, "Snapshots kept on disk, the new one included")
      ->default_val(3)
      ->check(CLI::Range(1, 100));
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([&g, action, refs, keep, json] {
    *action = [&g, refs, keep, json]() -> Status {
      if (refs->empty()) refs->push_back("engagement@champion");
      ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
      ENGAGE_ASSIGN_OR_RETURN(serve::PublishReport r, application->Publish(*refs, *keep));
      if (*json) {
        PrintJson(r.ToJson());
        return Status::Ok();
      }
      const auto& s = r.snapshot;
      std::printf("published snapshot %s of %s in %.2f s: %.1f MB, %.1f bytes per customer\n",
                  s.id.c_str(), s.model.c_str(), r.seconds, static_cast<double>(s.bytes) / 1e6,
                  r.bytes_per_customer);
      std::vector<std::vector<std::string>> rows;
      for (const auto& v : s.versions) {
        rows.push_back({std::to_string(v.version), v.version == s.default_version ? "yes" : "",
                        std::to_string(v.customers), v.scored_at, v.cutoff});
      }
      PrintTable({"version", "default", "customers", "scored_at", "cutoff"}, rows);
      return Status::Ok();
    };
  });
}

void AddServe(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve predictions, models and metered SQL over HTTP (API keys required: engage keys "
      "create)");
  auto f = std::make_shared<server::ServeOptions>();
  cmd->add_option("--port", f->http.port, "TCP port; 0 picks a free one")
      ->default_val(8080)
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--bind", f->http.bind, "Address to listen on")->default_val("127.0.0.1");
  cmd->add_option("--threads", f->http.threads, "Event loops (0 = one per core)")
      ->default_val(0)
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-connections", f->http.max_connections,
                  "Open connections beyond which new ones get 503")
      ->default_val(10000)
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--max-body-bytes", f->http.max_body_bytes, "Largest request body (413 beyond)")
      ->default_val(1024 * 1024);
  cmd->add_option("--rate-limit", f->api.rate.rate_per_second,
                  "Requests per second per API key (429 beyond; 0 = no limit)")
      ->default_val(1000);
  cmd->add_option("--burst", f->api.rate.burst, "Requests a rested key may make at once")
      ->default_val(2000);
  cmd->add_option("--port-file", f->port_file, "Write the bound port to this file once listening");
  cmd->callback([&g, action, f] {
    *action = [&g, f]() -> Status { return server::Serve(ResolveHome(g.home), *f); };
  });
}

void AddAb(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* ab = app.add_subcommand(
      "ab", "A/B tests of model versions: traffic splits and the outcome readout");
  ab->require_subcommand(1);
  auto* split = ab->add_subcommand("split", "Show, set or clear a model's traffic split");
  split->require_subcommand(1);

  auto* set = split->add_subcommand(
      "set",
      "Split a model's customers between arms, e.g. champion=90 challenger=10 (served "
      "from the next engage publish)");
  auto model = std::make_shared<std::string>();
  auto arms = std::make_shared<std::vector<std::string>>();
  auto salt = std::make_shared<std::string>();
  set->add_option("model", *model, "Model name")->required();
  set->add_option("arms", *arms, "name=percent or name:ref=percent (ref: alias or version)")
      ->required();
  set->add_option("--salt", *salt, "Reshuffles who falls in which arm (default: the model name)");
  set->callback([&g, action, model, arms, salt] {
    *action = [&g, model, arms, salt]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
      ENGAGE_ASSIGN_OR_RETURN(serve::TrafficSplit s,
                              serve::TrafficSplit::Parse(*model, *arms, *salt));
      // Every arm must name a registered version now, not at the next publish.
      ENGAGE_ASSIGN_OR_RETURN(auto registry,
                              ml::ModelRegistry::Open(lake->home(), SystemClock::Default()));
      for (const auto& a : s.arms) {
        ENGAGE_RETURN_IF_ERROR(registry->Resolve(fmt::format("{}@{}", *model, a.ref)).status());
      }
      ENGAGE_ASSIGN_OR_RETURN(
          auto store, serve::SplitStore::Open(lake->home().meta_db(), SystemClock::Default()));
      ENGAGE_RETURN_IF_ERROR(store->Put(s));
      std::printf("traffic split of %s set:", model->c_str());
      for (const auto& a : s.arms) std::printf(" %s=%g%%", a.name.c_str(), a.weight);
      std::printf("\nit is served from the next `engage publish`\n");
      return Status::Ok();
    };
  });

  auto* show = split->add_subcommand("show", "Print a model's traffic split (JSON)");
  auto show_model = std::make_shared<std::string>();
  show->add_option("model", *show_model, "Model name")->required();
  show->callback([&g, action, show_model] {
    *action = [&g, show_model]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
      ENGAGE_ASSIGN_OR_RETURN(
          auto store, serve::SplitStore::Open(lake->home().meta_db(), SystemClock::Default()));
      ENGAGE_ASSIGN_OR_RETURN(auto s, store->Get(*show_model));
      if (!s) return NotFoundError(fmt::format("model '{}' has no traffic split", *show_model));
      PrintJson(s->ToJson());
      return Status::Ok();
    };
  });

  auto* clear = split->add_subcommand("clear", "Remove a model's traffic split");
  auto clear_model = std::make_shared<std::string>();
  clear->add_option("model", *clear_model, "Model name")->required();
  clear->callback([&g, action, clear_model] {
    *action = [&g, clear_model]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
      ENGAGE_ASSIGN_OR_RETURN(
          auto store, serve::SplitStore::Open(lake->home().meta_db(), SystemClock::Default()));
      ENGAGE_RETURN_IF_ERROR(store->Remove(*clear_model));
      std::printf("traffic split of %s removed (served until the next engage publish)\n",
                  clear_model->c_str());
      return Status::Ok();
    };
  });

  auto* report = ab->add_subcommand(
      "report", "Compare the arms' engagement after exposure, with 95% confidence intervals");
  auto report_model = std::make_shared<std::string>("engagement");
  auto horizon = std::make_shared<int>(0);
  auto json = std::make_shared<bool>(false);
  report->add_option("model", *report_model, "Model name")->default_val("engagement");
  report->add_option("--horizon-days", *horizon,
                     "Days after exposure a qualifying event counts (default: [engagement] "
                     "horizon_days)");
  report->add_flag("--json", *json, "Print the report as JSON");
  report->callback([&g, action, report_model, horizon, json] {
    *action = [&g, report_model, horizon, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
      ENGAGE_ASSIGN_OR_RETURN(auto engine, sql::QueryEngine::Open(*lake));
      const EngagementConfig& ec = lake->config().engagement;
      ENGAGE_ASSIGN_OR_RETURN(serve::AbReport r,
                              serve::ReportAb(*engine, lake->home(), ec, *report_model,
                                              *horizon > 0 ? *horizon : ec.horizon_days));
      if (*json) {
        PrintJson(r.ToJson());
        return Status::Ok();
      }
      std::printf("A/B readout of %s: engaged within %d days of first exposure (labels until %s)\n",
                  r.model.c_str(), r.horizon_days, r.labels_until.c_str());
      std::vector<std::vector<std::string>> rows;
      for (const auto& o : r.arms) {
        rows.push_back(
            {o.arm, std::to_string(o.version), std::to_string(o.exposed),
             std::to_string(o.labelled), std::to_string(o.engaged),
             fmt::format("{:.2f}% [{:.2f}, {:.2f}]", 100 * o.rate, 100 * o.ci_low, 100 * o.ci_high),
             &o == &r.arms.front() ? "control"
                                   : fmt::format("{:+.2f} pts [{:+.2f}, {:+.2f}]", 100 * o.diff,
                                                 100 * o.diff_ci_low, 100 * o.diff_ci_high)});
      }
      PrintTable({"arm", "version", "exposed", "labelled", "engaged", "rate (95% CI)",
                  "vs control (95% CI)"},
                 rows);
      return Status::Ok();
    };
  });
}

}  // namespace

void RegisterServeCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddPublish(app, g, action);
  AddServe(app, g, action);
  AddAb(app, g, action);
}

}  // namespace engage::cli
