// Access control for `engage serve`: API keys, IAM-shaped policies, an audit log and per-key rate
// limits. The HTTP server is locked down by default: every request but /healthz and /readyz
// carries `Authorization: Bearer ek_<id>_<secret>`, and is let through only when the key's policy
// allows the action on the resource.
//
//   ENGAGE_ASSIGN_OR_RETURN(auto keys, KeyStore::Open(home.meta_db(), clock));
//   ENGAGE_ASSIGN_OR_RETURN(auto audit, AuditLog::Open(home.meta_db(), clock));
//   RateLimiter limiter({.rate_per_second = 50, .burst = 100});
//   // per request:
//   Result<Principal> who = keys->Authenticate(authorization_header);        // 401
//   if (!who.ok()) ...
//   RateDecision r = limiter.Take(who->key_id, clock.MonotonicMicros());    // 429, Retry-After
//   Decision d = who->policy->Evaluate(actions::kPredictionsGet, ModelResource("engagement"));
//   if (!d.allowed()) ...                                                    // 403
//   audit->Record({.key_id = who->key_id, .action = ..., .allowed = d.allowed(), ...});
//
// Policies use the shape of AWS IAM identity policies (docs/serve.md "Access control"):
//
//   {"Version": "2012-10-17",
//    "Statement": [{"Sid": "ReadPredictions", "Effect": "Allow",
//                   "Action": ["predictions:Get", "predictions:BatchGet"],
//                   "Resource": "model/*"}]}
//
// A request is denied unless some statement allows it, and an explicit Deny wins over any Allow.
// Action names are matched case-insensitively, resources case-sensitively; both take the
// wildcards `*` (any run of characters, '/' included) and `?` (one character).
//
// Secrets are shown once, by KeyStore::Create, and never stored: meta.db keeps a SHA-256 of each
// (enough for 256-bit random secrets, which cannot be guessed or brute-forced from the hash).
// Authentication is answered from an in-memory copy of the keys, refreshed when meta.db changes,
// so it costs one hash and no SQLite query; a revoke from another process is seen within
// KeyStoreOptions::refresh_interval_ms.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "engage/core/sqlite.h"
#include "engage/core/status.h"

namespace engage::serve {

// ---------------------------------------------------------------------------------------------
// Actions and resources
// ---------------------------------------------------------------------------------------------

// The action names policies may use. The server checks exactly one action per request (the
// batch and query endpoints check each model or table they touch). Actions marked "resource *"
// have no resource-level permissions (as in IAM): the server checks them against `*`, so a
// statement granting them must say "Resource": "*".
// An inline namespace: `serve::actions::kQueryRun` and `serve::kQueryRun` both name it.
inline namespace actions {
// GET /v1/customers/{id}/prediction. Resource model/<name>.
inline constexpr std::string_view kPredictionsGet = "predictions:Get";
// POST /v1/predictions:batchGet. Resource model/<name>.
inline constexpr std::string_view kPredictionsBatchGet = "predictions:BatchGet";
// POST /v1/score: scores supplied features or a customer's current features (costs compute
// and may read the lake). Resource model/<name>.
inline constexpr std::string_view kPredictionsScore = "predictions:Score";
// GET /v1/models. Resource model/* (the list is of every model).
inline constexpr std::string_view kModelsList = "models:List";
// GET /v1/models/{name} and /v1/models/{name}/versions. Resource model/<name>.
inline constexpr std::string_view kModelsGet = "models:Get";
// Promoting a version to champion. Resource model/<name>.
inline constexpr std::string_view kModelsPromote = "models:Promote";
// Pointing an alias at a version. Resource model/<name>.
inline constexpr std::string_view kModelsSetAlias = "models:SetAlias";
// Reading a model's A/B traffic split. Resource model/<name>.
inline constexpr std::string_view kSplitsGet = "splits:Get";
// Changing a model's A/B traffic split. Resource model/<name>.
inline constexpr std::string_view kSplitsPut = "splits:Put";
// POST /v1/query: read-only SQL. Checked once per table the query reads: table/<name>.
inline constexpr std::string_view kQueryRun = "query:Run";
// POST /v1/ask: the knowledge base. Resource *.
inline constexpr std::string_view kKbAsk = "kb:Ask";
// Starting an execution (also StartExecution on the Step Functions protocol).
// Resource pipeline/<state machine name>.
inline constexpr std::string_view kExecutionsStart = "executions:Start";
// Listing executions. Resource pipeline/<name> when filtered by state machine, else pipeline/*.
inline constexpr std::string_view kExecutionsList = "executions:List";
// Describing an execution and its history. Resource pipeline/<state machine name>.
inline constexpr std::string_view kExecutionsGet = "executions:Get";
// Stopping an execution. Resource pipeline/<state machine name>.
inline constexpr std::string_view kExecutionsStop = "executions:Stop";
// GET /metrics (Prometheus text). Resource *.
inline constexpr std::string_view kMetricsGet = "metrics:Get";
// Creating an API key over HTTP. Resource *.
inline constexpr std::string_view kKeysCreate = "keys:Create";
// Listing API keys (never their secrets). Resource *.
inline constexpr std::string_view kKeysList = "keys:List";
// Revoking an API key. Resource *.
inline constexpr std::string_view kKeysRevoke = "keys:Revoke";
// Reading the audit log. Resource *.
inline constexpr std::string_view kAuditList = "audit:List";
// PUT /v1/state-machines/{name}: registering (or replacing) a state machine and its role.
// Resource pipeline/<name>.
inline constexpr std::string_view kStateMachinesRegister = "stateMachines:Register";
// GET /v1/state-machines: listing registered state machines. Checked per machine:
// pipeline/<name>.
inline constexpr std::string_view kStateMachinesList = "stateMachines:List";
// GET /v1/state-machines/{name}: one machine with its definition and role. pipeline/<name>.
inline constexpr std::string_view kStateMachinesGet = "stateMachines:Get";
}  // namespace actions

// Every known action, in the order above. Policy::Parse rejects any other name that has no
// wildcard, and any wildcard pattern matching none of these.
inline constexpr std::array<std::string_view, 23> kAllActions = {
    actions::kPredictionsGet,
    actions::kPredictionsBatchGet,
    actions::kPredictionsScore,
    actions::kModelsList,
    actions::kModelsGet,
    actions::kModelsPromote,
    actions::kModelsSetAlias,
    actions::kSplitsGet,
    actions::kSplitsPut,
    actions::kQueryRun,
    actions::kKbAsk,
    actions::kExecutionsStart,
    actions::kExecutionsList,
    actions::kExecutionsGet,
    actions::kExecutionsStop,
    actions::kMetricsGet,
    actions::kKeysCreate,
    actions::kKeysList,
    actions::kKeysRevoke,
    actions::kAuditList,
    actions::kStateMachinesRegister,
    actions::kStateMachinesList,
    actions::kStateMachinesGet,
};

// The resource types a policy may name: "<type>/<name>".
inline constexpr std::array<std::string_view, 3> kResourceTypes = {"model", "table", "pipeline"};

// What the steps of a registered state machine may do: the actions and resource types of a
// role policy (the policy a state machine carries, checked for each Task it runs; see
// docs/flow.md "Roles"). A Task running Engage step `engage:<step>` is the action of that
// name; mapped commands are lambda:InvokeFunction (function/<name>) and ecs:RunTask
// (task-definition/<family>); the local S3 stand-in is s3:GetObject / s3:PutObject
// (bucket/<name>).
inline constexpr std::array<std::string_view, 15> kRoleActions = {
    "engage:query",   "engage:ingest",       "engage:quality", "engage:features",
    "engage:train",   "engage:evaluate",     "engage:promote", "engage:score",
    "engage:publish", "engage:cost-summary", "engage:notify",  "lambda:InvokeFunction",
    "ecs:RunTask",    "s3:GetObject",        "s3:PutObject",
};
inline constexpr std::array<std::string_view, 5> kRoleResourceTypes = {"table", "model", "function",
                                                                       "task-definition", "bucket"};

// The names a policy may use: its actions and resource types.
struct PolicyVocabulary {
  std::span<const std::string_view> actions;
  std::span<const std::string_view> resource_types;
};
// API keys' policies (kAllActions, kResourceTypes) and state machines' roles.
PolicyVocabulary KeyPolicyVocabulary();
PolicyVocabulary RolePolicyVocabulary();

// "model/<name>", "table/<name>", "pipeline/<name>": the resources the server checks.
std::string ModelResource(std::string_view name);
std::string TableResource(std::string_view name);
std::string PipelineResource(std::string_view name);

// True when `pattern` matches all of `text`: `*` matches any run of characters (also empty, also
// '/'), `?` exactly one. `fold_case` compares ASCII letters case-insensitively.
bool WildcardMatch(std::string_view pattern, std::string_view text, bool fold_case = false);

// ---------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------

enum class Effect { kAllow, kDeny };

// The outcome of evaluating a policy for one request.
struct Decision {
  enum class Kind {
    kImplicitDeny,  // no statement allows it (deny by default)
    kAllow,         // a statement allows it and none denies it
    kExplicitDeny,  // a Deny statement matches (wins over any Allow)
  };
  Kind kind = Kind::kImplicitDeny;
  // The statement that decided (the first matching Deny, else the first matching Allow); -1 for
  // an implicit deny.
  int statement = -1;

  bool allowed() const { return kind == Kind::kAllow; }
  // "allow", "implicit-deny" or "explicit-deny".
  std::string_view name() const;
};

struct PolicyStatement {
  std::string sid;  // may be empty
  Effect effect = Effect::kAllow;
  std::vector<std::string> actions;    // as written
  std::vector<std::string> resources;  // as written
};

// A parsed, validated policy. Immutable: safe to share between threads.
class Policy {
 public:
  // Parses and validates an IAM-shaped policy document. kInvalidArgument with a message naming
  // the statement (by index and Sid) and the field for: malformed JSON (with the byte offset),
  // unknown top-level or statement keys (NotAction, NotResource, Principal and Condition are not
  // supported), a Version other than "2012-10-17", no statements, an Effect other than "Allow" or
  // "Deny", an empty or non-string Action or Resource, an unknown action (or a wildcard matching
  // no known action), and a resource that is neither `*` nor "<type>/<name>" of a known type.
  static Result<Policy> Parse(std::string_view json_text);
  // Parse of a policy file given on a command line (at most 1 MiB); errors name the file.
  static Result<Policy> ParseFile(const std::string& path);
  static Result<Policy> FromJson(const Json& document);
  // The same, checking actions and resource types against `vocabulary` instead of the keys'
  // (e.g. RolePolicyVocabulary() for a state machine's role; messages then say "role").
  static Result<Policy> FromJson(const Json& document, const PolicyVocabulary& vocabulary,
                                 std::string_view what = "policy");

  // Deny by default; an explicit Deny wins. `action` is matched case-insensitively.
  // Costs a few string comparisons per statement: no allocation.
  Decision Evaluate(std::string_view action, std::string_view resource) const;

  const std::vector<PolicyStatement>& statements() const { return statements_; }
  // The document, normalized: Version, and Statement as a list whose Action and Resource are
  // lists. Parse(ToJson().dump()) gives an equal policy.
  Json ToJson() const;

 private:
  // A statement as matched: action patterns lower-cased.
  struct Compiled {
    bool deny = false;
    std::vector<std::string> actions;
    std::vector<std::string> resources;
  };
  std::vector<PolicyStatement> statements_;
  std::vector<Compiled> compiled_;
};

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

// One API key as listed: never its secret.
struct ApiKey {
  std::string id;  // 12 lowercase hex digits
  std::string name;
  std::shared_ptr<const Policy> policy;
  int64_t created_micros = 0;
  std::optional<int64_t> revoked_micros;
  // When the key last authenticated, as saved by KeyStore::SaveLastUsed (to the second).
  std::optional<int64_t> last_used_micros;

  bool revoked() const { return revoked_micros.has_value(); }
  // {"id", "name", "created_at", "revoked_at", "last_used_at", "policy"}; times ISO 8601 UTC or
  // null.
  Json ToJson() const;
};

// What KeyStore::Create returns: the only time the secret exists outside the caller.
struct NewApiKey {
  ApiKey key;
  std::string token;  // "ek_<id>_<64 hex digits>": what clients send as the bearer token
  // That the token is shown once only (Engage keeps its hash).
  static constexpr const char* kShownOnce =
      "this is the only time the token is shown: Engage keeps only its hash. Store it now (a "
      "lost token cannot be recovered: revoke the key and create another).";
  Json ToJson() const;         // {"key": {...}, "token", "warning": kShownOnce}
  std::string ToText() const;  // the key, the token and how to send it
};

// Who is calling: the key a request authenticated with.
struct Principal {
  std::string key_id;
  std::string name;
  std::shared_ptr<const Policy> policy;  // never null

  Decision Evaluate(std::string_view action, std::string_view resource) const {
    return policy->Evaluate(action, resource);
  }
};

struct KeyStoreOptions {
  // How often Authenticate checks whether meta.db changed (PRAGMA data_version), reloading the
  // keys when it did. A revoke by another process takes effect within this time.
  int64_t refresh_interval_ms = 100;
};

// The `api_keys` table of meta.db and an in-memory copy of it for authentication.
//
// Thread-safety: safe for concurrent use. Authenticate takes no lock on the common path (it reads
// an atomically swapped snapshot); at most once per refresh interval one caller checks meta.db
// while the others go on with the current snapshot. Create, Revoke, List and SaveLastUsed
// serialize on one SQLite connection. Several processes may share meta.db.
class KeyStore {
 public:
  // Opens meta.db, creating the api_keys table when missing, and loads the keys. `clock` must
  // outlive the store.
  static Result<std::unique_ptr<KeyStore>> Open(const std::string& meta_db_path, const Clock& clock,
                                                KeyStoreOptions options = {});
  ~KeyStore();
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // Creates a key with 256 random bits from the OpenSSL CSPRNG and stores its SHA-256.
  // kInvalidArgument for an empty name, a name over 64 bytes or with control characters.
  Result<NewApiKey> Create(const std::string& name, const Policy& policy);

  // Every key, oldest first, read from meta.db (revoked keys included).
  Result<std::vector<ApiKey>> List();

  // Revokes key `id` and returns it. kNotFound for an unknown id; revoking a revoked key changes
  // nothing (the first revocation time stays).
  Result<ApiKey> Revoke(const std::string& id);

  // Checks a bearer token, given bare or as an Authorization header value ("Bearer <token>").
  // kUnauthenticated (HTTP 401) when the token is missing, malformed, unknown, has the wrong
  // secret, or its key is revoked. The secret is compared in constant time and never appears in
  // a message.
  Result<Principal> Authenticate(std::string_view bearer_token);

  // Writes the last-use times Authenticate noted in memory to api_keys.last_used_micros.
  // Authenticate never writes to SQLite; call this now and then (and on shutdown; the destructor
  // does, ignoring errors).
  Status SaveLastUsed();

  // Reloads the keys from meta.db now (Authenticate does when meta.db changed).
  Status Reload();

 private:
  struct Entry;
  struct Snapshot;
  KeyStore(SqliteDb db, const Clock& clock, KeyStoreOptions options);
  // Rebuilds the snapshot from meta.db; db_mu_ held.
  Status ReloadLocked();
  // Reloads when the refresh interval passed and meta.db changed.
  void MaybeRefresh();

  const Clock& clock_;
  const KeyStoreOptions options_;
  std::mutex db_mu_;
  SqliteDb db_;                // guarded by db_mu_
  int64_t data_version_ = -1;  // guarded by db_mu_
  std::atomic<int64_t> next_check_micros_{0};
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::atomic<uint64_t> generation_{0};  // snapshot_'s generation
};

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

// One audited request.
struct AuditRecord {
  int64_t at_micros = 0;  // 0: AuditLog::Record sets the clock's time
  std::string key_id;     // empty when the request did not authenticate
  std::string action;
  std::string resource;
  bool allowed = false;
  StatusCode code = StatusCode::kOk;  // the request's outcome (kUnauthenticated, ...)
  int http_status = 0;                // 0: HttpStatusFor(code)
  Json detail = Json::object();       // e.g. {"statement": "DenyScore", "path": "/v1/score"}
  std::string remote_address;

  // {"at", "key_id", "action", "resource", "decision": "allow"|"deny", "code", "http_status",
  //  "detail", "remote_address"}
  Json ToJson() const;
};

// Keys as a table (id, name, status, dates, a one-line policy summary); never their tokens.
std::string KeysTable(const std::vector<ApiKey>& keys);
// {"keys": [ApiKey::ToJson()...]} and {"records": [AuditRecord::ToJson()...]}.
Json KeysJson(const std::vector<ApiKey>& keys);
Json AuditJson(const std::vector<AuditRecord>& records);
// Audit records as a table: at, key, decision, http status, action, resource, remote address.
std::string AuditTable(const std::vector<AuditRecord>& records);

struct AuditLogOptions {
  // The background thread writes buffered records at least this often.
  int64_t flush_interval_ms = 200;
  // ... and as soon as this many are buffered.
  int64_t flush_batch = 1000;
  // Records buffered beyond this (meta.db unwritable for long) are dropped and counted.
  int64_t max_buffered = 100000;
  // Denials are written at most this many per client (its key id, or for a request without a
  // valid key its remote address without the port) per window; the rest are counted, and one
  // row "N more denials suppressed" (action kAuditSuppressed) is written when the window closes,
  // so that a flood of bad requests cannot fill the disk. Allowed writes are not limited.
  int64_t max_denials_per_window = 100;
  int64_t denial_window_ms = 60000;
  // Clients tracked at once; denials of further clients share one window ("*").
  int64_t max_denial_clients = 10000;
};

// The action of the row that summarises denials left out by the limit above.
inline constexpr std::string_view kAuditSuppressed = "audit:DenialsSuppressed";

// The `audit_log` table of meta.db, written in batches by a background thread.
//
// Thread-safety: safe for concurrent use. Record only appends to an in-memory buffer under a
// mutex: request threads never wait for SQLite.
class AuditLog {
 public:
  // Opens meta.db (creating audit_log when missing) and starts the writer thread. `clock` must
  // outlive the log.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& meta_db_path, const Clock& clock,
                                                AuditLogOptions options = {});
  // Stops the writer thread after writing what is buffered.
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Buffers `record` for writing; a denial (allowed == false) beyond its client's limit is only
  // counted (see AuditLogOptions).
  void Record(AuditRecord record);
  // Writes everything recorded so far before returning (for tests and shutdown), with a summary
  // row for each client whose denials were suppressed since the last one. Returns the SQLite
  // error if the write failed (the records stay buffered for the next attempt).
  Status Flush();
  // Denials counted but not written (each is summarised in a kAuditSuppressed row).
  int64_t suppressed() const { return suppressed_.load(); }
  // The newest `limit` records, newest first (flushed ones only).
  Result<std::vector<AuditRecord>> List(int64_t limit);
  // Records dropped because the buffer was full.
  int64_t dropped() const { return dropped_.load(); }

 private:
  AuditLog(SqliteDb db, const Clock& clock, AuditLogOptions options);
  void Run();
  // Writes the buffer; db_mu_ held.
  Status WriteLocked();
  // Buffers a summary row for each client with suppressed denials whose window has closed (or
  // every such client, when `all`), forgetting closed windows; mu_ held.
  void CloseDenialWindowsLocked(int64_t now_micros, bool all);

  // One client's current denial window.
  struct DenialWindow {
    int64_t start_micros = 0;
    int64_t written = 0;
    int64_t suppressed = 0;
    AuditRecord last;  // the newest suppressed denial: who, and what it tried
  };

  const Clock& clock_;
  const AuditLogOptions options_;
  std::mutex db_mu_;  // taken before mu_ when both are needed
  SqliteDb db_;       // guarded by db_mu_
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<AuditRecord> buffer_;                        // guarded by mu_
  bool stop_ = false;                                      // guarded by mu_
  std::unordered_map<std::string, DenialWindow> denials_;  // by client; guarded by mu_
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> suppressed_{0};
  std::thread writer_;
};

// ---------------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------------

struct RateLimitOptions {
  double rate_per_second = 20;  // sustained requests per second per key; <= 0: no limit
  double burst = 40;            // bucket size: requests a rested key may make at once (>= 1)
};

struct RateDecision {
  bool allowed = true;
  // When refused: seconds until a request would be allowed (for a Retry-After header; round up).
  double retry_after_seconds = 0;
};

// A token bucket per key: full (`burst` tokens) for a key not seen before, refilled at
// `rate_per_second`, one token per request.
//
// Thread-safety: safe for concurrent use; keys are spread over 32 independently locked shards,
// so requests of different keys rarely contend. Memory grows with the number of distinct keys
// (call Take with authenticated key ids only).
class RateLimiter {
 public:
  explicit RateLimiter(RateLimitOptions options);

  // Takes `cost` tokens from `key_id`'s bucket at `now_micros` (a monotonic clock). Refused
  // requests take nothing.
  RateDecision Take(std::string_view key_id, int64_t now_micros, double cost = 1);

  const RateLimitOptions& options() const { return options_; }

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_micros = 0;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket, StringHash, std::equal_to<>> buckets;
  };
  static constexpr size_t kShards = 32;
  RateLimitOptions options_;
  std::array<Shard, kShards> shards_;
};

}  // namespace engage::serve
