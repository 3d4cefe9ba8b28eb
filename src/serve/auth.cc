#include "engage/serve/auth.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <set>

#include "engage/core/fs.h"
#include "engage/core/ids.h"
#include "engage/core/text.h"

namespace engage::serve {
namespace {

// SHA-256 of `data` into `out`. The algorithm is fetched once: the one-shot SHA256() looks it up
// on every call, a measurable share of an authenticated request.
void Sha256(std::string_view data, unsigned char* out) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned int len = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  }
}

// Both tables live in meta.db; times are microseconds since the Unix epoch (UTC).
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  hash TEXT NOT NULL,  -- hex SHA-256 of the secret; the secret itself is never stored
  policy TEXT NOT NULL,  -- the policy document (JSON)
  created_micros INTEGER NOT NULL,
  revoked_micros INTEGER,
  last_used_micros INTEGER
);
CREATE TABLE IF NOT EXISTS audit_log (
  at_micros INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  decision TEXT NOT NULL,  -- allow | deny
  code TEXT NOT NULL,  -- StatusCode name of the outcome, e.g. PERMISSION_DENIED
  http_status INTEGER NOT NULL,
  detail TEXT NOT NULL,  -- JSON object
  remote_address TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log(at_micros);
)sql";

constexpr std::string_view kTokenPrefix = "ek_";
constexpr size_t kIdBytes = 6;       // 12 hex digits: unique, not secret
constexpr size_t kSecretBytes = 32;  // 256 bits from the CSPRNG
constexpr size_t kIdHexLen = kIdBytes * 2;
constexpr size_t kSecretHexLen = kSecretBytes * 2;
constexpr const char* kTokenShape = "ek_<id>_<secret>";

Status UnauthenticatedError(std::string message) {
  return Status(StatusCode::kUnauthenticated, std::move(message));
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

// ASCII case-insensitive equality, without allocating (on the request path).
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool HasWildcard(std::string_view s) { return s.find_first_of("*?") != std::string_view::npos; }

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string ToHex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

// False unless `hex` is exactly 2 * N hex digits.
template <size_t N>
bool FromHex(std::string_view hex, std::array<unsigned char, N>* out) {
  if (hex.size() != 2 * N) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < N; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

Result<std::string> RandomHex(size_t bytes) {
  std::array<unsigned char, 64> buf{};
  assert(bytes <= buf.size());
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) {
    return InternalError("the OpenSSL random generator failed: cannot create a secret");
  }
  std::string hex = ToHex(buf.data(), bytes);
  OPENSSL_cleanse(buf.data(), buf.size());
  return hex;
}

Json IsoOrNull(const std::optional<int64_t>& micros) {
  return micros ? Json(FormatIsoUtc(*micros)) : Json(nullptr);
}

std::optional<int64_t> OptionalInt(const SqliteStmt& st, int col) {
  if (st.IsNull(col)) return std::nullopt;
  return st.Int(col);
}

// ---- policy validation ----

std::string StatementContext(std::string_view what, size_t index, const std::string& sid) {
  if (sid.empty()) return fmt::format("{} Statement[{}]", what, index);
  return fmt::format("{} Statement[{}] (Sid \"{}\")", what, index, sid);
}

// The known actions of `service` ("predictions"), joined by ", ".
std::string ActionsOfService(const PolicyVocabulary& v, std::string_view service) {
  std::string out;
  for (std::string_view a : v.actions) {
    if (LowerCopy(a.substr(0, a.find(':'))) != LowerCopy(service)) continue;
    if (!out.empty()) out += ", ";
    out += a;
  }
  return out;
}

std::string Services(const PolicyVocabulary& v) {
  std::vector<std::string_view> services;
  for (std::string_view a : v.actions) {
    std::string_view s = a.substr(0, a.find(':'));
    if (std::find(services.begin(), services.end(), s) == services.end()) services.push_back(s);
  }
  std::string out;
  for (std::string_view s : services) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}:*", s);
  }
  return out;
}

Status CheckAction(const PolicyVocabulary& v, const std::string& ctx, const std::string& action) {
  if (action.empty()) return InvalidArgumentError(ctx + ": an Action is empty");
  if (HasWildcard(action)) {
    for (std::string_view a : v.actions) {
      if (WildcardMatch(action, a, /*fold_case=*/true)) return Status::Ok();
    }
    return InvalidArgumentError(fmt::format(
        "{}: Action \"{}\" matches no known action (services: {})", ctx, action, Services(v)));
  }
  for (std::string_view a : v.actions) {
    if (WildcardMatch(action, a, /*fold_case=*/true)) return Status::Ok();
  }
  size_t colon = action.find(':');
  std::string known =
      colon == std::string::npos ? "" : ActionsOfService(v, action.substr(0, colon));
  if (known.empty()) {
    return InvalidArgumentError(
        fmt::format("{}: unknown action \"{}\" (actions are <service>:<Name>; services: {})", ctx,
                    action, Services(v)));
  }
  return InvalidArgumentError(
      fmt::format("{}: unknown action \"{}\" (known: {})", ctx, action, known));
}

Status CheckResource(const PolicyVocabulary& v, const std::string& ctx,
                     const std::string& resource) {
  if (resource.empty()) return InvalidArgumentError(ctx + ": a Resource is empty");
  size_t slash = resource.find('/');
  std::string_view type = std::string_view(resource).substr(0, slash);
  if (HasWildcard(type)) return Status::Ok();  // "*", "*/events", "m*/x": checked when matched
  bool known =
      std::find(v.resource_types.begin(), v.resource_types.end(), type) != v.resource_types.end();
  if (known && slash != std::string::npos && slash + 1 < resource.size()) return Status::Ok();
  std::string types;
  for (std::string_view t : v.resource_types) types += fmt::format("{}/<name>, ", t);
  return InvalidArgumentError(
      fmt::format("{}: Resource \"{}\" is not one of {}or * (wildcards * and ? are allowed)", ctx,
                  resource, types));
}

// A string or a non-empty list of strings.
Result<std::vector<std::string>> StringOrList(const std::string& ctx, const Json& v,
                                              const char* field) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.empty()) return InvalidArgumentError(fmt::format("{}: {} is an empty list", ctx, field));
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) {
        return InvalidArgumentError(
            fmt::format("{}: {}[{}] must be a string, got {}", ctx, field, i, DumpJson(v[i])));
      }
      out.push_back(v[i].get<std::string>());
    }
  } else {
    return InvalidArgumentError(fmt::format("{}: {} must be a string or a list of strings, got {}",
                                            ctx, field, DumpJson(v)));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Resources and matching
// ---------------------------------------------------------------------------------------------

PolicyVocabulary KeyPolicyVocabulary() { return {kAllActions, kResourceTypes}; }
PolicyVocabulary RolePolicyVocabulary() { return {kRoleActions, kRoleResourceTypes}; }

std::string ModelResource(std::string_view name) { return fmt::format("model/{}", name); }
std::string TableResource(std::string_view name) { return fmt::format("table/{}", name); }
std::string PipelineResource(std::string_view name) { return fmt::format("pipeline/{}", name); }

bool WildcardMatch(std::string_view pattern, std::string_view text, bool fold_case) {
  // Greedy matching with one backtrack point (the last '*'): O(|pattern| * |text|) at worst.
  size_t p = 0, t = 0, star = std::string_view::npos, star_t = 0;
  auto eq = [fold_case](char a, char b) { return fold_case ? Lower(a) == Lower(b) : a == b; };
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_t = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || eq(pattern[p], text[t]))) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

std::string_view Decision::name() const {
  switch (kind) {
    case Kind::kAllow:
      return "allow";
    case Kind::kExplicitDeny:
      return "explicit-deny";
    case Kind::kImplicitDeny:
      break;
  }
  return "implicit-deny";
}

Result<Policy> Policy::ParseFile(const std::string& path) {
  ENGAGE_ASSIGN_OR_RETURN(std::string text, ReadTextArgument(path, "policy file", 1 << 20));
  Result<Policy> policy = Parse(text);
  if (!policy.ok()) return policy.status().WithContext(path);
  return policy;
}

Result<Policy> Policy::Parse(std::string_view json_text) {
  ENGAGE_ASSIGN_OR_RETURN(Json doc, ParseJson(json_text, "policy"));
  return FromJson(doc);
}

Result<Policy> Policy::FromJson(const Json& doc) {
  return FromJson(doc, KeyPolicyVocabulary(), "policy");
}

Result<Policy> Policy::FromJson(const Json& doc, const PolicyVocabulary& vocabulary,
                                std::string_view what) {
  if (!doc.is_object()) {
    return InvalidArgumentError(
        fmt::format("{}: expected a JSON object with \"Statement\", got {}", what, DumpJson(doc)));
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "Version" && key != "Id" && key != "Statement") {
      return InvalidArgumentError(fmt::format(
          "{}: unknown key \"{}\" (a policy has Version, Id and Statement)", what, key));
    }
  }
  if (doc.contains("Version")) {
    const Json& v = doc["Version"];
    if (!v.is_string() || v.get<std::string>() != "2012-10-17") {
      return InvalidArgumentError(
          fmt::format("{}: Version must be \"2012-10-17\", got {}", what, DumpJson(v)));
    }
  }
  if (!doc.contains("Statement"))
    return InvalidArgumentError(fmt::format("{}: no \"Statement\"", what));
  Json list = doc["Statement"];
  if (list.is_object()) list = Json::array({list});
  if (!list.is_array()) {
    return InvalidArgumentError(fmt::format("{}: Statement must be a list of statements, got {}",
                                            what, DumpJson(doc["Statement"])));
  }
  if (list.empty()) {
    return InvalidArgumentError(fmt::format(
        "{}: Statement is empty (a policy without statements denies everything)", what));
  }
  Policy p;
  std::set<std::string> sids;
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& s = list[i];
    if (!s.is_object()) {
      return InvalidArgumentError(
          fmt::format("{} Statement[{}]: expected an object, got {}", what, i, DumpJson(s)));
    }
    PolicyStatement st;
    if (s.contains("Sid")) {
      if (!s["Sid"].is_string()) {
        return InvalidArgumentError(fmt::format("{} Statement[{}]: Sid must be a string", what, i));
      }
      st.sid = s["Sid"].get<std::string>();
      if (!st.sid.empty() && !sids.insert(st.sid).second) {
        return InvalidArgumentError(
            fmt::format("{} Statement[{}]: Sid \"{}\" is used twice", what, i, st.sid));
      }
    }
    std::string ctx = StatementContext(what, i, st.sid);
    for (const auto& [key, value] : s.items()) {
      if (key == "Sid" || key == "Effect" || key == "Action" || key == "Resource") continue;
      if (key == "NotAction" || key == "NotResource" || key == "Principal" ||
          key == "NotPrincipal" || key == "Condition") {
        return InvalidArgumentError(
            fmt::format("{}: \"{}\" is not supported (use Effect, Action and Resource)", ctx, key));
      }
      return InvalidArgumentError(fmt::format(
          "{}: unknown key \"{}\" (a statement has Sid, Effect, Action and Resource)", ctx, key));
    }
    if (!s.contains("Effect")) return InvalidArgumentError(ctx + ": no \"Effect\"");
    const Json& effect = s["Effect"];
    if (effect == "Allow") {
      st.effect = Effect::kAllow;
    } else if (effect == "Deny") {
      st.effect = Effect::kDeny;
    } else {
      return InvalidArgumentError(
          fmt::format("{}: Effect must be \"Allow\" or \"Deny\", got {}", ctx, DumpJson(effect)));
    }
    if (!s.contains("Action")) return InvalidArgumentError(ctx + ": no \"Action\"");
    if (!s.contains("Resource")) return InvalidArgumentError(ctx + ": no \"Resource\"");
    ENGAGE_ASSIGN_OR_RETURN(st.actions, StringOrList(ctx, s["Action"], "Action"));
    ENGAGE_ASSIGN_OR_RETURN(st.resources, StringOrList(ctx, s["Resource"], "Resource"));
    Compiled c;
    c.deny = st.effect == Effect::kDeny;
    for (const auto& a : st.actions) {
      ENGAGE_RETURN_IF_ERROR(CheckAction(vocabulary, ctx, a));
      c.actions.push_back(LowerCopy(a));
    }
    for (const auto& r : st.resources) {
      ENGAGE_RETURN_IF_ERROR(CheckResource(vocabulary, ctx, r));
      c.resources.push_back(r);
    }
    p.statements_.push_back(std::move(st));
    p.compiled_.push_back(std::move(c));
  }
  return p;
}

Decision Policy::Evaluate(std::string_view action, std::string_view resource) const {
  Decision d;
  for (size_t i = 0; i < compiled_.size(); ++i) {
    const Compiled& c = compiled_[i];
    bool action_matches = std::any_of(c.actions.begin(), c.actions.end(), [&](const auto& a) {
      return WildcardMatch(a, action, /*fold_case=*/true);
    });
    if (!action_matches) continue;
    bool resource_matches = std::any_of(c.resources.begin(), c.resources.end(),
                                        [&](const auto& r) { return WildcardMatch(r, resource); });
    if (!resource_matches) continue;
    if (c.deny) return Decision{Decision::Kind::kExplicitDeny, static_cast<int>(i)};
    if (d.kind == Decision::Kind::kImplicitDeny) {
      d = Decision{Decision::Kind::kAllow, static_cast<int>(i)};
    }
  }
  return d;
}

Json Policy::ToJson() const {
  Json statements = Json::array();
  for (const auto& s : statements_) {
    Json j = Json::object();
    if (!s.sid.empty()) j["Sid"] = s.sid;
    j["Effect"] = s.effect == Effect::kAllow ? "Allow" : "Deny";
    j["Action"] = s.actions;
    j["Resource"] = s.resources;
    statements.push_back(std::move(j));
  }
  return Json{{"Version", "2012-10-17"}, {"Statement", std::move(statements)}};
}

// ---------------------------------------------------------------------------------------------
// KeyStore
// ---------------------------------------------------------------------------------------------

Json ApiKey::ToJson() const {
  return Json{{"id", id},
              {"name", name},
              {"created_at", FormatIsoUtc(created_micros)},
              {"revoked_at", IsoOrNull(revoked_micros)},
              {"last_used_at", IsoOrNull(last_used_micros)},
              {"policy", policy ? policy->ToJson() : Json(nullptr)}};
}

// Last-use times noted by Authenticate, shared by the snapshots of one key.
struct KeyUsage {
  std::atomic<int64_t> last_used_micros{0};
  std::atomic<int64_t> saved_micros{0};
};

struct KeyStore::Entry {
  std::string name;
  std::array<unsigned char, SHA256_DIGEST_LENGTH> hash{};
  std::string policy_text;
  std::shared_ptr<const Policy> policy;
  std::optional<int64_t> revoked_micros;
  std::shared_ptr<KeyUsage> usage;
};

struct KeyStore::Snapshot {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> keys;
  uint64_t generation = 0;  // unique across stores and reloads
};

namespace {
std::atomic<uint64_t> next_key_generation{1};
}  // namespace

KeyStore::KeyStore(SqliteDb db, const Clock& clock, KeyStoreOptions options)
    : clock_(clock), options_(options), db_(std::move(db)) {}

KeyStore::~KeyStore() {
  Status s = SaveLastUsed();
  if (!s.ok()) spdlog::warn("api keys: cannot save last-use times: {}", s.ToString());
}

Result<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& meta_db_path,
                                                 const Clock& clock, KeyStoreOptions options) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_path));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  std::unique_ptr<KeyStore> store(new KeyStore(std::move(db), clock, options));
  ENGAGE_RETURN_IF_ERROR(store->Reload());
  return store;
}

Status KeyStore::Reload() {
  std::lock_guard lock(db_mu_);
  return ReloadLocked();
}

Status KeyStore::ReloadLocked() {
  // Read the version first: a change committed while loading is seen by the next check.
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt version, db_.Prepare("PRAGMA data_version"));
  ENGAGE_ASSIGN_OR_RETURN(bool has_row, version.Step());
  if (has_row) data_version_ = version.Int(0);
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st, db_.Prepare("SELECT id, name, hash, policy, revoked_micros FROM api_keys"));
  std::shared_ptr<const Snapshot> old = snapshot_.load();
  auto next = std::make_shared<Snapshot>();
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    std::string id = st.Text(0);
    Entry e;
    e.name = st.Text(1);
    e.policy_text = st.Text(3);
    e.revoked_micros = OptionalInt(st, 4);
    if (!FromHex(st.Text(2), &e.hash)) {
      spdlog::warn("api keys: key '{}' has a malformed hash in meta.db; it cannot authenticate",
                   id);
      continue;
    }
    const Entry* prev = nullptr;
    if (old) {
      auto it = old->keys.find(id);
      if (it != old->keys.end()) prev = &it->second;
    }
    // Keep the parsed policy and the usage counters of keys that did not change.
    if (prev && prev->policy_text == e.policy_text) {
      e.policy = prev->policy;
    } else {
      Result<Policy> p = Policy::Parse(e.policy_text);
      if (!p.ok()) {
        spdlog::warn(
            "api keys: key '{}' has an invalid policy in meta.db ({}); it cannot "
            "authenticate",
            id, p.status().message());
        continue;
      }
      e.policy = std::make_shared<const Policy>(std::move(*p));
    }
    e.usage = prev ? prev->usage : std::make_shared<KeyUsage>();
    next->keys.emplace(std::move(id), std::move(e));
  }
  next->generation = next_key_generation.fetch_add(1, std::memory_order_relaxed);
  uint64_t generation = next->generation;
  snapshot_.store(std::move(next));
  generation_.store(generation, std::memory_order_release);
  return Status::Ok();
}

void KeyStore::MaybeRefresh() {
  int64_t now = clock_.MonotonicMicros();
  if (now < next_check_micros_.load(std::memory_order_relaxed)) return;
  std::unique_lock lock(db_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // someone is refreshing or writing: use the current snapshot
  if (now < next_check_micros_.load(std::memory_order_relaxed)) return;
  next_check_micros_.store(now + options_.refresh_interval_ms * 1000, std::memory_order_relaxed);
  // PRAGMA data_version changes when another connection (this process or another) committed.
  Result<SqliteStmt> st = db_.Prepare("PRAGMA data_version");
  Result<bool> row = st.ok() ? st->Step() : Result<bool>(st.status());
  if (!row.ok() || !*row) {
    spdlog::warn("api keys: cannot check meta.db for changes: {}", row.status().ToString());
    return;
  }
  if (st->Int(0) == data_version_) return;
  Status s = ReloadLocked();
  if (!s.ok()) spdlog::warn("api keys: cannot reload from meta.db: {}", s.ToString());
}

Result<NewApiKey> KeyStore::Create(const std::string& name, const Policy& policy) {
  if (name.empty()) return InvalidArgumentError("an API key needs a name");
  if (name.size() > 64) {
    return InvalidArgumentError(fmt::format("API key name '{}' is longer than 64 bytes", name));
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgumentError("API key name has control characters");
    }
  }
  std::string policy_text = DumpJson(policy.ToJson());
  std::lock_guard lock(db_mu_);
  for (int attempt = 0;; ++attempt) {
    ENGAGE_ASSIGN_OR_RETURN(std::string id, RandomHex(kIdBytes));
    ENGAGE_ASSIGN_OR_RETURN(std::string secret, RandomHex(kSecretBytes));
    NewApiKey out;
    out.key.id = id;
    out.key.name = name;
    out.key.policy = std::make_shared<const Policy>(policy);
    out.key.created_micros = clock_.NowMicros();
    ENGAGE_ASSIGN_OR_RETURN(
        SqliteStmt st, db_.Prepare("INSERT INTO api_keys (id, name, hash, policy, created_micros) "
                                   "VALUES (?, ?, ?, ?, ?)"));
    st.Bind(1, id).Bind(2, name).Bind(3, Sha256Hex(secret)).Bind(4, policy_text);
    st.Bind(5, out.key.created_micros);
    Status s = st.Run();
    if (s.code() == StatusCode::kAlreadyExists && attempt < 3) continue;  // id collision
    ENGAGE_RETURN_IF_ERROR(s.WithContext("cannot store the API key in meta.db"));
    out.token = fmt::format("{}{}_{}", kTokenPrefix, id, secret);
    OPENSSL_cleanse(secret.data(), secret.size());
    ENGAGE_RETURN_IF_ERROR(ReloadLocked());
    return out;
  }
}

Result<std::vector<ApiKey>> KeyStore::List() {
  std::lock_guard lock(db_mu_);
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("SELECT id, name, policy, created_micros, revoked_micros, last_used_micros "
                  "FROM api_keys ORDER BY created_micros, id"));
  std::vector<ApiKey> out;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ApiKey k;
    k.id = st.Text(0);
    k.name = st.Text(1);
    Result<Policy> p = Policy::Parse(st.Text(2));
    if (!p.ok()) {
      return DataLossError(fmt::format("API key '{}' in meta.db has an invalid policy: {}", k.id,
                                       p.status().message()));
    }
    k.policy = std::make_shared<const Policy>(std::move(*p));
    k.created_micros = st.Int(3);
    k.revoked_micros = OptionalInt(st, 4);
    k.last_used_micros = OptionalInt(st, 5);
    out.push_back(std::move(k));
  }
  return out;
}

Result<ApiKey> KeyStore::Revoke(const std::string& id) {
  std::lock_guard lock(db_mu_);
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt upd,
                          db_.Prepare("UPDATE api_keys SET revoked_micros = ? WHERE id = ? AND "
                                      "revoked_micros IS NULL"));
  upd.Bind(1, clock_.NowMicros()).Bind(2, id);
  ENGAGE_RETURN_IF_ERROR(upd.Run());
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("SELECT name, policy, created_micros, revoked_micros, last_used_micros FROM "
                  "api_keys WHERE id = ?"));
  st.Bind(1, id);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFoundError(fmt::format("no API key '{}' (see `engage keys list`)", id));
  ApiKey k;
  k.id = id;
  k.name = st.Text(0);
  Result<Policy> p = Policy::Parse(st.Text(1));
  if (p.ok()) k.policy = std::make_shared<const Policy>(std::move(*p));
  k.created_micros = st.Int(2);
  k.revoked_micros = OptionalInt(st, 3);
  k.last_used_micros = OptionalInt(st, 4);
  ENGAGE_RETURN_IF_ERROR(ReloadLocked());
  return k;
}

Result<Principal> KeyStore::Authenticate(std::string_view token) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  token = trim(token);
  constexpr std::string_view kBearer = "bearer ";
  if (EqualsIgnoreCase(token, "bearer")) {
    token = {};  // the scheme without credentials
  } else if (token.size() >= kBearer.size() &&
             EqualsIgnoreCase(token.substr(0, kBearer.size()), kBearer)) {
    token = trim(token.substr(kBearer.size()));
  }
  if (token.empty()) {
    return UnauthenticatedError(
        fmt::format("missing API key: send 'Authorization: Bearer {}'", kTokenShape));
  }
  // ek_<12 hex>_<64 hex>
  std::string_view id, secret;
  if (token.size() == kTokenPrefix.size() + kIdHexLen + 1 + kSecretHexLen &&
      token.substr(0, kTokenPrefix.size()) == kTokenPrefix &&
      token[kTokenPrefix.size() + kIdHexLen] == '_') {
    id = token.substr(kTokenPrefix.size(), kIdHexLen);
    secret = token.substr(kTokenPrefix.size() + kIdHexLen + 1);
  }
  if (id.empty() || !IsLowerHex(id) || !IsLowerHex(secret)) {
    return UnauthenticatedError(
        fmt::format("malformed API key: expected 'Authorization: Bearer {}'", kTokenShape));
  }
  MaybeRefresh();
  // Tokens this thread verified against the current keys are not hashed again: a few of them,
  // compared in constant time, forgotten when the keys are reloaded.
  struct Verified {
    uint64_t generation = 0;
    std::string token;
    std::shared_ptr<const Snapshot> snapshot;  // keeps `id` and `entry` alive
    const std::string* id = nullptr;
    const Entry* entry = nullptr;
  };
  thread_local std::array<Verified, 4> verified;
  thread_local size_t next_slot = 0;
  uint64_t generation = generation_.load(std::memory_order_acquire);
  const std::string* key_id = nullptr;
  const Entry* entry = nullptr;
  std::shared_ptr<const Snapshot> snap;  // on a miss: keeps `key_id` and `entry` alive
  for (const Verified& v : verified) {
    if (v.generation == generation && v.token.size() == token.size() &&
        CRYPTO_memcmp(v.token.data(), token.data(), token.size()) == 0) {
      key_id = v.id;
      entry = v.entry;
      break;
    }
  }
  if (entry == nullptr) {
    snap = snapshot_.load();
    // Hash before looking up, so unknown ids and wrong secrets take the same time.
    std::array<unsigned char, SHA256_DIGEST_LENGTH> hash{};
    Sha256(secret, hash.data());
    auto it = snap->keys.find(id);
    if (it == snap->keys.end() ||
        CRYPTO_memcmp(hash.data(), it->second.hash.data(), hash.size()) != 0) {
      return UnauthenticatedError(fmt::format("invalid API key {}{}_...", kTokenPrefix, id));
    }
    key_id = &it->first;
    entry = &it->second;
    if (snap->generation == generation) {
      Verified& slot = verified[next_slot++ % verified.size()];
      slot.generation = generation;
      slot.token.assign(token);
      slot.id = key_id;
      slot.entry = entry;
      slot.snapshot = snap;
    }
  }
  const Entry& e = *entry;
  if (e.revoked_micros) {
    return UnauthenticatedError(fmt::format("API key {} ('{}') was revoked at {}", *key_id, e.name,
                                            FormatIsoUtc(*e.revoked_micros)));
  }
  // Note the use, at most once a second per key so busy keys do not share a hot cache line.
  int64_t now = clock_.NowMicros();
  if (now - e.usage->last_used_micros.load(std::memory_order_relaxed) >= 1000000) {
    e.usage->last_used_micros.store(now, std::memory_order_relaxed);
  }
  return Principal{*key_id, e.name, e.policy};
}

Status KeyStore::SaveLastUsed() {
  std::lock_guard lock(db_mu_);
  std::shared_ptr<const Snapshot> snap = snapshot_.load();
  if (!snap) return Status::Ok();
  std::vector<std::pair<std::string, int64_t>> dirty;
  for (const auto& [id, e] : snap->keys) {
    int64_t used = e.usage->last_used_micros.load();
    if (used > e.usage->saved_micros.load()) dirty.emplace_back(id, used);
  }
  if (dirty.empty()) return Status::Ok();
  ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          db_.Prepare("UPDATE api_keys SET last_used_micros = ? WHERE id = ?"));
  for (const auto& [id, used] : dirty) {
    st.Bind(1, used).Bind(2, id);
    ENGAGE_RETURN_IF_ERROR(st.Run());
    st.Reset();
  }
  ENGAGE_RETURN_IF_ERROR(txn->Commit());
  for (const auto& [id, used] : dirty) {
    auto& saved = snap->keys.find(id)->second.usage->saved_micros;
    int64_t prev = saved.load();
    while (prev < used && !saved.compare_exchange_weak(prev, used)) {
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// AuditLog
// ---------------------------------------------------------------------------------------------

Json AuditRecord::ToJson() const {
  return Json{{"at", FormatIsoUtc(at_micros)},
              {"key_id", key_id},
              {"action", action},
              {"resource", resource},
              {"decision", allowed ? "allow" : "deny"},
              {"code", std::string(CodeName(code))},
              {"http_status", http_status},
              {"detail", detail},
              {"remote_address", remote_address}};
}

AuditLog::AuditLog(SqliteDb db, const Clock& clock, AuditLogOptions options)
    : clock_(clock), options_(options), db_(std::move(db)) {}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& meta_db_path,
                                                 const Clock& clock, AuditLogOptions options) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_path));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(db), clock, options));
  log->writer_ = std::thread([p = log.get()] { p->Run(); });
  return log;
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

namespace {

// Who a denial is counted against: the key, or the peer's address without its port.
std::string DenialClient(const AuditRecord& r) {
  if (!r.key_id.empty()) return "key " + r.key_id;
  std::string_view addr = r.remote_address;
  if (size_t colon = addr.rfind(':'); colon != std::string_view::npos) addr = addr.substr(0, colon);
  return "address " + std::string(addr);
}

}  // namespace

void AuditLog::CloseDenialWindowsLocked(int64_t now_micros, bool all) {
  const int64_t window_micros = options_.denial_window_ms * 1000;
  for (auto it = denials_.begin(); it != denials_.end();) {
    DenialWindow& w = it->second;
    bool closed = now_micros - w.start_micros >= window_micros;
    if (w.suppressed > 0 && (closed || all)) {
      AuditRecord sum;
      sum.at_micros = now_micros;
      sum.key_id = w.last.key_id;
      sum.action = std::string(kAuditSuppressed);
      sum.allowed = false;
      sum.code = w.last.code;
      sum.http_status = w.last.http_status;
      sum.detail = Json{{"message", fmt::format("{} more denials suppressed", w.suppressed)},
                        {"suppressed", w.suppressed},
                        {"client", it->first},
                        {"window_start", FormatIsoUtc(w.start_micros)},
                        {"last_action", w.last.action},
                        {"last_resource", w.last.resource}};
      sum.remote_address = w.last.remote_address;
      buffer_.push_back(std::move(sum));  // may pass max_buffered by one row per client
      w.suppressed = 0;
    }
    if (closed) {
      it = denials_.erase(it);
    } else {
      ++it;
    }
  }
}

void AuditLog::Record(AuditRecord record) {
  if (record.at_micros == 0) record.at_micros = clock_.NowMicros();
  if (record.http_status == 0) record.http_status = HttpStatusFor(record.code);
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (!record.allowed) {
      std::string client = DenialClient(record);
      auto it = denials_.find(client);
      if (it == denials_.end() &&
          static_cast<int64_t>(denials_.size()) >= options_.max_denial_clients) {
        client = "*";
        it = denials_.find(client);
      }
      if (it != denials_.end() &&
          record.at_micros - it->second.start_micros >= options_.denial_window_ms * 1000) {
        // The window is over: summarise it (the next sweep would) and start a new one.
        CloseDenialWindowsLocked(record.at_micros, false);
        it = denials_.find(client);
      }
      if (it == denials_.end()) {
        it = denials_.emplace(client, DenialWindow{.start_micros = record.at_micros}).first;
      }
      DenialWindow& w = it->second;
      if (w.written >= options_.max_denials_per_window) {
        ++w.suppressed;
        suppressed_.fetch_add(1, std::memory_order_relaxed);
        w.last = std::move(record);
        return;
      }
      ++w.written;
    }
    if (static_cast<int64_t>(buffer_.size()) >= options_.max_buffered) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    buffer_.push_back(std::move(record));
    wake = static_cast<int64_t>(buffer_.size()) == options_.flush_batch;
  }
  if (wake) cv_.notify_one();
}

Status AuditLog::Flush() {
  std::lock_guard lock(db_mu_);
  {
    std::lock_guard buffer_lock(mu_);
    CloseDenialWindowsLocked(clock_.NowMicros(), true);
  }
  return WriteLocked();
}

void AuditLog::Run() {
  while (true) {
    bool stop = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms), [this] {
        return stop_ || static_cast<int64_t>(buffer_.size()) >= options_.flush_batch;
      });
      stop = stop_;
      CloseDenialWindowsLocked(clock_.NowMicros(), stop);
    }
    Status s;
    {
      std::lock_guard lock(db_mu_);
      s = WriteLocked();
    }
    if (!s.ok()) spdlog::warn("audit log: cannot write to meta.db: {}", s.ToString());
    if (stop) return;
  }
}

Status AuditLog::WriteLocked() {
  std::vector<AuditRecord> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(buffer_);
  }
  if (batch.empty()) return Status::Ok();
  auto write = [&]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto txn, SqliteTxn::Begin(db_));
    ENGAGE_ASSIGN_OR_RETURN(
        SqliteStmt st,
        db_.Prepare("INSERT INTO audit_log (at_micros, key_id, action, resource, decision, code, "
                    "http_status, detail, remote_address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    for (const auto& r : batch) {
      st.Bind(1, r.at_micros).Bind(2, r.key_id).Bind(3, r.action).Bind(4, r.resource);
      st.Bind(5, std::string(r.allowed ? "allow" : "deny"));
      st.Bind(6, std::string(CodeName(r.code))).Bind(7, static_cast<int64_t>(r.http_status));
      st.Bind(8, DumpJson(r.detail.is_null() ? Json::object() : r.detail));
      st.Bind(9, r.remote_address);
      ENGAGE_RETURN_IF_ERROR(st.Run());
      st.Reset();
    }
    return txn->Commit();
  };
  Status s = write();
  if (!s.ok()) {
    // Keep the records (older first) for the next attempt, within the buffer's bound.
    std::lock_guard lock(mu_);
    batch.insert(batch.end(), std::make_move_iterator(buffer_.begin()),
                 std::make_move_iterator(buffer_.end()));
    int64_t excess = static_cast<int64_t>(batch.size()) - options_.max_buffered;
    if (excess > 0) {
      batch.erase(batch.begin(), batch.begin() + excess);
      dropped_.fetch_add(excess);
    }
    buffer_ = std::move(batch);
  }
  return s;
}

Result<std::vector<AuditRecord>> AuditLog::List(int64_t limit) {
  std::lock_guard lock(db_mu_);
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_.Prepare("SELECT at_micros, key_id, action, resource, decision, code, http_status, "
                  "detail, remote_address FROM audit_log ORDER BY at_micros DESC, rowid DESC "
                  "LIMIT ?"));
  st.Bind(1, limit);
  std::vector<AuditRecord> out;
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    AuditRecord r;
    r.at_micros = st.Int(0);
    r.key_id = st.Text(1);
    r.action = st.Text(2);
    r.resource = st.Text(3);
    r.allowed = st.Text(4) == "allow";
    std::string code = st.Text(5);
    r.code = StatusCode::kUnknown;
    for (int c = 0; c <= static_cast<int>(StatusCode::kUnauthenticated); ++c) {
      if (CodeName(static_cast<StatusCode>(c)) == code) r.code = static_cast<StatusCode>(c);
    }
    r.http_status = static_cast<int>(st.Int(6));
    Json detail = Json::parse(st.Text(7), nullptr, false);
    r.detail = detail.is_discarded() ? Json::object() : std::move(detail);
    r.remote_address = st.Text(8);
    out.push_back(std::move(r));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RateLimiter
// ---------------------------------------------------------------------------------------------

RateLimiter::RateLimiter(RateLimitOptions options) : options_(options) {
  if (options_.burst < 1) options_.burst = 1;
}

RateDecision RateLimiter::Take(std::string_view key_id, int64_t now_micros, double cost) {
  if (options_.rate_per_second <= 0) return {};
  Shard& shard = shards_[StringHash{}(key_id) % kShards];
  std::lock_guard lock(shard.mu);
  auto it = shard.buckets.find(key_id);
  if (it == shard.buckets.end()) {
    it = shard.buckets.emplace(std::string(key_id), Bucket{options_.burst, now_micros}).first;
  }
  Bucket& b = it->second;
  if (now_micros > b.last_micros) {
    double elapsed_s = static_cast<double>(now_micros - b.last_micros) / 1e6;
    b.tokens = std::min(options_.burst, b.tokens + elapsed_s * options_.rate_per_second);
    b.last_micros = now_micros;
  }
  if (b.tokens >= cost) {
    b.tokens -= cost;
    return {};
  }
  return {false, (cost - b.tokens) / options_.rate_per_second};
}

namespace {

// "Allow predictions:Get,predictions:BatchGet on model/*; Deny ..."
std::string PolicySummary(const Policy* policy) {
  if (policy == nullptr) return "(invalid policy)";
  std::string out;
  for (const auto& s : policy->statements()) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} {} on {}", s.effect == Effect::kAllow ? "Allow" : "Deny",
                       fmt::join(s.actions, ","), fmt::join(s.resources, ","));
  }
  return out;
}

std::string TimeOrDash(const std::optional<int64_t>& micros) {
  return micros ? FormatIsoUtc(*micros) : "-";
}

}  // namespace

Json NewApiKey::ToJson() const {
  return Json{{"key", key.ToJson()}, {"token", token}, {"warning", kShownOnce}};
}

std::string NewApiKey::ToText() const {
  return fmt::format(
      "created API key {} ({})\ntoken: {}\nsend it as: Authorization: Bearer <token>\n", key.id,
      key.name, token);
}

Json KeysJson(const std::vector<ApiKey>& keys) {
  Json arr = Json::array();
  for (const auto& k : keys) arr.push_back(k.ToJson());
  return Json{{"keys", std::move(arr)}};
}

Json AuditJson(const std::vector<AuditRecord>& records) {
  Json arr = Json::array();
  for (const auto& r : records) arr.push_back(r.ToJson());
  return Json{{"records", std::move(arr)}};
}

std::string KeysTable(const std::vector<ApiKey>& keys) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& k : keys) {
    rows.push_back({k.id, k.name, k.revoked() ? "revoked" : "active",
                    FormatIsoUtc(k.created_micros), TimeOrDash(k.last_used_micros),
                    TimeOrDash(k.revoked_micros), PolicySummary(k.policy.get())});
  }
  return FormatTable({"id", "name", "status", "created_at", "last_used_at", "revoked_at", "policy"},
                     rows);
}

std::string AuditTable(const std::vector<AuditRecord>& records) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : records) {
    rows.push_back({FormatIsoUtc(r.at_micros), r.key_id.empty() ? "-" : r.key_id,
                    r.allowed ? "allow" : "deny", std::to_string(r.http_status), r.action,
                    r.resource, r.remote_address.empty() ? "-" : r.remote_address});
  }
  return FormatTable({"at", "key", "decision", "http", "action", "resource", "remote"}, rows);
}

}  // namespace engage::serve
