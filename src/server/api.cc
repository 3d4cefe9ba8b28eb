#include "engage/server/api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engage/app/app.h"
#include "engage/app/monitoring.h"
#include "engage/features/features.h"
#include "engage/flow/registry.h"
#include "engage/flow/store.h"
#include "engage/lake/lake.h"
#include "engage/ml/engagement.h"
#include "engage/ml/registry.h"
#include "engage/ml/scoring.h"
#include "engage/ml/xgb.h"
#include "engage/monitor/cost.h"
#include "engage/serve/ab.h"
#include "engage/serve/machines.h"
#include "engage/serve/store.h"
#include "engage/sql/query.h"

namespace engage::server {

// The serving components the routes use (serve/: keys, policies, audit, rate limits, the
// prediction store, A/B splits, state-machine roles).
namespace actions = serve::actions;
using serve::AuditLog;
using serve::AuditRecord;
using serve::Decision;
using serve::Effect;
using serve::EngagementPipelineRole;
using serve::ExposureLog;
using serve::kEngagementMachine;
using serve::KeyStore;
using serve::PipelineResource;
using serve::Policy;
using serve::Principal;
using serve::RateDecision;
using serve::RateLimiter;
using serve::RegisterStateMachine;
using serve::SplitArm;
using serve::SplitStore;
using serve::TrafficSplit;
using serve::WildcardMatch;

namespace {

// Latency histogram bounds in seconds (Prometheus `le` labels), +Inf implied.
constexpr std::array<double, 15> kBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
// Status codes counted individually; others are counted as "other".
constexpr std::array<int, 14> kStatuses = {200, 400, 401, 403, 404, 405, 409,
                                           412, 413, 429, 500, 501, 503, 504};

// Request counts and latencies of one route. Striped: each thread adds to its own stripe (its
// own cache lines), so event loops on different cores do not contend; reads sum the stripes.
struct RouteMetrics {
  static constexpr size_t kStripes = 8;
  struct alignas(64) Stripe {
    std::array<std::atomic<int64_t>, kStatuses.size() + 1> by_status{};
    std::array<std::atomic<int64_t>, kBuckets.size() + 1> buckets{};  // last: +Inf
    std::atomic<int64_t> count{0};
    std::atomic<int64_t> micros_sum{0};
  };
  std::array<Stripe, kStripes> stripes;

  static size_t ThisThreadStripe() {
    static std::atomic<size_t> next{0};
    thread_local size_t stripe = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
    return stripe;
  }

  void Record(int status, int64_t micros) {
    Stripe& st = stripes[ThisThreadStripe()];
    size_t s = kStatuses.size();
    for (size_t i = 0; i < kStatuses.size(); ++i) {
      if (kStatuses[i] == status) s = i;
    }
    st.by_status[s].fetch_add(1, std::memory_order_relaxed);
    double seconds = static_cast<double>(micros) / 1e6;
    size_t b = kBuckets.size();
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      if (seconds <= kBuckets[i]) {
        b = i;
        break;
      }
    }
    st.buckets[b].fetch_add(1, std::memory_order_relaxed);
    st.count.fetch_add(1, std::memory_order_relaxed);
    st.micros_sum.fetch_add(micros, std::memory_order_relaxed);
  }

  // The sum over the stripes of one counter.
  template <typename Field>
  int64_t Sum(Field field) const {
    int64_t total = 0;
    for (const Stripe& st : stripes) total += field(st).load(std::memory_order_relaxed);
    return total;
  }
  int64_t ByStatus(size_t i) const {
    return Sum([i](const Stripe& st) -> const std::atomic<int64_t>& { return st.by_status[i]; });
  }
  int64_t Bucket(size_t i) const {
    return Sum([i](const Stripe& st) -> const std::atomic<int64_t>& { return st.buckets[i]; });
  }
  int64_t Count() const {
    return Sum([](const Stripe& st) -> const std::atomic<int64_t>& { return st.count; });
  }
  int64_t MicrosSum() const {
    return Sum([](const Stripe& st) -> const std::atomic<int64_t>& { return st.micros_sum; });
  }
};

// Percent-decodes a path segment; nullopt when malformed.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// What follows a parameter in a pattern segment: ":promote" in "{name}:promote".
std::string_view ParamSuffix(std::string_view pattern_segment) {
  size_t close = pattern_segment.find('}');
  return close == std::string_view::npos ? "" : pattern_segment.substr(close + 1);
}

// The value of `name` in a query string (not decoded); empty when absent.
std::string_view QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

void Error(HttpResponse& res, const Status& s) {
  res.status = HttpStatusFor(s.code());
  res.content_type = "application/json";
  res.body.clear();
  res.body.append(R"({"error":{"code":)");
  AppendJson(&res.body, Json(std::string(CodeName(s.code()))));
  res.body.append(R"(,"message":)");
  AppendJson(&res.body, Json(s.message()));
  res.body.append("}}");
}

void JsonBody(HttpResponse& res, const Json& j) {
  res.status = 200;
  res.content_type = "application/json";
  res.body = DumpJson(j);
}

// True when some Allow statement of `policy` names `action` (for some resource): the only way
// a request for it can be allowed. Deny statements are left to the full evaluation.
bool MayEverAllow(const Policy& policy, std::string_view action) {
  for (const auto& st : policy.statements()) {
    if (st.effect != Effect::kAllow) continue;
    for (const auto& a : st.actions) {
      if (WildcardMatch(a, action, /*fold_case=*/true)) return true;
    }
  }
  return false;
}

Result<Json> ParseBody(const HttpRequest& req) {
  if (req.body.empty()) return InvalidArgumentError("the request needs a JSON body");
  auto j = ParseJson(req.body, "request body");
  if (!j.ok()) return InvalidArgumentError(j.status().message());
  if (!j->is_object()) return InvalidArgumentError("the request body must be a JSON object");
  return j;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Call {
  const HttpRequest& req;
  HttpResponse& res;
  std::vector<std::string> params;  // path parameters, decoded, in pattern order
  const Principal* principal = nullptr;
  // Set by a handler that authorizes per resource (e.g. the tables a query read): what the audit
  // row names, and whether a successful call is audited too (reads of data).
  std::string resource = {};
  bool audit_success = false;
};

struct Route {
  std::string method;
  std::string pattern;  // e.g. "/v1/customers/{id}/prediction"
  std::vector<std::string> segments;
  std::string operation_id;
  std::string summary;
  std::string action;  // empty: any valid key (or none, when !auth)
  bool auth = true;
  bool blocking = false;
  bool write = false;  // audited even when allowed
  // The handler checks the action itself, per resource it touches (tables of a query, models
  // listed); the route-level check is skipped.
  bool handler_authorizes = false;
  std::string request_schema;  // a JSON schema for the body, if any (OpenAPI)
  // The policy resource the action applies to.
  std::function<std::string(const Call&)> resource;
  std::function<Status(Call&)> handler;
  std::unique_ptr<RouteMetrics> metrics = std::make_unique<RouteMetrics>();
};

// The server's requests as cost ledger entries: counted as they are served and written as one
// "requests" entry (priced as Lambda invocations and DynamoDB reads) once a minute and when the
// server stops, so that serving costs one SQLite insert a minute, not one per request.
struct RequestLedger {
  static constexpr int64_t kFlushMicros = 60 * 1000 * 1000;
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> micros{0};
  std::atomic<int64_t> reads{0};  // predictions looked up (DynamoDB read units)
  std::atomic<int64_t> last_flush{0};
  std::mutex flush_mu;
};

struct Api::Impl {
  app::App* app = nullptr;
  RequestLedger request_ledger;
  void CountRequest(int64_t micros);
  void FlushRequests();
  HomePaths home;
  ApiOptions options;
  const Clock* clock = nullptr;
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<SplitStore> splits;
  // POST /v1/score: loaded models by version directory, and the current features.
  std::mutex models_mu;
  std::map<std::string, std::shared_ptr<const ml::Model>> models;
  std::mutex current_mu;
  struct CurrentFeatures {
    std::string cutoff;
    bool btyd = false;
    int64_t checked_micros = 0;
    std::shared_ptr<const features::FeatureFrame> frame;
    std::unordered_map<std::string, int64_t> rows;  // customer id -> row
  };
  std::shared_ptr<const CurrentFeatures> current;
  std::mutex executions_mu;
  std::unique_ptr<flow::ExecutionStore> executions;
  std::mutex machines_mu;
  std::unique_ptr<flow::StateMachineRegistry> machines;
  // The home's root as it appears in JSON text (plain and resolved), replaced by $ENGAGE_HOME
  // in execution bodies: answers never show server paths.
  std::vector<std::string> home_spellings;
  std::unique_ptr<ExposureLog> exposures;
  std::mutex registry_mu;
  std::unique_ptr<ml::ModelRegistry> registry;
  std::vector<Route> routes;
  RouteMetrics unmatched;
  const HttpServerStats* server_stats = nullptr;
  Json openapi;

  // The published predictions (the app's serving store): per lookup, and held for a request.
  const serve::Snapshot* LookupSnapshot() const { return app->serving().LookupSnapshot(); }
  std::shared_ptr<const serve::Snapshot> CurrentSnapshot() {
    return app->serving().CurrentSnapshot();
  }

  void Add(Route r) {
    size_t start = 1;
    while (start <= r.pattern.size()) {
      size_t end = r.pattern.find('/', start);
      if (end == std::string::npos) end = r.pattern.size();
      r.segments.push_back(r.pattern.substr(start, end - start));
      start = end + 1;
    }
    routes.push_back(std::move(r));
  }

  void AddRoutes();
  void BuildOpenApi();
  // Matches path and method; sets `*path_matched` when only the method differs.
  Route* Match(const HttpRequest& req, std::vector<std::string>* params, bool* path_matched,
               std::string* allow);
  void Audit(const HttpRequest& req, const Principal* p, const Route& r,
             const std::string& resource, bool allowed, const Status& outcome, int http_status,
             Json detail);

  // Appends customer `id`'s prediction: of `version` when given, else of the arm of the
  // snapshot's traffic split the customer falls in (recording the exposure and naming the arm),
  // else of the default version.
  Result<bool> AppendServed(const serve::Snapshot& snap, const std::string& id, int64_t version,
                            std::string* out);
  Status GetPrediction(Call& c);
  Status GetSplit(Call& c);
  Status Score(Call& c);
  // The features of every customer at the latest cutoff, built once per cutoff (checked at most
  // once a minute).
  Result<std::shared_ptr<const CurrentFeatures>> Current(bool btyd);
  Status StartExecution(Call& c);
  Status ListExecutions(Call& c);
  Status GetExecution(Call& c, bool history);
  Status StopExecution(Call& c);
  // An execution's JSON as answered: no file paths, the home's root spelled $ENGAGE_HOME.
  void ExecutionBody(HttpResponse& res, Json j, int status);
  Status PutStateMachine(Call& c);
  Status ListStateMachines(Call& c);
  Status GetStateMachine(Call& c);
  Status PutSplit(Call& c);
  Status DeleteSplit(Call& c);
  // The Prometheus text of GET /metrics.
  std::string Metrics();
  Status BatchGet(Call& c);
  Status Query(Call& c);
  Status ListModels(Call& c);
  Status GetModel(Call& c);
  Status SetAlias(Call& c);
  Status Promote(Call& c);
};

Route* Api::Impl::Match(const HttpRequest& req, std::vector<std::string>* params,
                        bool* path_matched, std::string* allow) {
  std::string_view path = req.path;
  if (path.empty() || path[0] != '/') return nullptr;
  std::array<std::string_view, 8> segs;
  size_t n = 0;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (n == segs.size()) return nullptr;
    segs[n++] = path.substr(start, end - start);
    start = end + 1;
  }
  Route* found = nullptr;
  for (auto& r : routes) {
    if (r.segments.size() != n) continue;
    bool ok = true;
    for (size_t i = 0; i < n && ok; ++i) {
      const std::string& p = r.segments[i];
      std::string_view suffix = ParamSuffix(p);
      ok = (!p.empty() && p.front() == '{')
               ? segs[i].size() > suffix.size() && segs[i].ends_with(suffix)
               : p == segs[i];
    }
    if (!ok) continue;
    *path_matched = true;
    if (r.method != req.method) {
      *allow += (allow->empty() ? "" : ", ") + r.method;
      continue;
    }
    found = &r;
    break;
  }
  if (found == nullptr) return nullptr;
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = found->segments[i];
    if (!p.empty() && p.front() == '{') {
      std::string_view raw = segs[i].substr(0, segs[i].size() - ParamSuffix(p).size());
      auto decoded = PercentDecode(raw);
      params->push_back(decoded ? *decoded : std::string(raw));
    }
  }
  return found;
}

void Api::Impl::Audit(const HttpRequest& req, const Principal* p, const Route& r,
                      const std::string& resource, bool allowed, const Status& outcome,
                      int http_status, Json detail) {
  AuditRecord rec;
  rec.key_id = p != nullptr ? p->key_id : "";
  rec.action = r.action.empty() ? r.operation_id : r.action;
  rec.resource = resource;
  rec.allowed = allowed;
  rec.code = outcome.code();
  rec.http_status = http_status;
  detail["method"] = req.method;
  detail["path"] = req.path;
  if (!outcome.ok()) detail["message"] = outcome.message();
  rec.detail = std::move(detail);
  rec.remote_address = req.remote;
  audit->Record(std::move(rec));
}

// ---------------------------------------------------------------------------------------------
// Handlers

Result<bool> Api::Impl::AppendServed(const serve::Snapshot& snap, const std::string& id,
                                     int64_t version, std::string* out) {
  const SplitArm* arm = nullptr;
  if (version == 0 && snap.info().split) {
    const TrafficSplit& split = *snap.info().split;
    arm = &split.arms[split.Assign(id)];
    version = arm->version;
  }
  ENGAGE_ASSIGN_OR_RETURN(bool found, snap.AppendJson(id, version, out));
  if (found && arm != nullptr) {
    out->pop_back();  // the closing brace
    out->append(",\"arm\":");
    AppendJson(out, Json(arm->name));
    out->push_back('}');
    exposures->Record(snap.info().model, id, arm->name, version);
  }
  return found;
}

// The model reference of a score request: body "model", else <served model>@champion.
static std::string ScoreRef(const Json& body, const std::string& served_model) {
  if (body.is_object() && body.contains("model") && body["model"].is_string()) {
    return body["model"].get<std::string>();
  }
  return served_model + "@champion";
}

Result<std::shared_ptr<const Api::Impl::CurrentFeatures>> Api::Impl::Current(bool btyd) {
  std::lock_guard<std::mutex> lock(current_mu);
  int64_t now = clock->MonotonicMicros();
  if (current && current->btyd == btyd && now - current->checked_micros < 60'000'000) {
    return current;
  }
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<app::ReadSide> reads, app->reads().Current());
  const EngagementConfig& config = reads->config().engagement;
  features::FeatureBuilder builder(reads->query(), config);
  ENGAGE_ASSIGN_OR_RETURN(std::string cutoff, builder.DataEnd());
  if (current && current->btyd == btyd && current->cutoff == cutoff) {
    auto refreshed = std::make_shared<CurrentFeatures>(*current);
    refreshed->checked_micros = now;
    current = refreshed;
    return current;
  }
  auto fresh = std::make_shared<CurrentFeatures>();
  fresh->cutoff = cutoff;
  fresh->btyd = btyd;
  fresh->checked_micros = now;
  {
    std::lock_guard<std::mutex> reg(registry_mu);
    ml::EngagementTrainer trainer(reads->query(), *registry, config);
    ENGAGE_ASSIGN_OR_RETURN(features::FeatureFrame frame, trainer.BuildFeatures({cutoff}, btyd));
    fresh->frame = std::make_shared<const features::FeatureFrame>(std::move(frame));
  }
  for (int64_t r = 0; r < fresh->frame->rows(); ++r) {
    fresh->rows.emplace(fresh->frame->customer_ids[static_cast<size_t>(r)], r);
  }
  current = fresh;
  return current;
}

Status Api::Impl::Score(Call& c) {
  ENGAGE_ASSIGN_OR_RETURN(Json body, ParseBody(c.req));
  auto snap = CurrentSnapshot();
  std::string ref = ScoreRef(body, snap ? snap->info().model : std::string("engagement"));
  ml::ModelVersion mv;
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    ENGAGE_ASSIGN_OR_RETURN(mv, registry->Resolve(ref));
  }
  std::shared_ptr<const ml::Model> model;
  {
    std::lock_guard<std::mutex> lock(models_mu);
    auto it = models.find(mv.dir);
    if (it == models.end()) {
      ENGAGE_ASSIGN_OR_RETURN(ml::Model m, ml::Model::Load(mv.model_path(), 1));
      it = models.emplace(mv.dir, std::make_shared<const ml::Model>(std::move(m))).first;
    }
    model = it->second;
  }
  const std::vector<std::string>& names = model->FeatureNames();
  ml::DenseMatrix x(1, static_cast<int64_t>(names.size()));
  Json source;
  if (body.contains("features")) {
    if (!body["features"].is_object()) {
      return InvalidArgumentError("features must be an object of feature name to number");
    }
    std::unordered_map<std::string, int64_t> index;
    for (size_t j = 0; j < names.size(); ++j) index.emplace(names[j], static_cast<int64_t>(j));
    for (const auto& [name, value] : body["features"].items()) {
      auto it = index.find(name);
      if (it == index.end()) {
        return InvalidArgumentError(fmt::format(
            "unknown feature '{}': {}@{} has {} features (GET /v1/models/{}/versions lists them)",
            name, mv.name, mv.version, names.size(), mv.name));
      }
      if (value.is_number()) {
        x.at(0, it->second) = value.get<float>();
      } else if (!value.is_null()) {
        return InvalidArgumentError(fmt::format("feature '{}' must be a number or null", name));
      }
    }
    source = "supplied";
  } else if (body.contains("customer_id") &&
             (body["customer_id"].is_string() || body["customer_id"].is_number_integer())) {
    std::string id = body["customer_id"].is_string()
                         ? body["customer_id"].get<std::string>()
                         : std::to_string(body["customer_id"].get<int64_t>());
    bool btyd = std::any_of(names.begin(), names.end(),
                            [](const std::string& n) { return n.starts_with("btyd_"); });
    ENGAGE_ASSIGN_OR_RETURN(auto cur, Current(btyd));
    auto row = cur->rows.find(id);
    if (row == cur->rows.end()) {
      return NotFoundError(fmt::format("no events for customer '{}' before {}", id, cur->cutoff));
    }
    for (size_t j = 0; j < names.size(); ++j) {
      int col = cur->frame->Find(names[j]);
      if (col >= 0) {
        x.at(0, static_cast<int64_t>(j)) =
            cur->frame->columns[static_cast<size_t>(col)][static_cast<size_t>(row->second)];
      }
    }
    source = Json{{"customer_id", id}, {"cutoff", cur->cutoff}};
  } else {
    return InvalidArgumentError(
        "send {\"features\": {name: value, ...}} or {\"customer_id\": ID}, and optionally "
        "\"model\": \"name@alias|version\"");
  }
  ENGAGE_ASSIGN_OR_RETURN(std::vector<float> score, model->Predict(x));
  ENGAGE_ASSIGN_OR_RETURN(ml::ContributionMatrix contribs, model->Contributions(x));
  ENGAGE_ASSIGN_OR_RETURN(std::vector<ml::Reason> top, ml::TopReasons(contribs.Row(0), names, 3));
  Json reasons = Json::array();
  for (const auto& r : top) {
    reasons.push_back(
        Json{{"feature", r.feature}, {"contribution", std::round(r.contribution * 1e4) / 1e4}});
  }
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<app::ReadSide> reads, app->reads().Current());
  JsonBody(c.res, Json{{"model", mv.name},
                       {"model_version", mv.version},
                       {"score", score[0]},
                       {"segment", ml::Segment(reads->config().engagement, score[0])},
                       {"reasons", std::move(reasons)},
                       {"features", std::move(source)}});
  return Status::Ok();
}

void Api::Impl::ExecutionBody(HttpResponse& res, Json j, int status) {
  auto strip = [](Json& e) {
    if (!e.is_object()) return;
    e.erase("definitionPath");
    e.erase("mockPath");
    e.erase("definition");
  };
  strip(j);
  if (j.contains("executions") && j["executions"].is_array()) {
    for (Json& e : j["executions"]) strip(e);
  }
  std::string body = DumpJson(j);
  for (const std::string& root : home_spellings) {
    if (root.size() < 2) continue;  // "/" is in every path
    for (size_t at = body.find(root); at != std::string::npos; at = body.find(root, at)) {
      body.replace(at, root.size(), "$ENGAGE_HOME");
    }
  }
  res.status = status;
  res.content_type = "application/json";
  res.body = std::move(body);
}

Status Api::Impl::StartExecution(Call& c) {
  ENGAGE_ASSIGN_OR_RETURN(Json body, ParseBody(c.req));
  ENGAGE_ASSIGN_OR_RETURN(Json started, app->StartRegisteredExecution(body));
  ExecutionBody(c.res, std::move(started), 202);
  return Status::Ok();
}

Status Api::Impl::ListExecutions(Call& c) {
  int64_t limit = 50;
  std::string_view l = QueryParam(c.req.query, "limit");
  if (!l.empty()) {
    auto [ptr, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (ec != std::errc() || ptr != l.data() + l.size() || limit < 1 || limit > 1000) {
      return InvalidArgumentError("limit must be an integer from 1 to 1000");
    }
  }
  std::string status(QueryParam(c.req.query, "status"));
  std::lock_guard<std::mutex> lock(executions_mu);
  ENGAGE_ASSIGN_OR_RETURN(auto records, executions->List(limit, status));
  Json out = Json::array();
  for (const auto& r : records) {
    // Only the executions of pipelines the key may list.
    if (!c.principal->Evaluate(actions::kExecutionsList, "pipeline/" + r.state_machine).allowed()) {
      continue;
    }
    out.push_back(r.ToJson());
  }
  if (out.empty() && !records.empty()) {
    return PermissionDeniedError(
        fmt::format("key {} may not list the executions of any pipeline", c.principal->key_id));
  }
  ExecutionBody(c.res, Json{{"executions", std::move(out)}}, 200);
  return Status::Ok();
}

Status Api::Impl::GetExecution(Call& c, bool history) {
  std::lock_guard<std::mutex> lock(executions_mu);
  ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord r, executions->Get(c.params[0]));
  if (!c.principal->Evaluate(actions::kExecutionsGet, "pipeline/" + r.state_machine).allowed()) {
    return PermissionDeniedError(fmt::format("key {} may not {} on pipeline/{}",
                                             c.principal->key_id, actions::kExecutionsGet,
                                             r.state_machine));
  }
  ENGAGE_ASSIGN_OR_RETURN(monitor::ExecutionCost cost, app::ExecutionCostOf(app->home(), r.id));
  if (!history) {
    Json j = r.ToJson();
    j["cost"] = cost.ToJson();
    ExecutionBody(c.res, j, 200);
    return Status::Ok();
  }
  ENGAGE_ASSIGN_OR_RETURN(auto events, executions->History(r.id));
  ExecutionBody(
      c.res,
      Json{{"execution", r.name}, {"events", flow::HistoryJson(events)}, {"cost", cost.ToJson()}},
      200);
  return Status::Ok();
}

Status Api::Impl::StopExecution(Call& c) {
  flow::ExecutionRecord r;
  {
    std::lock_guard<std::mutex> lock(executions_mu);
    ENGAGE_ASSIGN_OR_RETURN(r, executions->Get(c.params[0]));
  }
  c.resource = "pipeline/" + r.state_machine;
  if (!c.principal->Evaluate(actions::kExecutionsStop, c.resource).allowed()) {
    return PermissionDeniedError(fmt::format("key {} may not {} on {}", c.principal->key_id,
                                             actions::kExecutionsStop, c.resource));
  }
  ENGAGE_RETURN_IF_ERROR(app->executions().Stop(r.id));
  ExecutionBody(c.res, Json{{"execution", r.name}, {"id", r.id}, {"status", "STOPPING"}}, 202);
  return Status::Ok();
}

Status Api::Impl::PutStateMachine(Call& c) {
  const std::string& name = c.params[0];
  ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(name));
  ENGAGE_ASSIGN_OR_RETURN(Json body, ParseBody(c.req));
  for (const auto& [key, value] : body.items()) {
    if (key != "definition" && key != "role") {
      return InvalidArgumentError(fmt::format(
          "unknown key \"{}\" (send {{\"definition\": {{...ASL...}}, \"role\": {{...policy...}}}})",
          key));
    }
  }
  if (!body.contains("definition")) {
    return InvalidArgumentError("send {\"definition\": {...ASL...}, \"role\": {...policy...}}");
  }
  std::lock_guard<std::mutex> lock(machines_mu);
  ENGAGE_ASSIGN_OR_RETURN(
      flow::RegisteredStateMachine m,
      RegisterStateMachine(*machines, name, body["definition"], body.value("role", Json()),
                           "key " + c.principal->key_id));
  JsonBody(c.res, m.ToJson(false));
  return Status::Ok();
}

Status Api::Impl::ListStateMachines(Call& c) {
  std::lock_guard<std::mutex> lock(machines_mu);
  ENGAGE_ASSIGN_OR_RETURN(auto list, machines->List());
  Json out = Json::array();
  for (const auto& m : list) {
    if (!c.principal->Evaluate(actions::kStateMachinesList, PipelineResource(m.name)).allowed()) {
      continue;
    }
    out.push_back(m.ToJson(false));
  }
  if (out.empty() && !list.empty()) {
    return PermissionDeniedError(
        fmt::format("key {} may not list any state machine", c.principal->key_id));
  }
  JsonBody(c.res, Json{{"state_machines", std::move(out)}});
  return Status::Ok();
}

Status Api::Impl::GetStateMachine(Call& c) {
  const std::string& name = c.params[0];
  ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(name));
  if (name == kEngagementMachine) {
    JsonBody(c.res, Json{{"name", name},
                         {"built_in", true},
                         {"definition",
                          "pipelines/engagement.asl.json (engage run pipeline "
                          "--print-definition)"},
                         {"role", EngagementPipelineRole()}});
    return Status::Ok();
  }
  std::lock_guard<std::mutex> lock(machines_mu);
  ENGAGE_ASSIGN_OR_RETURN(flow::RegisteredStateMachine m, machines->Get(name));
  JsonBody(c.res, m.ToJson(true));
  return Status::Ok();
}

Status Api::Impl::GetSplit(Call& c) {
  ENGAGE_ASSIGN_OR_RETURN(std::optional<TrafficSplit> split, splits->Get(c.params[0]));
  auto snap = CurrentSnapshot();
  Json serving;
  if (snap && snap->info().model == c.params[0] && snap->info().split) {
    serving = snap->info().split->ToJson();
  }
  JsonBody(c.res, Json{{"model", c.params[0]},
                       {"split", split ? split->ToJson() : Json()},
                       {"serving", serving}});
  return Status::Ok();
}

Status Api::Impl::PutSplit(Call& c) {
  ENGAGE_ASSIGN_OR_RETURN(Json body, ParseBody(c.req));
  body["model"] = c.params[0];
  if (!body.contains("salt")) body["salt"] = c.params[0];
  ENGAGE_ASSIGN_OR_RETURN(TrafficSplit split, TrafficSplit::FromJson(body));
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    for (const auto& a : split.arms) {
      ENGAGE_RETURN_IF_ERROR(registry->Resolve(fmt::format("{}@{}", split.model, a.ref)).status());
    }
  }
  ENGAGE_RETURN_IF_ERROR(splits->Put(split));
  ENGAGE_ASSIGN_OR_RETURN(std::optional<TrafficSplit> stored, splits->Get(c.params[0]));
  JsonBody(c.res, Json{{"model", c.params[0]},
                       {"split", stored ? stored->ToJson() : Json()},
                       {"note", "served from the next `engage publish`"}});
  return Status::Ok();
}

Status Api::Impl::DeleteSplit(Call& c) {
  ENGAGE_RETURN_IF_ERROR(splits->Remove(c.params[0]));
  JsonBody(c.res, Json{{"model", c.params[0]},
                       {"split", Json()},
                       {"note",
                        "the published snapshot keeps serving its split until the next "
                        "`engage publish`"}});
  return Status::Ok();
}

Status Api::Impl::GetPrediction(Call& c) {
  const serve::Snapshot* snap = LookupSnapshot();
  if (!snap) return UnavailableError("no predictions published yet: run `engage publish`");
  int64_t version = 0;
  std::string_view v = QueryParam(c.req.query, "version");
  if (!v.empty()) {
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
    if (ec != std::errc() || ptr != v.data() + v.size() || version < 1) {
      return InvalidArgumentError(fmt::format("version must be a positive integer, got '{}'", v));
    }
  }
  c.res.body.clear();
  request_ledger.reads.fetch_add(1, std::memory_order_relaxed);
  ENGAGE_ASSIGN_OR_RETURN(bool found, AppendServed(*snap, c.params[0], version, &c.res.body));
  if (!found) {
    return NotFoundError(fmt::format("no prediction for customer '{}' in {} version {}",
                                     c.params[0], snap->info().model,
                                     version == 0 ? snap->info().default_version : version));
  }
  return Status::Ok();
}

Status Api::Impl::BatchGet(Call& c) {
  const serve::Snapshot* snap = LookupSnapshot();
  if (!snap) return UnavailableError("no predictions published yet: run `engage publish`");
  ENGAGE_ASSIGN_OR_RETURN(Json body, ParseBody(c.req));
  if (!body.contains("customer_ids") || !body["customer_ids"].is_array()) {
    return InvalidArgumentError("customer_ids must be an array of customer ids");
  }
  const Json& ids = body["customer_ids"];
  if (static_cast<int>(ids.size()) > options.max_batch_ids) {
    return InvalidArgumentError(fmt::format("at most {} customer_ids per request, got {}",
                                            options.max_batch_ids, ids.size()));
  }
  int64_t version = 0;
  if (body.contains("version")) {
    if (!body["version"].is_number_integer() || body["version"].get<int64_t>() < 1) {
      return InvalidArgumentError("version must be a positive integer");
    }
    version = body["version"].get<int64_t>();
  }
  request_ledger.reads.fetch_add(static_cast<int64_t>(ids.size()), std::memory_order_relaxed);
  std::string& out = c.res.body;
  out = "{\"predictions\":[";
  std::string missing;
  bool first = true;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string id;
    if (ids[i].is_string()) {
      id = ids[i].get<std::string>();
    } else if (ids[i].is_number_integer()) {
      id = std::to_string(ids[i].get<int64_t>());
    } else {
      return InvalidArgumentError(fmt::format("customer_ids[{}] is not a string or integer", i));
    }
    size_t mark = out.size();
    if (!first) out.push_back(',');
    ENGAGE_ASSIGN_OR_RETURN(bool found, AppendServed(*snap, id, version, &out));
    if (found) {
      first = false;
    } else {
      out.resize(mark);
      missing += missing.empty() ? "" : ",";
      AppendJson(&missing, Json(id));
    }
  }
  out += "],\"not_found\":[" + missing + "]}";
  return Status::Ok();
}

Status Api::Impl::Query(Call& c) {
  ENGAGE_ASSIGN_OR_RETURN(Json body, ParseBody(c.req));
  if (!body.contains("sql") || !body["sql"].is_string()) {
    return InvalidArgumentError("sql must be a string");
  }
  sql::QueryRequest q;
  q.sql = body["sql"].get<std::string>();
  q.dry_run = body.value("dry_run", false);
  if (body.contains("max_scan_bytes")) {
    if (!body["max_scan_bytes"].is_number_integer()) {
      return InvalidArgumentError("max_scan_bytes must be an integer");
    }
    q.max_scan_bytes = body["max_scan_bytes"].get<int64_t>();
  }
  int64_t asked_seconds = 0;  // the caller may ask for less time than the server allows
  if (body.contains("timeout_seconds")) {
    const Json& t = body["timeout_seconds"];
    if (!t.is_number_integer() || t.get<int64_t>() < 1) {
      return InvalidArgumentError("timeout_seconds must be a positive integer");
    }
    asked_seconds = t.get<int64_t>();
  }
  q.cancelled = c.req.cancelled;
  q.source = "api:" + c.principal->key_id;
  const Principal* p = c.principal;
  std::string* audited = &c.resource;
  // The tables are those DuckDB resolved from the plan, not names in the text.
  q.authorize = [p, audited](const std::set<std::string>& tables) -> Status {
    for (const auto& t : tables) {
      *audited += (audited->empty() ? "" : ",") + ("table/" + t);
    }
    for (const auto& t : tables) {
      std::string resource = "table/" + t;
      if (!p->Evaluate(actions::kQueryRun, resource).allowed()) {
        *audited = resource;
        return PermissionDeniedError(
            fmt::format("key {} may not run queries on {}", p->key_id, resource));
      }
    }
    return Status::Ok();
  };
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<app::ReadSide> reads, app->reads().Current());
  int64_t timeout_seconds =
      reads->config().query.timeout_seconds.value_or(sql::kDefaultServerQueryTimeoutSeconds);
  if (asked_seconds > 0 && (timeout_seconds == 0 || asked_seconds < timeout_seconds)) {
    timeout_seconds = asked_seconds;
  }
  q.timeout_ms = timeout_seconds * 1000;
  c.audit_success = true;
  auto r = reads->query().Run(q);
  if (!r.ok()) {
    // A query over the scan cutoff is the caller's to fix, not a rate limit.
    if (r.status().code() == StatusCode::kResourceExhausted) {
      return InvalidArgumentError(r.status().message());
    }
    // Cancelled: the client went away (nobody reads this) or the server is stopping (retry
    // against the next one).
    if (r.status().code() == StatusCode::kCancelled) {
      return UnavailableError("the query was stopped because the server is stopping; retry");
    }
    return r.status();
  }
  JsonBody(c.res, r->ToJson());
  return Status::Ok();
}

Status Api::Impl::ListModels(Call& c) {
  std::lock_guard<std::mutex> lock(registry_mu);
  ENGAGE_ASSIGN_OR_RETURN(auto versions, registry->List(""));
  // One entry per model the key may see: its versions, newest first.
  std::map<std::string, Json> visible;
  for (const auto& v : versions) {
    if (!c.principal->Evaluate(actions::kModelsList, "model/" + v.name).allowed()) continue;
    Json& m = visible[v.name];
    if (m.is_null()) m = Json{{"name", v.name}, {"aliases", Json::object()}, {"versions", 0}};
    m["versions"] = m["versions"].get<int64_t>() + 1;
    if (!m.contains("latest_version")) m["latest_version"] = v.version;
    for (const auto& a : v.aliases) m["aliases"][a] = v.version;
  }
  if (visible.empty() && !versions.empty()) {
    return PermissionDeniedError(fmt::format("key {} may not list any model", c.principal->key_id));
  }
  Json out = Json::array();
  for (auto& [name, m] : visible) out.push_back(std::move(m));
  JsonBody(c.res, Json{{"models", std::move(out)}});
  return Status::Ok();
}

Status Api::Impl::GetModel(Call& c) {
  std::lock_guard<std::mutex> lock(registry_mu);
  ENGAGE_ASSIGN_OR_RETURN(auto versions, registry->List(c.params[0]));
  if (versions.empty()) return NotFoundError(fmt::format("no model named '{}'", c.params[0]));
  Json out = Json::array();
  for (const auto& v : versions) {
    Json j = v.ToJson();
    j.erase("path");  // no server paths over HTTP
    out.push_back(std::move(j));
  }
  JsonBody(c.res, Json{{"name", c.params[0]}, {"versions", std::move(out)}});
  return Status::Ok();
}

Status Api::Impl::SetAlias(Call& c) {
  ENGAGE_ASSIGN_OR_RETURN(Json body, ParseBody(c.req));
  if (!body.contains("version") || !body["version"].is_number_integer()) {
    return InvalidArgumentError("version must be an integer");
  }
  int64_t version = body["version"].get<int64_t>();
  std::lock_guard<std::mutex> lock(registry_mu);
  ENGAGE_RETURN_IF_ERROR(registry->SetAlias(c.params[0], c.params[1], version));
  JsonBody(c.res, Json{{"name", c.params[0]}, {"alias", c.params[1]}, {"version", version}});
  return Status::Ok();
}

Status Api::Impl::Promote(Call& c) {
  ENGAGE_ASSIGN_OR_RETURN(Json body, ParseBody(c.req));
  if (!body.contains("version") || !body["version"].is_number_integer()) {
    return InvalidArgumentError("version must be an integer");
  }
  ENGAGE_ASSIGN_OR_RETURN(std::shared_ptr<app::ReadSide> reads, app->reads().Current());
  ml::PromotionGate gate = ml::PromotionGate::FromConfig(reads->config().models);
  gate.alias = body.value("alias", std::string("champion"));
  std::lock_guard<std::mutex> lock(registry_mu);
  ENGAGE_ASSIGN_OR_RETURN(ml::PromotionDecision d,
                          registry->Promote(c.params[0], body["version"].get<int64_t>(), gate));
  JsonBody(c.res, d.ToJson());
  return Status::Ok();
}

void Api::Impl::AddRoutes() {
  auto model_resource = [this](const Call&) {
    auto snap = CurrentSnapshot();
    return "model/" + (snap ? snap->info().model : std::string("engagement"));
  };
  auto named_model = [](const Call& c) { return "model/" + c.params[0]; };
  auto any = [](const Call&) { return std::string("*"); };

  Add({.method = "GET",
       .pattern = "/healthz",
       .operation_id = "health",
       .summary = "Liveness: the process answers",
       .auth = false,
       .resource = any,
       .handler = [](Call& c) {
         c.res.body = R"({"status":"ok"})";
         return Status::Ok();
       }});
  Add({.method = "GET",
       .pattern = "/readyz",
       .operation_id = "ready",
       .summary = "Readiness: predictions are published and loaded (503 until then)",
       .auth = false,
       .resource = any,
       .handler = [this](Call& c) -> Status {
         auto snap = CurrentSnapshot();
         if (!snap) return UnavailableError("no predictions published yet: run `engage publish`");
         JsonBody(c.res, Json{{"status", "ready"},
                              {"snapshot", snap->info().id},
                              {"model", snap->info().model},
                              {"default_version", snap->info().default_version}});
         return Status::Ok();
       }});
  Add({.method = "GET",
       .pattern = "/v1/customers/{id}/prediction",
       .operation_id = "getPrediction",
       .summary = "One customer's latest prediction (query parameter version= picks a version)",
       .action = std::string(actions::kPredictionsGet),
       .resource = model_resource,
       .handler = [this](Call& c) { return GetPrediction(c); }});
  Add({.method = "POST",
       .pattern = "/v1/predictions:batchGet",
       .operation_id = "batchGetPredictions",
       .summary = "Predictions of up to 1,000 customers",
       .action = std::string(actions::kPredictionsBatchGet),
       .request_schema =
           R"({"type":"object","required":["customer_ids"],"properties":{"customer_ids":{"type":"array","maxItems":1000,"items":{"type":["string","integer"]}},"version":{"type":"integer"}}})",
       .resource = model_resource,
       .handler = [this](Call& c) { return BatchGet(c); }});
  Add({.method = "POST",
       .pattern = "/v1/score",
       .operation_id = "score",
       .summary = "Score supplied features, or a customer's current features, with a chosen "
                  "model version (default: <model>@champion); with the top reasons",
       .action = std::string(actions::kPredictionsScore),
       .blocking = true,
       .request_schema =
           R"({"type":"object","properties":{"model":{"type":"string"},"features":{"type":"object"},"customer_id":{"type":["string","integer"]}}})",
       .resource =
           [this](const Call& c) {
             auto j = ParseJson(c.req.body, "body");
             auto snap = CurrentSnapshot();
             std::string ref = ScoreRef(j.ok() ? *j : Json(),
                                        snap ? snap->info().model : std::string("engagement"));
             return "model/" + ref.substr(0, ref.find('@'));
           },
       .handler = [this](Call& c) { return Score(c); }});
  Add({.method = "POST",
       .pattern = "/v1/query",
       .operation_id = "runQuery",
       .summary = "Read-only SQL over the lake, metered like `engage query --json`",
       .action = std::string(actions::kQueryRun),
       .blocking = true,
       .handler_authorizes = true,
       .request_schema =
           R"({"type":"object","required":["sql"],"properties":{"sql":{"type":"string"},"dry_run":{"type":"boolean"},"max_scan_bytes":{"type":"integer"},"timeout_seconds":{"type":"integer","minimum":1}}})",
       // Checked per table once the query is parsed (see Query).
       .resource = [](const Call&) { return std::string("table/*"); },
       .handler = [this](Call& c) { return Query(c); }});
  Add({.method = "GET",
       .pattern = "/v1/models",
       .operation_id = "listModels",
       .summary = "Models the key may list, with their aliases",
       .action = std::string(actions::kModelsList),
       .blocking = true,
       .handler_authorizes = true,
       .resource = any,
       .handler = [this](Call& c) { return ListModels(c); }});
  Add({.method = "GET",
       .pattern = "/v1/models/{name}/versions",
       .operation_id = "listModelVersions",
       .summary = "Every version of a model, newest first, with its card",
       .action = std::string(actions::kModelsGet),
       .blocking = true,
       .resource = named_model,
       .handler = [this](Call& c) { return GetModel(c); }});
  Add({.method = "PUT",
       .pattern = "/v1/models/{name}/aliases/{alias}",
       .operation_id = "setModelAlias",
       .summary = "Point an alias at a version (an operator's override, recorded)",
       .action = std::string(actions::kModelsSetAlias),
       .blocking = true,
       .write = true,
       .request_schema =
           R"({"type":"object","required":["version"],"properties":{"version":{"type":"integer"}}})",
       .resource = named_model,
       .handler = [this](Call& c) { return SetAlias(c); }});
  Add({.method = "POST",
       .pattern = "/v1/models/{name}:promote",
       .operation_id = "promoteModel",
       .summary = "Promote a version through the gate (beats the champion and the quality bar)",
       .action = std::string(actions::kModelsPromote),
       .blocking = true,
       .write = true,
       .request_schema =
           R"({"type":"object","required":["version"],"properties":{"version":{"type":"integer"},"alias":{"type":"string"}}})",
       .resource = named_model,
       .handler = [this](Call& c) { return Promote(c); }});
  Add({.method = "GET",
       .pattern = "/v1/models/{name}/split",
       .operation_id = "getTrafficSplit",
       .summary = "The model's A/B traffic split: as set, and as served by the published snapshot",
       .action = std::string(actions::kSplitsGet),
       .resource = named_model,
       .handler = [this](Call& c) { return GetSplit(c); }});
  Add({.method = "PUT",
       .pattern = "/v1/models/{name}/split",
       .operation_id = "putTrafficSplit",
       .summary = "Set the A/B traffic split (arms: name, registry ref, weight in percent)",
       .action = std::string(actions::kSplitsPut),
       .blocking = true,
       .write = true,
       .request_schema =
           R"({"type":"object","required":["arms"],"properties":{"arms":{"type":"array","minItems":2,"maxItems":10,"items":{"type":"object","required":["name","weight"],"properties":{"name":{"type":"string"},"ref":{"type":"string"},"weight":{"type":"number"}}}},"salt":{"type":"string"}}})",
       .resource = named_model,
       .handler = [this](Call& c) { return PutSplit(c); }});
  Add({.method = "DELETE",
       .pattern = "/v1/models/{name}/split",
       .operation_id = "deleteTrafficSplit",
       .summary = "Remove the A/B traffic split",
       .action = std::string(actions::kSplitsPut),
       .write = true,
       .resource = named_model,
       .handler = [this](Call& c) { return DeleteSplit(c); }});
  Add({.method = "POST",
       .pattern = "/v1/executions",
       .operation_id = "startExecution",
       .summary = "Start a registered state machine ({\"state_machine\": NAME}) or the shipped "
                  "pipeline ({\"pipeline\": \"engagement\"}); 202 with the execution, which runs "
                  "in the background, its steps bounded by the machine's role",
       .action = std::string(actions::kExecutionsStart),
       .blocking = true,
       .write = true,
       .request_schema =
           R"({"type":"object","properties":{"state_machine":{"type":"string","pattern":"^[A-Za-z0-9_-]{1,80}$"},"pipeline":{"type":"string","enum":["engagement"]},"name":{"type":"string","pattern":"^[A-Za-z0-9_-]{1,80}$"},"input":{"type":"object"}}})",
       .resource =
           [](const Call& c) {
             auto j = ParseJson(c.req.body, "body");
             std::string name;
             if (j.ok() && j->is_object()) {
               for (const char* key : {"pipeline", "state_machine"}) {
                 if (j->contains(key) && (*j)[key].is_string()) {
                   name = (*j)[key].get<std::string>();
                   break;
                 }
               }
             }
             return PipelineResource(name);
           },
       .handler = [this](Call& c) { return StartExecution(c); }});
  Add({.method = "GET",
       .pattern = "/v1/executions",
       .operation_id = "listExecutions",
       .summary = "Executions, newest first (?limit=, ?status=RUNNING|SUCCEEDED|FAILED|...)",
       .action = std::string(actions::kExecutionsList),
       .blocking = true,
       .handler_authorizes = true,
       .resource = any,
       .handler = [this](Call& c) { return ListExecutions(c); }});
  Add({.method = "GET",
       .pattern = "/v1/executions/{id}",
       .operation_id = "describeExecution",
       .summary = "One execution by id or name: status, input, output, error",
       .action = std::string(actions::kExecutionsGet),
       .blocking = true,
       .handler_authorizes = true,
       .resource = any,
       .handler = [this](Call& c) { return GetExecution(c, false); }});
  Add({.method = "GET",
       .pattern = "/v1/executions/{id}/history",
       .operation_id = "getExecutionHistory",
       .summary = "An execution's events, as Step Functions records them",
       .action = std::string(actions::kExecutionsGet),
       .blocking = true,
       .handler_authorizes = true,
       .resource = any,
       .handler = [this](Call& c) { return GetExecution(c, true); }});
  Add({.method = "POST",
       .pattern = "/v1/executions/{id}:stop",
       .operation_id = "stopExecution",
       .summary = "Stop a running execution (it ends ABORTED with an ExecutionAborted event)",
       .action = std::string(actions::kExecutionsStop),
       .blocking = true,
       .write = true,
       .handler_authorizes = true,
       .resource = any,
       .handler = [this](Call& c) { return StopExecution(c); }});
  auto named_machine = [](const Call& c) { return PipelineResource(c.params[0]); };
  Add({.method = "PUT",
       .pattern = "/v1/state-machines/{name}",
       .operation_id = "registerStateMachine",
       .summary = "Register (or replace) a state machine: its ASL definition (validated; 400 "
                  "with every problem) and the role policy bounding what its Task states may do",
       .action = std::string(actions::kStateMachinesRegister),
       .blocking = true,
       .write = true,
       .request_schema =
           R"({"type":"object","required":["definition","role"],"properties":{"definition":{"type":"object"},"role":{"type":"object","required":["Statement"]}}})",
       .resource = named_machine,
       .handler = [this](Call& c) { return PutStateMachine(c); }});
  Add({.method = "GET",
       .pattern = "/v1/state-machines",
       .operation_id = "listStateMachines",
       .summary = "Registered state machines the key may list: name, version, who registered it",
       .action = std::string(actions::kStateMachinesList),
       .blocking = true,
       .handler_authorizes = true,
       .resource = any,
       .handler = [this](Call& c) { return ListStateMachines(c); }});
  Add({.method = "GET",
       .pattern = "/v1/state-machines/{name}",
       .operation_id = "describeStateMachine",
       .summary = "One registered state machine with its definition and role",
       .action = std::string(actions::kStateMachinesGet),
       .blocking = true,
       .resource = named_machine,
       .handler = [this](Call& c) { return GetStateMachine(c); }});
  Add({.method = "GET",
       .pattern = "/metrics",
       .operation_id = "metrics",
       .summary = "Prometheus text: requests and latency per route, store and model figures",
       .action = std::string(actions::kMetricsGet),
       .resource = any,
       .handler = [this](Call& c) {
         c.res.content_type = "text/plain; version=0.0.4";
         c.res.body = Metrics();
         return Status::Ok();
       }});
  Add({.method = "GET",
       .pattern = "/v1/openapi.json",
       .operation_id = "openapi",
       .summary = "This API's OpenAPI 3.1 document",
       .resource = any,
       .handler = [this](Call& c) {
         c.res.body = DumpJson(openapi);
         return Status::Ok();
       }});
}

void Api::Impl::BuildOpenApi() {
  Json paths = Json::object();
  Json error_schema = Json::parse(
      R"({"type":"object","required":["error"],"properties":{"error":{"type":"object","required":["code","message"],"properties":{"code":{"type":"string"},"message":{"type":"string"}}}}})");
  for (const auto& r : routes) {
    Json op = {{"operationId", r.operation_id}, {"summary", r.summary}};
    if (!r.action.empty()) op["x-engage-action"] = r.action;
    Json params = Json::array();
    for (const auto& s : r.segments) {
      if (s.empty() || s.front() != '{') continue;
      params.push_back({{"name", s.substr(1, s.find('}') - 1)},
                        {"in", "path"},
                        {"required", true},
                        {"schema", {{"type", "string"}}}});
    }
    if (!params.empty()) op["parameters"] = params;
    if (!r.request_schema.empty()) {
      op["requestBody"] = {
          {"required", true},
          {"content", {{"application/json", {{"schema", Json::parse(r.request_schema)}}}}}};
    }
    Json responses = {{"200", {{"description", "OK"}}}};
    auto err = [&](const char* code, const char* what) {
      responses[code] = {{"description", what},
                         {"content", {{"application/json", {{"schema", error_schema}}}}}};
    };
    if (r.auth) {
      op["security"] = Json::array({Json{{"bearer", Json::array()}}});
      err("401", "No valid API key");
      err("403", "The key's policy does not allow this");
      err("429", "The key's rate limit; see Retry-After");
    } else {
      op["security"] = Json::array();
    }
    if (!r.request_schema.empty() || !params.empty()) err("400", "Invalid request");
    err("503", "Not ready or overloaded");
    op["responses"] = std::move(responses);
    std::string method = r.method;
    for (char& ch : method) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    paths[r.pattern][method] = std::move(op);
  }
  openapi = {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "Engage"},
        {"version", "1"},
        {"description", "Customer engagement predictions, models and metered SQL over the lake."}}},
      {"paths", std::move(paths)},
      {"components",
       {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}}};
}

// ---------------------------------------------------------------------------------------------

Api::Api(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Api::~Api() {
  if (impl_ && impl_->app) impl_->FlushRequests();
  if (impl_ && impl_->audit) (void)impl_->audit->Flush();
  if (impl_ && impl_->exposures) (void)impl_->exposures->Flush();
}

Result<std::unique_ptr<Api>> Api::Open(app::App& app, ApiOptions options) {
  const HomePaths& home = app.home();
  const Clock& clock = app.clock();
  auto impl = std::make_unique<Impl>();
  impl->app = &app;
  impl->home = home;
  impl->options = options;
  impl->clock = &clock;
  ENGAGE_ASSIGN_OR_RETURN(impl->keys, KeyStore::Open(home.meta_db(), clock));
  ENGAGE_ASSIGN_OR_RETURN(impl->audit, AuditLog::Open(home.meta_db(), clock));
  ENGAGE_ASSIGN_OR_RETURN(impl->registry, ml::ModelRegistry::Open(home, clock));
  impl->limiter = std::make_unique<RateLimiter>(options.rate);
  ENGAGE_ASSIGN_OR_RETURN(impl->splits, SplitStore::Open(home.meta_db(), clock));
  ENGAGE_ASSIGN_OR_RETURN(impl->executions, flow::ExecutionStore::Open(home.meta_db(), clock));
  ENGAGE_ASSIGN_OR_RETURN(impl->machines, flow::StateMachineRegistry::Open(home.meta_db(), clock));
  {
    std::error_code ec;
    std::string resolved = std::filesystem::weakly_canonical(home.root, ec).string();
    std::string absolute = std::filesystem::absolute(home.root, ec).string();
    for (const std::string& root : {home.root, absolute, resolved}) {
      std::string quoted = DumpJson(Json(root));  // as it appears inside JSON strings
      std::string spelled = quoted.substr(1, quoted.size() - 2);
      while (spelled.size() > 1 && spelled.back() == '/') spelled.pop_back();
      if (std::find(impl->home_spellings.begin(), impl->home_spellings.end(), spelled) ==
          impl->home_spellings.end()) {
        impl->home_spellings.push_back(spelled);
      }
    }
    // Longest first, so a prefix does not break a longer spelling.
    std::sort(impl->home_spellings.begin(), impl->home_spellings.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  }
  ENGAGE_ASSIGN_OR_RETURN(impl->exposures, ExposureLog::Open(home.meta_db(), clock));
  ENGAGE_RETURN_IF_ERROR(app.serving().Open());
  impl->AddRoutes();
  impl->BuildOpenApi();
  return std::unique_ptr<Api>(new Api(std::move(impl)));
}

void Api::Refresh() {
  Impl& s = *impl_;
  Status saved = s.keys->SaveLastUsed();
  if (!saved.ok()) spdlog::warn("api keys: {}", saved.ToString());
  s.app->serving().Refresh();
}

void Api::SetServerStats(const HttpServerStats* stats) { impl_->server_stats = stats; }

const Json& Api::OpenApi() const { return impl_->openapi; }

bool Api::IsBlocking(const HttpRequest& req) const {
  std::vector<std::string> params;
  bool path_matched = false;
  std::string allow;
  Route* r = impl_->Match(req, &params, &path_matched, &allow);
  return r != nullptr && r->blocking;
}

void Api::Handle(const HttpRequest& req, HttpResponse& res) {
  Impl& s = *impl_;
  int64_t t0 = s.clock->MonotonicMicros();
  Call c{req, res, {}, nullptr};
  bool path_matched = false;
  std::string allow;
  Route* r = s.Match(req, &c.params, &path_matched, &allow);
  if (r == nullptr) {
    if (path_matched) {
      Error(res, InvalidArgumentError(
                     fmt::format("{} is not allowed on {}; use {}", req.method, req.path, allow)));
      res.status = 405;
      res.headers.emplace_back("Allow", allow);
    } else {
      Error(res, NotFoundError(fmt::format("no route {} {}", req.method, req.path)));
    }
    s.unmatched.Record(res.status, s.clock->MonotonicMicros() - t0);
    return;
  }
  std::optional<Principal> principal;
  std::string resource;
  Status outcome = [&]() -> Status {
    if (!r->auth) return Status::Ok();
    auto p = s.keys->Authenticate(req.authorization);
    if (!p.ok()) {
      res.headers.emplace_back("WWW-Authenticate", "Bearer");
      s.Audit(req, nullptr, *r, "", false, p.status(), 401, Json::object());
      return p.status();
    }
    principal = std::move(*p);
    c.principal = &*principal;
    RateDecision rate = s.limiter->Take(principal->key_id, t0);
    if (!rate.allowed) {
      res.headers.emplace_back("Retry-After",
                               std::to_string(std::max<int64_t>(
                                   1, static_cast<int64_t>(std::ceil(rate.retry_after_seconds)))));
      return ResourceExhaustedError(fmt::format("key {} is over its rate limit of {} requests/s",
                                                principal->key_id,
                                                s.limiter->options().rate_per_second));
    }
    // Before anything reads the body (a route's resource may come from it, and handlers that
    // authorize per resource parse it first): a key that no statement allows this action on
    // any resource is denied here.
    if (!r->action.empty() && !MayEverAllow(*principal->policy, r->action)) {
      Status denied = PermissionDeniedError(fmt::format(
          "key {} may not {} on any resource (implicit-deny)", principal->key_id, r->action));
      s.Audit(req, c.principal, *r, "", false, denied, 403,
              Json{{"decision", "implicit-deny"}, {"statement", -1}});
      return denied;
    }
    if (!r->action.empty() && !r->handler_authorizes) {
      resource = r->resource(c);
      Decision d = principal->Evaluate(r->action, resource);
      if (!d.allowed()) {
        Status denied = PermissionDeniedError(fmt::format(
            "key {} may not {} on {} ({})", principal->key_id, r->action, resource, d.name()));
        s.Audit(req, c.principal, *r, resource, false, denied, 403,
                Json{{"decision", std::string(d.name())}, {"statement", d.statement}});
        return denied;
      }
    }
    return Status::Ok();
  }();
  if (outcome.ok()) {
    try {
      outcome = r->handler(c);
    } catch (const std::exception& e) {
      outcome = InternalError(e.what());
    }
    if (!c.resource.empty()) resource = c.resource;
    if (!outcome.ok() && outcome.code() == StatusCode::kPermissionDenied) {
      s.Audit(req, c.principal, *r, resource, false, outcome, 403, Json::object());
    } else if (r->write || (c.audit_success && outcome.ok())) {
      // The policy allowed it: `allowed` is the decision; a failure shows in its code and status.
      s.Audit(req, c.principal, *r, resource, /*allowed=*/true, outcome,
              HttpStatusFor(outcome.code()), Json::object());
    }
  }
  if (!outcome.ok()) Error(res, outcome);
  const int64_t micros = s.clock->MonotonicMicros() - t0;
  r->metrics->Record(res.status, micros);
  s.CountRequest(micros);
}

void Api::Impl::CountRequest(int64_t micros) {
  RequestLedger& l = request_ledger;
  l.requests.fetch_add(1, std::memory_order_relaxed);
  l.micros.fetch_add(micros, std::memory_order_relaxed);
  const int64_t now = clock->MonotonicMicros();
  int64_t last = l.last_flush.load(std::memory_order_relaxed);
  if (last == 0) {
    l.last_flush.compare_exchange_strong(last, now);
  } else if (now - last >= RequestLedger::kFlushMicros &&
             l.last_flush.compare_exchange_strong(last, now)) {
    FlushRequests();  // one thread a minute
  }
}

void Api::Impl::FlushRequests() {
  RequestLedger& l = request_ledger;
  std::lock_guard lock(l.flush_mu);
  const int64_t requests = l.requests.exchange(0);
  const int64_t micros = l.micros.exchange(0);
  const int64_t reads = l.reads.exchange(0);
  if (requests == 0) return;
  const Config& config = app->config();
  lake::LedgerEntry e;
  e.kind = "requests";
  e.name = "http";
  e.usage.wall_seconds = static_cast<double>(micros) / 1e6;
  Json lambda, dynamo;
  e.cloud_usd = monitor::LambdaUsd(config.prices, requests, e.usage.wall_seconds, &lambda) +
                monitor::DynamoUsd(config.prices, reads, 0, &dynamo);
  e.detail = Json{{"service", "lambda+dynamodb"},
                  {"requests", requests},
                  {"lambda", std::move(lambda)},
                  {"dynamodb", std::move(dynamo)}};
  app->monitoring().Record(config, std::move(e));
}

std::string Api::MetricsText() const { return impl_->Metrics(); }

std::string Api::Impl::Metrics() {
  const Impl& s = *this;
  std::string out;
  auto line = [&out](std::string_view text) {
    out.append(text);
    out.push_back('\n');
  };
  line("# HELP engage_http_requests_total HTTP requests by route and status.");
  line("# TYPE engage_http_requests_total counter");
  auto requests = [&](std::string_view route, const RouteMetrics& m) {
    for (size_t i = 0; i <= kStatuses.size(); ++i) {
      int64_t n = m.ByStatus(i);
      if (n == 0) continue;
      std::string code = i < kStatuses.size() ? std::to_string(kStatuses[i]) : "other";
      out += fmt::format("engage_http_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", route, code,
                         n);
    }
  };
  for (const auto& r : s.routes) requests(r.method + " " + r.pattern, *r.metrics);
  requests("unmatched", s.unmatched);
  line("# HELP engage_http_request_duration_seconds Time to answer, by route.");
  line("# TYPE engage_http_request_duration_seconds histogram");
  for (const auto& r : s.routes) {
    const RouteMetrics& m = *r.metrics;
    std::string route = r.method + " " + r.pattern;
    int64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += m.Bucket(i);
      out +=
          fmt::format("engage_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n",
                      route, kBuckets[i], cumulative);
    }
    cumulative += m.Bucket(kBuckets.size());
    out +=
        fmt::format("engage_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n",
                    route, cumulative);
    out += fmt::format("engage_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route,
                       static_cast<double>(m.MicrosSum()) / 1e6);
    out += fmt::format("engage_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", route,
                       m.Count());
  }
  auto snap = CurrentSnapshot();
  line("# HELP engage_store_bytes Size of the published prediction snapshot on disk.");
  line("# TYPE engage_store_bytes gauge");
  out += fmt::format("engage_store_bytes {}\n", snap ? snap->info().bytes : 0);
  line("# HELP engage_store_customers Customers with a prediction, per served model version.");
  line("# TYPE engage_store_customers gauge");
  line("# HELP engage_model_version_info Model versions served (default=1 for the default).");
  line("# TYPE engage_model_version_info gauge");
  if (snap) {
    for (const auto& v : snap->info().versions) {
      out += fmt::format("engage_store_customers{{model=\"{}\",version=\"{}\"}} {}\n",
                         snap->info().model, v.version, v.customers);
      out += fmt::format(
          "engage_model_version_info{{model=\"{}\",version=\"{}\",default=\"{}\"}} 1\n",
          snap->info().model, v.version, v.version == snap->info().default_version ? 1 : 0);
    }
  }
  if (s.server_stats != nullptr) {
    const HttpServerStats& st = *s.server_stats;
    line("# TYPE engage_http_connections_open gauge");
    out += fmt::format("engage_http_connections_open {}\n", st.connections_open.load());
    line("# TYPE engage_http_connections_total counter");
    out += fmt::format("engage_http_connections_total {}\n", st.connections_total.load());
    line("# TYPE engage_http_rejected_total counter");
    out += fmt::format("engage_http_rejected_total{{reason=\"overload\"}} {}\n",
                       st.rejected_overload.load());
    out += fmt::format("engage_http_rejected_total{{reason=\"bad_request\"}} {}\n",
                       st.rejected_bad_request.load());
  }
  return out;
}

}  // namespace engage::server
