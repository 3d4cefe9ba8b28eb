// `engage keys ...` and `engage audit`: API keys and the audit log of `engage serve`.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engage/core/clock.h"
#include "engage/core/fs.h"
#include "engage/core/home.h"
#include "engage/serve/auth.h"

namespace engage::cli {
namespace {

constexpr const char* kPolicyHelp =
    "IAM-shaped policy file (JSON: Statement with Effect, Action, Resource); examples in "
    "examples/policies/ (predictions-read-only.json, analyst.json, admin.json)";

// meta.db of an existing home.
Result<std::string> MetaDb(const GlobalOptions& g) {
  HomePaths home = ResolveHome(g.home);
  std::error_code ec;
  if (!std::filesystem::exists(home.config(), ec)) {
    return FailedPreconditionError(fmt::format(
        "no Engage home at '{}' (API keys are kept in its meta.db): run `engage init` first or "
        "pass --home",
        home.root));
  }
  return home.meta_db();
}

Result<std::unique_ptr<serve::KeyStore>> OpenKeys(const GlobalOptions& g) {
  ENGAGE_ASSIGN_OR_RETURN(std::string meta_db, MetaDb(g));
  return serve::KeyStore::Open(meta_db, SystemClock::Default());
}

// "Allow predictions:Get,predictions:BatchGet on model/*; Deny ..."
std::string Summary(const serve::Policy* policy) {
  if (policy == nullptr) return "(invalid policy)";
  std::string out;
  for (const auto& s : policy->statements()) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} {} on {}", s.effect == serve::Effect::kAllow ? "Allow" : "Deny",
                       fmt::join(s.actions, ","), fmt::join(s.resources, ","));
  }
  return out;
}

std::string OrDash(const std::optional<int64_t>& micros) {
  return micros ? FormatIsoUtc(*micros) : "-";
}

void AddCreate(CLI::App& keys, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = keys.add_subcommand(
      "create", "Create an API key; its token is printed once and cannot be shown again");
  auto name = std::make_shared<std::string>();
  auto policy_file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--name", *name, "Who or what the key is for, e.g. crm-sync")->required();
  cmd->add_option("--policy", *policy_file, kPolicyHelp)->required();
  cmd->add_flag("--json", *json, "Print {\"key\": {...}, \"token\": \"ek_...\"} as JSON");
  cmd->callback([&g, action, name, policy_file, json] {
    *action = [&g, name, policy_file, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(std::string text, PosixFileSystem::Default()->ReadFile(*policy_file));
      Result<serve::Policy> policy = serve::Policy::Parse(text);
      if (!policy.ok()) return policy.status().WithContext(*policy_file);
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenKeys(g));
      ENGAGE_ASSIGN_OR_RETURN(serve::NewApiKey k, store->Create(*name, *policy));
      constexpr const char* kWarning =
          "this is the only time the token is shown: Engage keeps only its hash. Store it now "
          "(a lost token cannot be recovered: revoke the key and create another).";
      if (*json) {
        PrintJson(Json{{"key", k.key.ToJson()}, {"token", k.token}, {"warning", kWarning}});
      } else {
        std::printf("created API key %s (%s)\n", k.key.id.c_str(), k.key.name.c_str());
        std::printf("token: %s\n", k.token.c_str());
        std::printf("send it as: Authorization: Bearer <token>\n");
      }
      std::fprintf(stderr, "engage: warning: %s\n", kWarning);
      return Status::Ok();
    };
  });
}

void AddList(CLI::App& keys, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = keys.add_subcommand("list", "List API keys (never their tokens), revoked ones too");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print {\"keys\": [...]} as JSON, with each key's policy");
  cmd->callback([&g, action, json] {
    *action = [&g, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenKeys(g));
      ENGAGE_ASSIGN_OR_RETURN(std::vector<serve::ApiKey> list, store->List());
      if (*json) {
        Json arr = Json::array();
        for (const auto& k : list) arr.push_back(k.ToJson());
        PrintJson(Json{{"keys", arr}});
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& k : list) {
        rows.push_back({k.id, k.name, k.revoked() ? "revoked" : "active",
                        FormatIsoUtc(k.created_micros), OrDash(k.last_used_micros),
                        OrDash(k.revoked_micros), Summary(k.policy.get())});
      }
      PrintTable({"id", "name", "status", "created_at", "last_used_at", "revoked_at", "policy"},
                 rows);
      return Status::Ok();
    };
  });
}

void AddRevoke(CLI::App& keys, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = keys.add_subcommand(
      "revoke",
      "Revoke an API key; running servers refuse it within a second (revoking twice is a no-op)");
  auto id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("id", *id, "Key id (from `engage keys list`)")->required();
  cmd->add_flag("--json", *json, "Print the revoked key as JSON");
  cmd->callback([&g, action, id, json] {
    *action = [&g, id, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenKeys(g));
      ENGAGE_ASSIGN_OR_RETURN(serve::ApiKey k, store->Revoke(*id));
      if (*json) {
        PrintJson(k.ToJson());
      } else {
        std::printf("revoked API key %s (%s) at %s\n", k.id.c_str(), k.name.c_str(),
                    OrDash(k.revoked_micros).c_str());
      }
      return Status::Ok();
    };
  });
}

void AddAudit(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "audit", "Show the newest requests to `engage serve`: who, what, allowed or denied");
  auto limit = std::make_shared<int64_t>(50);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("-n,--limit", *limit, "How many records, newest first")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", *json, "Print {\"records\": [...]} as JSON");
  cmd->callback([&g, action, limit, json] {
    *action = [&g, limit, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(std::string meta_db, MetaDb(g));
      ENGAGE_ASSIGN_OR_RETURN(auto log, serve::AuditLog::Open(meta_db, SystemClock::Default()));
      ENGAGE_ASSIGN_OR_RETURN(std::vector<serve::AuditRecord> records, log->List(*limit));
      if (*json) {
        Json arr = Json::array();
        for (const auto& r : records) arr.push_back(r.ToJson());
        PrintJson(Json{{"records", arr}});
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& r : records) {
        rows.push_back({FormatIsoUtc(r.at_micros), r.key_id.empty() ? "-" : r.key_id,
                        r.allowed ? "allow" : "deny", std::to_string(r.http_status), r.action,
                        r.resource, r.remote_address.empty() ? "-" : r.remote_address});
      }
      PrintTable({"at", "key", "decision", "http", "action", "resource", "remote"}, rows);
      return Status::Ok();
    };
  });
}

}  // namespace

void RegisterKeysCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* keys = app.add_subcommand(
      "keys",
      "API keys of `engage serve` (deny by default: a key may do what its policy allows; example "
      "policies in examples/policies/)");
  keys->require_subcommand(1);
  AddCreate(*keys, g, action);
  AddList(*keys, g, action);
  AddRevoke(*keys, g, action);
  AddAudit(app, g, action);
}

}  // namespace engage::cli
