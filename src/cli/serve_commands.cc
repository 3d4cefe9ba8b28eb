// `engage publish`: the serving store. The server commands join it as they arrive.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engage/core/clock.h"
#include "engage/ml/registry.h"
#include "engage/serve/store.h"

namespace engage::cli {

Result<serve::PublishReport> PublishModels(lake::Lake& lake, const std::vector<std::string>& refs,
                                           int keep) {
  ENGAGE_ASSIGN_OR_RETURN(auto registry,
                          ml::ModelRegistry::Open(lake.home(), SystemClock::Default()));
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
  return serve::Publish(lake, o, SystemClock::Default());
}

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
      ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
      ENGAGE_ASSIGN_OR_RETURN(serve::PublishReport r, PublishModels(*lake, *refs, *keep));
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

}  // namespace

void RegisterServeCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddPublish(app, g, action);
}

}  // namespace engage::cli
