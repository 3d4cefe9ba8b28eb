#include "engage/serve/http.h"

#include <fmt/format.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "engage/core/log.h"

namespace engage::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
// Beast (Boost 1.74) has its own string_view.
std::string_view Std(beast::string_view s) { return {s.data(), s.size()}; }
beast::string_view Beast(std::string_view s) { return {s.data(), s.size()}; }
}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(Beast(k), Beast(name))) return v;
  }
  return {};
}

std::string_view HttpReason(int status) {
  return Std(http::obsolete_reason(static_cast<http::status>(status)));
}

namespace {

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

class Session;

struct Worker {
  asio::io_context ioc{1};
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer drain_check{ioc};
  std::chrono::steady_clock::time_point drain_deadline;
  std::list<std::weak_ptr<Session>> sessions;  // touched only on this worker's thread
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions opts;
  HttpHandler handler;
  std::function<bool(const HttpRequest&)> is_blocking;
  HttpServerStats stats;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<asio::thread_pool> pool;
  std::atomic<bool> stopping{false};
  int port = 0;
  std::once_flag stop_once;

  void Accept(Worker& w);
  void StopWorker(Worker& w);
  void CheckDrained(Worker& w);
};

namespace {

void Respond(HttpResponse& res, int status, std::string_view code, std::string_view message) {
  res.status = status;
  res.content_type = "application/json";
  res.body = fmt::format(R"({{"error":{{"code":"{}","message":"{}"}}}})", code, message);
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& srv) : stream_(std::move(socket)), srv_(srv) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", ep.address().to_string(), ep.port());
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }
  ~Session() { srv_.stats.connections_open.fetch_sub(1, std::memory_order_relaxed); }

  void Start() { DoRead(); }

  // On stop: a connection waiting for its next request is closed now; one with a request in
  // flight closes after answering it.
  void StopIfIdle() {
    if (idle_) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.socket().close(ec);
    }
  }

  // Refuses the connection: 503 and close (too many connections).
  void Refuse() {
    HttpResponse r;
    Respond(r, 503, "UNAVAILABLE", "too many connections; retry later");
    r.headers.emplace_back("Retry-After", "1");
    Write(std::move(r), false);
  }

 private:
  void DoRead() {
    if (srv_.stopping.load(std::memory_order_relaxed)) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(srv_.opts.max_header_bytes));
    parser_->body_limit(srv_.opts.max_body_bytes);
    idle_ = buffer_.size() == 0;
    stream_.expires_after(std::chrono::milliseconds(idle_ ? srv_.opts.idle_timeout_ms
                                                          : srv_.opts.request_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    idle_ = false;
    if (ec) {
      if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
          ec == asio::error::connection_reset || ec == asio::error::eof ||
          ec == beast::error::timeout) {
        return Close();
      }
      srv_.stats.rejected_bad_request.fetch_add(1, std::memory_order_relaxed);
      HttpResponse r;
      if (ec == http::error::body_limit) {
        Respond(r, 413, "PAYLOAD_TOO_LARGE",
                fmt::format("the request body exceeds {} bytes", srv_.opts.max_body_bytes));
      } else if (ec == http::error::header_limit) {
        Respond(r, 413, "PAYLOAD_TOO_LARGE",
                fmt::format("the request headers exceed {} bytes", srv_.opts.max_header_bytes));
      } else {
        Respond(r, 400, "INVALID_ARGUMENT",
                fmt::format("malformed HTTP request: {}", ec.message()));
      }
      return Write(std::move(r), false);
    }
    srv_.stats.requests_total.fetch_add(1, std::memory_order_relaxed);
    auto& msg = parser_->get();
    auto req = std::make_shared<HttpRequest>();
    req->method = std::string(Std(msg.method_string()));
    std::string_view target = Std(msg.target());
    size_t q = target.find('?');
    req->path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req->query = std::string(target.substr(q + 1));
    for (const auto& f : msg) {
      std::string_view name = Std(f.name_string());
      if (f.name() == http::field::authorization) {
        req->authorization = std::string(Std(f.value()));
      } else if (f.name() == http::field::content_type) {
        req->content_type = std::string(Std(f.value()));
      }
      req->headers.emplace_back(std::string(name), std::string(Std(f.value())));
    }
    req->body = std::move(msg.body());
    req->remote = remote_;
    bool keep_alive = msg.keep_alive();

    if (srv_.is_blocking && srv_.is_blocking(*req)) {
      if (srv_.stats.blocking_queued.load(std::memory_order_relaxed) >=
          srv_.opts.max_blocking_queue) {
        srv_.stats.rejected_overload.fetch_add(1, std::memory_order_relaxed);
        HttpResponse r;
        Respond(r, 503, "UNAVAILABLE", "the server is busy; retry later");
        r.headers.emplace_back("Retry-After", "1");
        return Write(std::move(r), keep_alive);
      }
      srv_.stats.blocking_queued.fetch_add(1, std::memory_order_relaxed);
      asio::post(*srv_.pool, [self = shared_from_this(), req, keep_alive] {
        auto res = std::make_shared<HttpResponse>();
        self->Handle(*req, *res);
        self->srv_.stats.blocking_queued.fetch_sub(1, std::memory_order_relaxed);
        asio::post(self->stream_.get_executor(),
                   [self, res, keep_alive] { self->Write(std::move(*res), keep_alive); });
      });
      return;
    }
    HttpResponse res;
    Handle(*req, res);
    Write(std::move(res), keep_alive);
  }

  void Handle(const HttpRequest& req, HttpResponse& res) {
    try {
      srv_.handler(req, res);
    } catch (const std::exception& e) {
      res = HttpResponse();
      Respond(res, 500, "INTERNAL", "internal error");
      spdlog::error("handler for {} {} threw: {}", req.method, req.path, e.what());
    }
  }

  void Write(HttpResponse&& r, bool keep_alive) {
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(r.status));
    res_.set(http::field::server, srv_.opts.server_name);
    res_.set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res_.set(k, v);
    res_.body() = std::move(r.body);
    res_.keep_alive(keep_alive && !srv_.stopping.load(std::memory_order_relaxed));
    res_.prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(srv_.opts.request_timeout_ms));
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec || !res_.keep_alive()) return Close();
    DoRead();
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  HttpServer::Impl& srv_;
  std::string remote_;
  bool idle_ = true;
};

}  // namespace

void HttpServer::Impl::Accept(Worker& w) {
  w.acceptor->async_accept(w.ioc, [this, &w](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !w.acceptor->is_open()) return;
      // e.g. EMFILE: keep accepting after a pause rather than spinning.
      auto timer = std::make_shared<asio::steady_timer>(w.ioc, std::chrono::milliseconds(50));
      timer->async_wait([this, &w, timer](beast::error_code) {
        if (!stopping) Accept(w);
      });
      return;
    }
    stats.connections_total.fetch_add(1, std::memory_order_relaxed);
    int64_t open = stats.connections_open.fetch_add(1, std::memory_order_relaxed) + 1;
    auto session = std::make_shared<Session>(std::move(socket), *this);
    if (open > opts.max_connections) {
      stats.rejected_overload.fetch_add(1, std::memory_order_relaxed);
      session->Refuse();
    } else {
      w.sessions.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
      w.sessions.push_back(session);
      session->Start();
    }
    Accept(w);
  });
}

void HttpServer::Impl::StopWorker(Worker& w) {
  beast::error_code ec;
  if (w.acceptor) w.acceptor->close(ec);
  for (auto& weak : w.sessions) {
    if (auto sp = weak.lock()) sp->StopIfIdle();
  }
  w.drain_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.drain_timeout_ms);
  CheckDrained(w);
}

// Stops the worker's loop once its connections are gone (answered and closed), or at the
// drain deadline.
void HttpServer::Impl::CheckDrained(Worker& w) {
  bool busy = false;
  for (auto& weak : w.sessions) busy = busy || !weak.expired();
  if (!busy || std::chrono::steady_clock::now() >= w.drain_deadline) {
    w.ioc.stop();
    return;
  }
  w.drain_check.expires_after(std::chrono::milliseconds(10));
  w.drain_check.async_wait([this, &w](beast::error_code) { CheckDrained(w); });
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler,
                       std::function<bool(const HttpRequest&)> is_blocking)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  impl_->handler = std::move(handler);
  impl_->is_blocking = std::move(is_blocking);
}

HttpServer::~HttpServer() {
  Stop();
  if (impl_->pool) impl_->pool->join();
}

Status HttpServer::Start() {
  Impl& s = *impl_;
  int n = s.opts.threads > 0 ? s.opts.threads
                             : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  beast::error_code ec;
  auto address = asio::ip::make_address(s.opts.bind, ec);
  if (ec) {
    return InvalidArgumentError(
        fmt::format("bad bind address '{}': {}", s.opts.bind, ec.message()));
  }
  int port = s.opts.port;
  if (port != 0) {
    // The listeners share the port through SO_REUSEPORT, which would also let a second server
    // of the same user join it silently: a plain bind first finds the port taken.
    asio::io_context probe_ioc;
    tcp::acceptor probe(probe_ioc);
    tcp::endpoint ep(address, static_cast<uint16_t>(port));
    probe.open(ep.protocol(), ec);
    if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(ep, ec);
    if (ec) {
      return UnavailableError(
          fmt::format("cannot listen on {}:{}: {}", s.opts.bind, port, ec.message()));
    }
    probe.close(ec);
  }
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    tcp::endpoint ep(address, static_cast<uint16_t>(port));
    w->acceptor.emplace(w->ioc);
    w->acceptor->open(ep.protocol(), ec);
    if (!ec) w->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) w->acceptor->set_option(ReusePort(true), ec);
    if (!ec) w->acceptor->bind(ep, ec);
    if (!ec) w->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      s.workers.clear();
      return UnavailableError(
          fmt::format("cannot listen on {}:{}: {}", s.opts.bind, port, ec.message()));
    }
    // With port 0 the first listener picks the port; the others share it.
    if (i == 0) port = w->acceptor->local_endpoint().port();
    s.workers.push_back(std::move(w));
  }
  s.port = port;
  s.pool = std::make_unique<asio::thread_pool>(std::max(1, s.opts.blocking_threads));
  for (auto& w : s.workers) s.Accept(*w);
  return Status::Ok();
}

int HttpServer::port() const { return impl_->port; }

const HttpServerStats& HttpServer::stats() const { return impl_->stats; }

void HttpServer::Run() {
  Impl& s = *impl_;
  std::vector<std::thread> threads;
  for (size_t i = 1; i < s.workers.size(); ++i) {
    threads.emplace_back([w = s.workers[i].get()] { w->ioc.run(); });
  }
  if (!s.workers.empty()) s.workers[0]->ioc.run();
  for (auto& t : threads) t.join();
}

void HttpServer::Stop() {
  Impl& s = *impl_;
  std::call_once(s.stop_once, [&s] {
    s.stopping = true;
    for (auto& w : s.workers) {
      Worker* wp = w.get();
      asio::post(wp->ioc, [&s, wp] { s.StopWorker(*wp); });
    }
  });
}

}  // namespace engage::serve
