// The HTTP API of `engage serve`: routes, authentication and authorisation, audit, rate limits,
// metrics and the OpenAPI document, on top of HttpServer (transport) and the library calls the
// CLI also uses, through the application layer (app::App: executions, query engine, registry).
//
//   ENGAGE_ASSIGN_OR_RETURN(auto app, app::App::Open(home));
//   ENGAGE_ASSIGN_OR_RETURN(auto api, Api::Open(*app, {}));
//   HttpServer server(opts, [&](auto& req, auto& res) { api->Handle(req, res); },
//                     [&](auto& req) { return api->IsBlocking(req); });
//
// Every route but /healthz and /readyz needs `Authorization: Bearer <key>` (401 without a valid
// key); the key's policy must allow the route's action on its resource (403 otherwise, deny by
// default); each key has a token bucket (429 with Retry-After). Denied requests and every write
// are recorded in the audit log. Errors are `{"error": {"code", "message"}}` with the status
// HttpStatusFor gives the code.
//
// Thread-safety: Handle, IsBlocking and MetricsText may be called concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engage/core/clock.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/serve/auth.h"
#include "engage/server/http.h"

namespace engage::app {
class App;
}  // namespace engage::app

namespace engage::server {

struct ApiOptions {
  serve::RateLimitOptions rate{.rate_per_second = 1000, .burst = 2000};
  int max_batch_ids = 1000;         // POST /v1/predictions:batchGet
  int64_t max_result_rows = 10000;  // rows POST /v1/query returns
};

class Api {
 public:
  // Opens the prediction store (serving may start before anything is published: /readyz says
  // 503 until then), the key store and the audit log of the app's home. `app` outlives the Api;
  // executions started over HTTP run on its execution runner.
  static Result<std::unique_ptr<Api>> Open(app::App& app, ApiOptions options);
  ~Api();

  void Handle(const HttpRequest& req, HttpResponse& res);
  // Whether the request's route may block (SQL, the registry): it then runs off the event loops.
  bool IsBlocking(const HttpRequest& req) const;
  // Switches to a newly published snapshot, if any (call now and then).
  void Refresh();
  // Server-level figures for /metrics (optional).
  void SetServerStats(const HttpServerStats* stats);
  // Prometheus text exposition of the request counters, latency histograms and store figures.
  std::string MetricsText() const;
  // The OpenAPI 3.1 document of the routes (the one GET /v1/openapi.json serves).
  const Json& OpenApi() const;

  struct Impl;  // defined in api.cc

 private:
  explicit Api(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace engage::server
