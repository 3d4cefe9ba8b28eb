// `engage keys ...` and `engage audit`: API keys and the audit log of `engage serve`.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engage/core/clock.h"
#include "engage/core/home.h"
#include "engage/serve/auth.h"

namespace engage::cli {
namespace {

// meta.db of an existing home.
Result<std::string> MetaDb(const GlobalOptions& g) {
  HomePaths home = ResolveHome(g.home);
  ENGAGE_RETURN_IF_ERROR(home.Require("API keys"));
  return home.meta_db();
}

Result<std::unique_ptr<serve::KeyStore>> OpenKeys(const GlobalOptions& g) {
  ENGAGE_ASSIGN_OR_RETURN(std::string meta_db, MetaDb(g));
  return serve::KeyStore::Open(meta_db, SystemClock::Default());
}

struct KeyOptions {
  std::string name, policy, id;
  int64_t limit = 50;
  bool json = false;
};

void AddCreate(CLI::App& keys, GlobalOptions& g, KeyOptions& o, std::function<Status()>* action) {
  auto* cmd = keys.add_subcommand(
      "create", "Create an API key; its token is printed once and cannot be shown again");
  cmd->add_option("--name", o.name, "Who or what the key is for, e.g. crm-sync")->required();
  cmd->add_option("--policy", o.policy,
                  "IAM-shaped policy file (JSON: Statement with Effect, Action, Resource); "
                  "examples in examples/policies/ (predictions-read-only.json, analyst.json, "
                  "admin.json)")
      ->required();
  cmd->add_flag("--json", o.json, "Print {\"key\": {...}, \"token\": \"ek_...\"} as JSON");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(serve::Policy policy, serve::Policy::ParseFile(o.policy));
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenKeys(g));
    ENGAGE_ASSIGN_OR_RETURN(serve::NewApiKey k, store->Create(o.name, policy));
    Emit(o.json, k.ToJson(), [&k] { std::fputs(k.ToText().c_str(), stdout); });
    std::fprintf(stderr, "engage: warning: %s\n", serve::NewApiKey::kShownOnce);
    return Status::Ok();
  });
}

void AddReads(CLI::App& app, CLI::App& keys, GlobalOptions& g, KeyOptions& o,
              std::function<Status()>* action) {
  auto* list = keys.add_subcommand("list", "List API keys (never their tokens), revoked ones too");
  list->add_flag("--json", o.json, "Print {\"keys\": [...]} as JSON, with each key's policy");
  OnRun(list, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenKeys(g));
    ENGAGE_ASSIGN_OR_RETURN(std::vector<serve::ApiKey> all, store->List());
    Emit(o.json, serve::KeysJson(all),
         [&all] { std::fputs(serve::KeysTable(all).c_str(), stdout); });
    return Status::Ok();
  });
  auto* revoke = keys.add_subcommand(
      "revoke",
      "Revoke an API key; running servers refuse it within a second (revoking twice is a no-op)");
  revoke->add_option("id", o.id, "Key id (from `engage keys list`)")->required();
  revoke->add_flag("--json", o.json, "Print the revoked key as JSON");
  OnRun(revoke, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenKeys(g));
    ENGAGE_ASSIGN_OR_RETURN(serve::ApiKey k, store->Revoke(o.id));
    Emit(o.json, k.ToJson(), [&k] {
      std::printf("revoked API key %s (%s) at %s\n", k.id.c_str(), k.name.c_str(),
                  k.revoked_micros ? FormatIsoUtc(*k.revoked_micros).c_str() : "-");
    });
    return Status::Ok();
  });
  auto* audit = app.add_subcommand(
      "audit", "Show the newest requests to `engage serve`: who, what, allowed or denied");
  audit->add_option("-n,--limit", o.limit, "How many records, newest first")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  audit->add_flag("--json", o.json, "Print {\"records\": [...]} as JSON");
  OnRun(audit, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(std::string meta_db, MetaDb(g));
    ENGAGE_ASSIGN_OR_RETURN(auto log, serve::AuditLog::Open(meta_db, SystemClock::Default()));
    ENGAGE_ASSIGN_OR_RETURN(std::vector<serve::AuditRecord> records, log->List(o.limit));
    Emit(o.json, serve::AuditJson(records),
         [&records] { std::fputs(serve::AuditTable(records).c_str(), stdout); });
    return Status::Ok();
  });
}

}  // namespace

void RegisterKeysCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* keys = app.add_subcommand(
      "keys",
      "API keys of `engage serve` (deny by default: a key may do what its policy allows; example "
      "policies in examples/policies/)");
  keys->require_subcommand(1);
  auto& o = Keep<KeyOptions>();
  AddCreate(*keys, g, o, action);
  AddReads(app, *keys, g, o, action);
}

}  // namespace engage::cli
