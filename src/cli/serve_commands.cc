// `engage publish`, `engage serve` and `engage ab`: flags and output; the work is in app and
// server.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engage/app/app.h"
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
  struct O {
    std::vector<std::string> refs;
    int keep = 3;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("--model", o.refs,
                  "name@alias or name@version, repeatable; the first is served by default "
                  "(default: engagement@champion)");
  cmd->add_option("--keep", o.keep, "Snapshots kept on disk, the new one included")
      ->default_val(3)
      ->check(CLI::Range(1, 100));
  cmd->add_flag("--json", o.json, "Print the report as JSON");
  OnRun(cmd, action, [&g, &o]() -> Status {
    if (o.refs.empty()) o.refs.push_back("engagement@champion");
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(serve::PublishReport r, application->Publish(o.refs, o.keep));
    Emit(o.json, r.ToJson(), [&r] { std::fputs(r.ToText().c_str(), stdout); });
    return Status::Ok();
  });
}

void AddServe(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve predictions, models and metered SQL over HTTP (API keys required: engage keys "
      "create)");
  // The defaults are ServeOptions'; server::Serve checks the ranges (ServeOptions::Validate).
  auto& f = Keep<server::ServeOptions>();
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--port", f.http.port, "TCP port; 0 picks a free one");
  cmd->add_option("--bind", f.http.bind, "Address to listen on");
  cmd->add_option("--threads", f.http.threads, "Event loops (0 = one per core)");
  cmd->add_option("--max-connections", f.http.max_connections,
                  "Open connections beyond which new ones get 503");
  cmd->add_option("--max-body-bytes", f.http.max_body_bytes, "Largest request body (413 beyond)");
  cmd->add_option("--rate-limit", f.api.rate.rate_per_second,
                  "Requests per second per API key (429 beyond; 0 = no limit)");
  cmd->add_option("--burst", f.api.rate.burst, "Requests a rested key may make at once");
  cmd->add_option("--port-file", f.port_file, "Write the bound port to this file once listening");
  OnRun(cmd, action, [&g, &f]() -> Status { return server::Serve(ResolveHome(g.home), f); });
}

void AddAb(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* ab = app.add_subcommand(
      "ab", "A/B tests of model versions: traffic splits and the outcome readout");
  ab->require_subcommand(1);
  auto* split = ab->add_subcommand("split", "Show, set or clear a model's traffic split");
  split->require_subcommand(1);
  struct O {
    std::string model = "engagement", salt;
    std::vector<std::string> arms;
    int horizon = 0;
    bool json = false;
  };
  auto& o = Keep<O>();
  auto splits = [&g]() -> Result<std::unique_ptr<serve::SplitStore>> {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    return application->OpenSplits();
  };
  auto* set = split->add_subcommand(
      "set",
      "Split a model's customers between arms, e.g. champion=90 challenger=10 (served "
      "from the next engage publish)");
  set->add_option("model", o.model, "Model name")->required();
  set->add_option("arms", o.arms, "name=percent or name:ref=percent (ref: alias or version)")
      ->required();
  set->add_option("--salt", o.salt, "Reshuffles who falls in which arm (default: the model name)");
  OnRun(set, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(serve::TrafficSplit s,
                            application->SetTrafficSplit(o.model, o.arms, o.salt));
    std::printf("%sit is served from the next `engage publish`\n", s.ToText().c_str());
    return Status::Ok();
  });
  auto* show = split->add_subcommand("show", "Print a model's traffic split");
  show->add_option("model", o.model, "Model name")->required();
  show->add_flag("--json", o.json, "Print it as JSON");
  OnRun(show, action, [&o, splits]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, splits());
    ENGAGE_ASSIGN_OR_RETURN(auto s, store->Get(o.model));
    if (!s) return NotFoundError(fmt::format("model '{}' has no traffic split", o.model));
    Emit(o.json, s->ToJson(), [&s] { std::fputs(s->ToText().c_str(), stdout); });
    return Status::Ok();
  });
  auto* clear = split->add_subcommand("clear", "Remove a model's traffic split");
  clear->add_option("model", o.model, "Model name")->required();
  OnRun(clear, action, [&o, splits]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, splits());
    ENGAGE_RETURN_IF_ERROR(store->Remove(o.model));
    std::printf("traffic split of %s removed (served until the next engage publish)\n",
                o.model.c_str());
    return Status::Ok();
  });
  auto* report = ab->add_subcommand(
      "report", "Compare the arms' engagement after exposure, with 95% confidence intervals");
  report->add_option("model", o.model, "Model name")->default_val("engagement");
  report
      ->add_option("--horizon-days", o.horizon,
                   "Days after exposure a qualifying event counts (default: [engagement] "
                   "horizon_days)")
      ->check(CLI::Range(1, 3650));
  report->add_flag("--json", o.json, "Print the report as JSON");
  OnRun(report, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));
    ENGAGE_ASSIGN_OR_RETURN(auto reads, application->reads().Current());
    const EngagementConfig& ec = reads->config().engagement;
    ENGAGE_ASSIGN_OR_RETURN(serve::AbReport r,
                            serve::ReportAb(reads->query(), application->home(), ec, o.model,
                                            o.horizon > 0 ? o.horizon : ec.horizon_days));
    Emit(o.json, r.ToJson(), [&r] { std::fputs(r.ToText().c_str(), stdout); });
    return Status::Ok();
  });
}

}  // namespace

void RegisterServeCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddPublish(app, g, action);
  AddServe(app, g, action);
  AddAb(app, g, action);
}

}  // namespace engage::cli
