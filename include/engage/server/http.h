// A small HTTP/1.1 server on Boost.Asio with Boost.Beast's request parser: keep-alive and
// pipelining, one event loop per worker thread (one listener deals accepted connections out to
// the loops in turn), request size and time limits, a connection cap, slow handlers moved off
// the event loops, and a graceful stop.
//
// The hot path allocates nothing once a connection is warm: each connection reuses one request,
// one response and its buffers; responses are serialised by hand into one write; timeouts are
// deadlines a per-worker sweep checks four times a second (no timer operation per request).
//
//   HttpServer server(options, [](const HttpRequest& req, HttpResponse& res) {
//     res.body = "{\"ok\":true}";
//   });
//   ENGAGE_RETURN_IF_ERROR(server.Start());   // binds; server.port() is the real port
//   server.Run();                             // until Stop() (e.g. from a SIGTERM handler)
//
// Handlers run on a worker's event loop, so they must not block; a request for which
// `is_blocking(req)` is true runs on a separate pool of `blocking_threads` instead, at most
// `max_blocking_queue` waiting (beyond that: 503). Stop() stops accepting, lets requests in
// flight finish and be answered (with Connection: close), closes idle connections, and makes
// Run() return; requests still running after `drain_timeout_ms` are abandoned.
//
// Thread-safety: Start/Run/Stop may be called from different threads; Stop is idempotent and
// safe from a signal-handling thread. The handler is called concurrently from several threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/status.h"

namespace engage::server {

// Request headers as received, kept in one buffer that a connection reuses from request to
// request (no allocation per header once warm).
class HeaderList {
 public:
  void Add(std::string_view name, std::string_view value);
  // The value of the first header called `name` (case-insensitive); empty when absent.
  std::string_view Find(std::string_view name) const;
  size_t size() const { return spans_.size(); }
  void Clear() {
    bytes_.clear();
    spans_.clear();
  }

 private:
  struct Span {
    uint32_t name_at, name_size, value_at, value_size;
  };
  std::string bytes_;
  std::vector<Span> spans_;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, not percent-decoded
  std::string query;   // after '?', raw
  std::string body;
  std::string authorization;  // the Authorization header, if any
  std::string content_type;
  std::string remote;  // peer address
  int version = 11;    // 10 for HTTP/1.0, 11 for HTTP/1.1
  HeaderList headers;
  // For a request handled on the blocking pool: true once the client has gone away or the
  // server is stopping, so a long handler (a query) can stop early. Empty otherwise.
  std::function<bool()> cancelled;
  // Value of a header (case-insensitive name); empty when absent.
  std::string_view Header(std::string_view name) const { return headers.Find(name); }
  // Empties the request for the next one on the connection, keeping memory and `remote`.
  void Clear();
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

struct HttpServerOptions {
  std::string bind = "127.0.0.1";
  int port = 8080;  // 0 = any free port
  int threads = 0;  // event loops; 0 = one per core
  int blocking_threads = 2;
  int max_blocking_queue = 256;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  // Deadlines are absolute: bytes trickled in extend none of them.
  int request_timeout_ms = 10000;       // to receive a whole request, from its first byte
  int idle_timeout_ms = 60000;          // for the next request's first byte, from the last answer
  int linger_timeout_ms = 2000;         // draining input after an answer with Connection: close
  int64_t max_connection_ms = 3600000;  // a connection's whole life (0: unbounded); then close
  int max_connections = 10000;          // beyond: 503 and close
  int drain_timeout_ms = 30000;
  std::string server_name = "engage";
};

// Counters the server keeps itself (the handler keeps per-route figures).
struct HttpServerStats {
  std::atomic<int64_t> connections_open{0};
  std::atomic<int64_t> connections_total{0};
  std::atomic<int64_t> requests_total{0};
  std::atomic<int64_t> rejected_overload{0};     // 503 for too many connections or a full queue
  std::atomic<int64_t> rejected_bad_request{0};  // malformed, too large, too slow
  std::atomic<int64_t> blocking_queued{0};
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler,
             std::function<bool(const HttpRequest&)> is_blocking = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. kInvalidArgument for a bad address, kUnavailable when the port is taken.
  Status Start();
  // The bound port (after Start).
  int port() const;
  // Serves until Stop(); returns once every worker has drained.
  void Run();
  void Stop();
  const HttpServerStats& stats() const;

  struct Impl;  // defined in http.cc

 private:
  std::unique_ptr<Impl> impl_;
};

// What ParseRequestStream made of a connection's bytes.
struct RequestStreamResult {
  int64_t requests = 0;     // complete requests handed to the callback
  int error_status = 0;     // 400 or 413 when the server would refuse a request (and close)
  std::string error;        // the refusal's JSON body
  bool closed = false;      // the server would close after the last request (refused, or asked)
  bool incomplete = false;  // the bytes end inside a request
};

// Parses `bytes` as everything a client sent on one connection, with the parser, limits and
// framing checks the server uses, calling `on_request` for each complete request in order.
// Stops where the server would close the connection. No sockets: for tests and fuzzing.
RequestStreamResult ParseRequestStream(std::string_view bytes, const HttpServerOptions& options,
                                       const std::function<void(const HttpRequest&)>& on_request);

// The reason phrase of a status code ("Not Found").
std::string_view HttpReason(int status);

}  // namespace engage::server
