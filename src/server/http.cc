#include "engage/server/http.h"

#include <fmt/format.h>
#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <chrono>
#include <ctime>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "engage/core/log.h"

namespace engage::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
// Beast (Boost 1.74) has its own string_view.
std::string_view Std(beast::string_view s) { return {s.data(), s.size()}; }
beast::string_view Beast(std::string_view s) { return {s.data(), s.size()}; }
}  // namespace

void HeaderList::Add(std::string_view name, std::string_view value) {
  Span s;
  s.name_at = static_cast<uint32_t>(bytes_.size());
  s.name_size = static_cast<uint32_t>(name.size());
  bytes_.append(name);
  s.value_at = static_cast<uint32_t>(bytes_.size());
  s.value_size = static_cast<uint32_t>(value.size());
  bytes_.append(value);
  spans_.push_back(s);
}

std::string_view HeaderList::Find(std::string_view name) const {
  std::string_view all = bytes_;
  for (const Span& s : spans_) {
    if (beast::iequals(Beast(all.substr(s.name_at, s.name_size)), Beast(name))) {
      return all.substr(s.value_at, s.value_size);
    }
  }
  return {};
}

void HttpRequest::Clear() {
  method.clear();
  path.clear();
  query.clear();
  body.clear();
  authorization.clear();
  content_type.clear();
  version = 11;
  headers.Clear();
}

std::string_view HttpReason(int status) {
  return Std(http::obsolete_reason(static_cast<http::status>(status)));
}

namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr int kSweepMillis = 250;               // how often deadlines are checked
constexpr int kDrainSweepMillis = 10;           // ... while stopping
constexpr size_t kMaxPipelinedOut = 64 * 1024;  // answers buffered before writing
constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class Session;

struct Worker {
  asio::io_context ioc{1};
  std::optional<tcp::acceptor> acceptor;  // the first worker's only
  asio::steady_timer sweep{ioc};
  bool draining = false;
  int64_t drain_deadline_ms = 0;
  // Touched only on this worker's thread.
  std::list<std::weak_ptr<Session>> sessions;
  int64_t now_ms = SteadyMillis();  // as of the last sweep
  std::time_t date_second = -1;
  std::string date_header;  // "Date: Wed, 02 Dec 2026 12:36:47 GMT\r\n"

  // Updates the coarse clock and the Date header.
  void Tick() {
    now_ms = SteadyMillis();
    std::time_t t = std::time(nullptr);
    if (t == date_second) return;
    date_second = t;
    std::tm tm{};
    gmtime_r(&t, &tm);
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    date_header = fmt::format("Date: {}, {:02} {} {} {:02}:{:02}:{:02} GMT\r\n", kDays[tm.tm_wday],
                              tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                              tm.tm_min, tm.tm_sec);
  }
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

  size_t next_worker = 0;  // the next to get a connection; the accepting worker's thread only

  void Accept();
  void StopWorker(Worker& w);
  void Sweep(Worker& w);
};

namespace {

void ErrorResponse(HttpResponse& res, int status, std::string_view code, std::string_view message) {
  res.status = status;
  res.content_type = "application/json";
  res.headers.clear();
  res.body = fmt::format(R"({{"error":{{"code":"{}","message":"{}"}}}})", code, message);
}

// Beast's HTTP/1.1 request parser (validation, Content-Length and chunked bodies, limits),
// writing straight into a reused HttpRequest.
class RequestParser final : public http::basic_parser<true> {
 public:
  explicit RequestParser(HttpRequest& req) : req_(req) {}
  bool expect_continue() const { return expect_continue_; }

 private:
  void on_request_impl(http::verb, beast::string_view method, beast::string_view target,
                       int version, beast::error_code&) override {
    req_.method.assign(method.data(), method.size());
    std::string_view t = Std(target);
    size_t q = t.find('?');
    req_.path.assign(t.substr(0, q));
    if (q != std::string_view::npos) req_.query.assign(t.substr(q + 1));
    req_.version = version;
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  void on_field_impl(http::field f, beast::string_view name, beast::string_view value,
                     beast::error_code& ec) override {
    // Message framing (RFC 9112 6.1, 6.3). Beast reads a body as chunked only when `chunked` is
    // the last coding and otherwise takes the request to have no body, so that the body of
    // `Transfer-Encoding: chunked, identity` (or `gzip`, `xchunked`) would be read as a second
    // request: a request smuggled past any proxy that frames it differently. Only a single
    // `chunked` is accepted; any other coding, both Transfer-Encoding and Content-Length, or
    // more than one (or a list-valued) Content-Length is refused, and the connection closed.
    if (f == http::field::transfer_encoding) {
      if (++transfer_encodings_ > 1 || content_lengths_ > 0 || !IsChunkedOnly(Std(value))) {
        ec = http::error::bad_transfer_encoding;
        return;
      }
    } else if (f == http::field::content_length) {
      if (++content_lengths_ > 1 || transfer_encodings_ > 0 || !IsDigits(Std(value))) {
        ec = http::error::bad_content_length;
        return;
      }
    }
    if (f == http::field::authorization) {
      req_.authorization.assign(value.data(), value.size());
    } else if (f == http::field::content_type) {
      req_.content_type.assign(value.data(), value.size());
    } else if (f == http::field::expect && beast::iequals(value, "100-continue")) {
      expect_continue_ = true;
    }
    req_.headers.Add(Std(name), Std(value));
  }
  void on_header_impl(beast::error_code&) override {}
  // The parser has checked a declared length against the body limit already.
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    if (length) req_.body.reserve(static_cast<size_t>(*length));
  }
  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  static std::string_view Trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  }
  static bool IsChunkedOnly(std::string_view v) {
    return beast::iequals(Beast(Trim(v)), Beast("chunked"));
  }
  static bool IsDigits(std::string_view v) {
    v = Trim(v);
    if (v.empty() || v.size() > 19) return false;
    for (char c : v) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  }

  HttpRequest& req_;
  bool expect_continue_ = false;
  int transfer_encodings_ = 0;
  int content_lengths_ = 0;
};

// A fresh parser with the server's limits.
void StartParser(std::optional<RequestParser>& parser, HttpRequest& req,
                 const HttpServerOptions& opts) {
  req.Clear();
  parser.emplace(req);
  parser->header_limit(static_cast<uint32_t>(opts.max_header_bytes));
  parser->body_limit(opts.max_body_bytes);
  parser->eager(true);
}

// The answer to a request the parser refused (the connection is closed after it).
void Refusal(const beast::error_code& ec, const HttpServerOptions& opts, HttpResponse& res) {
  if (ec == http::error::body_limit) {
    ErrorResponse(res, 413, "PAYLOAD_TOO_LARGE",
                  fmt::format("the request body exceeds {} bytes", opts.max_body_bytes));
  } else if (ec == http::error::header_limit) {
    ErrorResponse(res, 413, "PAYLOAD_TOO_LARGE",
                  fmt::format("the request headers exceed {} bytes", opts.max_header_bytes));
  } else {
    ErrorResponse(res, 400, "INVALID_ARGUMENT",
                  fmt::format("malformed HTTP request: {}", ec.message()));
  }
}

void AppendNumber(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// One connection. Every member is touched on its worker's thread only, except `req_` and
// `res_` while a blocking handler runs on the pool (the connection waits for it meanwhile).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& srv, Worker& w)
      : socket_(std::move(socket)),
        in_(srv.opts.max_header_bytes + 2 * kReadChunk),
        srv_(srv),
        w_(w) {
    beast::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) req_.remote = fmt::format("{}:{}", ep.address().to_string(), ep.port());
    socket_.set_option(tcp::no_delay(true), ec);
  }
  ~Session() { srv_.stats.connections_open.fetch_sub(1, std::memory_order_relaxed); }

  void Start() {
    born_ms_ = w_.now_ms;
    ResetIdleDeadline();
    Read();
  }

  // Refuses the connection: 503 and close (too many connections).
  void Refuse() {
    ErrorResponse(res_, 503, "UNAVAILABLE", "too many connections; retry later");
    res_.headers.emplace_back("Retry-After", "1");
    AppendResponse(false);
    Flush();
  }

  // On stop: a connection waiting for its next request is closed now; one with a request in
  // flight closes after answering it.
  void StopIfIdle() {
    if (state_ == State::kReading && !MidRequest()) Close();
  }

  // Closes the connection if its deadline has passed (a slow or idle client, a stuck write).
  void Expire(int64_t now_ms) {
    if (deadline_ms_ > now_ms) return;
    if (state_ == State::kReading && MidRequest()) {
      srv_.stats.rejected_bad_request.fetch_add(1, std::memory_order_relaxed);
    }
    Close();
  }

 private:
  enum class State { kReading, kHandling, kWriting, kLingering, kClosed };

  bool MidRequest() const { return in_.size() > 0 || (parser_ && parser_->got_some()); }

  void Read() {
    state_ = State::kReading;
    if (in_.size() + kReadChunk > in_.max_size()) {
      // Cannot happen while the parser enforces the header limit; refuse rather than throw.
      BadRequest(http::error::header_limit);
      return Flush();
    }
    // Both deadlines are absolute: bytes that do not complete a request extend neither.
    if (!MidRequest()) {
      if (srv_.stopping.load(std::memory_order_relaxed)) return Close();
      deadline_ms_ = idle_deadline_ms_;
    } else {
      if (request_deadline_ms_ == kNoDeadline) {
        request_deadline_ms_ = w_.now_ms + srv_.opts.request_timeout_ms;
      }
      deadline_ms_ = request_deadline_ms_;
    }
    socket_.async_read_some(
        in_.prepare(kReadChunk),
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (ec) return Close();
    in_.commit(n);
    Process();
  }

  void BeginRequest() {
    StartParser(parser_, req_, srv_.opts);
    continue_sent_ = false;
  }

  // Parses and answers the requests the buffer holds, then writes the answers or reads on.
  void Process() {
    state_ = State::kReading;
    while (true) {
      if (!parser_) BeginRequest();
      if (in_.size() == 0) break;
      beast::error_code ec;
      size_t used = parser_->put(in_.data(), ec);
      in_.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) {
        BadRequest(ec);
        break;
      }
      if (!parser_->is_done()) {
        if (parser_->is_header_done() && parser_->expect_continue() && !continue_sent_) {
          out_.append("HTTP/1.1 100 Continue\r\n\r\n");
          continue_sent_ = true;
        }
        if (used == 0) break;
        continue;
      }
      bool keep_alive = parser_->keep_alive();
      parser_.reset();
      request_deadline_ms_ = kNoDeadline;
      srv_.stats.requests_total.fetch_add(1, std::memory_order_relaxed);
      if (srv_.is_blocking && srv_.is_blocking(req_)) {
        if (srv_.stats.blocking_queued.load(std::memory_order_relaxed) >=
            srv_.opts.max_blocking_queue) {
          srv_.stats.rejected_overload.fetch_add(1, std::memory_order_relaxed);
          ErrorResponse(res_, 503, "UNAVAILABLE", "the server is busy; retry later");
          res_.headers.emplace_back("Retry-After", "1");
          AppendResponse(keep_alive);
        } else {
          return HandleOnPool(keep_alive);
        }
      } else {
        Handle();
        AppendResponse(keep_alive);
      }
      if (close_after_write_ || out_.size() >= kMaxPipelinedOut) break;
    }
    if (!out_.empty()) return Flush();
    Read();
  }

  void BadRequest(const beast::error_code& ec) {
    srv_.stats.rejected_bad_request.fetch_add(1, std::memory_order_relaxed);
    parser_.reset();
    Refusal(ec, srv_.opts, res_);
    AppendResponse(false);
  }

  void HandleOnPool(bool keep_alive) {
    state_ = State::kHandling;
    deadline_ms_ = kNoDeadline;  // the handler may take long; the connection waits
    srv_.stats.blocking_queued.fetch_add(1, std::memory_order_relaxed);
    // A slow handler (a query) polls this to stop early when nobody is waiting for the answer.
    req_.cancelled = [this] { return srv_.stopping.load() || PeerGone(); };
    asio::post(*srv_.pool, [self = shared_from_this(), keep_alive] {
      self->Handle();
      self->req_.cancelled = nullptr;
      self->srv_.stats.blocking_queued.fetch_sub(1, std::memory_order_relaxed);
      asio::post(self->socket_.get_executor(), [self, keep_alive] {
        self->AppendResponse(keep_alive);
        self->Flush();
      });
    });
  }

  // True once the client closed its side or reset the connection. Safe from the pool thread
  // while the connection waits for its handler (the event loop does not read the socket then).
  bool PeerGone() {
    pollfd p{};
    p.fd = socket_.native_handle();
    p.events = POLLIN | POLLRDHUP;
    if (::poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }

  void Handle() {
    res_.status = 200;
    res_.content_type.assign("application/json");
    res_.body.clear();
    res_.headers.clear();
    try {
      srv_.handler(req_, res_);
    } catch (const std::exception& e) {
      ErrorResponse(res_, 500, "INTERNAL", "internal error");
      spdlog::error("handler for {} {} threw: {}", req_.method, req_.path, e.what());
    }
  }

  // Serialises res_ onto out_.
  void AppendResponse(bool keep_alive) {
    keep_alive = keep_alive && !srv_.stopping.load(std::memory_order_relaxed) && !PastLifetime();
    if (!keep_alive) close_after_write_ = true;
    int status = res_.status;
    out_.append("HTTP/1.1 ");
    AppendNumber(out_, static_cast<uint64_t>(status));
    out_.push_back(' ');
    out_.append(HttpReason(status));
    out_.append("\r\nServer: ");
    out_.append(srv_.opts.server_name);
    out_.append("\r\n");
    out_.append(w_.date_header);
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    if (!res_.content_type.empty() && !no_body) {
      out_.append("Content-Type: ");
      out_.append(res_.content_type);
      out_.append("\r\n");
    }
    if (!no_body) {
      out_.append("Content-Length: ");
      AppendNumber(out_, res_.body.size());
      out_.append("\r\n");
    }
    for (const auto& [name, value] : res_.headers) {
      out_.append(name);
      out_.append(": ");
      out_.append(value);
      out_.append("\r\n");
    }
    if (!keep_alive) {
      out_.append("Connection: close\r\n");
    } else if (req_.version == 10) {
      out_.append("Connection: keep-alive\r\n");
    }
    out_.append("\r\n");
    if (!no_body && req_.method != "HEAD") out_.append(res_.body);
  }

  void Flush() {
    state_ = State::kWriting;
    deadline_ms_ = w_.now_ms + srv_.opts.request_timeout_ms;
    asio::async_write(
        socket_, asio::buffer(out_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    out_.clear();
    if (ec) return Close();
    if (close_after_write_) return Linger();
    ResetIdleDeadline();
    Process();
  }

  // A connection may wait idle_timeout_ms for its next request after an answer (not after
  // bytes that complete nothing), and lives at most max_connection_ms in all.
  void ResetIdleDeadline() {
    idle_deadline_ms_ = w_.now_ms + srv_.opts.idle_timeout_ms;
    if (srv_.opts.max_connection_ms > 0) {
      idle_deadline_ms_ = std::min(idle_deadline_ms_, born_ms_ + srv_.opts.max_connection_ms);
    }
  }
  bool PastLifetime() const {
    return srv_.opts.max_connection_ms > 0 && w_.now_ms >= born_ms_ + srv_.opts.max_connection_ms;
  }

  // Closes after an answer with Connection: close: stops sending, then reads and drops what
  // the client still sends until it closes (or for a while), so that closing with unread input
  // does not reset the connection before the client has read the answer.
  // The drain is bounded by linger_timeout_ms from the answer, however the client trickles.
  void Linger() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    state_ = State::kLingering;
    deadline_ms_ = w_.now_ms + srv_.opts.linger_timeout_ms;
    LingerRead();
  }
  void LingerRead() {
    in_.clear();
    socket_.async_read_some(in_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code read_ec, size_t) {
                              if (read_ec || self->state_ != State::kLingering)
                                return self->Close();
                              self->LingerRead();
                            });
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    deadline_ms_ = kNoDeadline;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  tcp::socket socket_;
  beast::flat_buffer in_;
  std::optional<RequestParser> parser_;
  HttpRequest req_;
  HttpResponse res_;
  std::string out_;
  HttpServer::Impl& srv_;
  Worker& w_;
  State state_ = State::kReading;
  int64_t deadline_ms_ = kNoDeadline;          // the one Expire checks, for the current state
  int64_t born_ms_ = 0;                        // when the connection was accepted
  int64_t idle_deadline_ms_ = kNoDeadline;     // for the next request's first byte
  int64_t request_deadline_ms_ = kNoDeadline;  // for the current request, from its first byte
  bool continue_sent_ = false;
  bool close_after_write_ = false;
};

}  // namespace

RequestStreamResult ParseRequestStream(std::string_view bytes, const HttpServerOptions& options,
                                       const std::function<void(const HttpRequest&)>& on_request) {
  RequestStreamResult out;
  HttpRequest req;
  std::optional<RequestParser> parser;
  // Fed in pieces of at most kReadChunk, as reads deliver them.
  std::string_view rest = bytes;
  std::string pending;
  while (true) {
    if (!parser) StartParser(parser, req, options);
    size_t take = std::min(rest.size(), kReadChunk);
    pending.append(rest.substr(0, take));
    rest.remove_prefix(take);
    if (pending.empty()) break;
    beast::error_code ec;
    size_t used = parser->put(asio::buffer(pending.data(), pending.size()), ec);
    pending.erase(0, used);
    if (ec == http::error::need_more) {
      if (rest.empty()) break;
      if (pending.size() > options.max_header_bytes + 2 * kReadChunk) {
        ec = http::error::header_limit;  // as the server's bounded buffer would
      } else {
        continue;
      }
    }
    if (ec) {
      HttpResponse res;
      Refusal(ec, options, res);
      out.error_status = res.status;
      out.error = res.body;
      out.closed = true;
      return out;
    }
    if (!parser->is_done()) {
      if (used == 0 && rest.empty()) break;
      continue;
    }
    bool keep_alive = parser->keep_alive();
    parser.reset();
    ++out.requests;
    on_request(req);
    if (!keep_alive) {
      out.closed = true;
      return out;
    }
  }
  out.incomplete = parser.has_value() && parser->got_some();
  return out;
}

// The first worker accepts every connection and deals them out in turn to the workers' loops
// (the socket is created on its worker's io_context), so each loop serves the same number of
// connections. The kernel's SO_REUSEPORT hashing split 32 connections as unevenly as 21 to 11,
// and the busier loop's connections waited several times longer.
void HttpServer::Impl::Accept() {
  Worker& acceptor_worker = *workers[0];
  Worker& w = *workers[next_worker++ % workers.size()];
  acceptor_worker.acceptor->async_accept(
      w.ioc, [this, &acceptor_worker, &w](beast::error_code ec, tcp::socket socket) {
        if (ec) {
          if (ec == asio::error::operation_aborted || !acceptor_worker.acceptor->is_open()) {
            return;
          }
          // e.g. EMFILE: keep accepting after a pause rather than spinning.
          auto timer = std::make_shared<asio::steady_timer>(acceptor_worker.ioc,
                                                            std::chrono::milliseconds(50));
          timer->async_wait([this, timer](beast::error_code) {
            if (!stopping) Accept();
          });
          return;
        }
        stats.connections_total.fetch_add(1, std::memory_order_relaxed);
        int64_t open = stats.connections_open.fetch_add(1, std::memory_order_relaxed) + 1;
        bool refuse = open > opts.max_connections;
        if (refuse) stats.rejected_overload.fetch_add(1, std::memory_order_relaxed);
        // Made here, so that a connection a stopped loop never gets is still counted as closed.
        auto session = std::make_shared<Session>(std::move(socket), *this, w);
        asio::post(w.ioc, [&w, refuse, session] {
          w.sessions.push_back(session);
          if (refuse || w.draining) {
            session->Refuse();
          } else {
            session->Start();
          }
        });
        Accept();
      });
}

void HttpServer::Impl::StopWorker(Worker& w) {
  beast::error_code ec;
  if (w.acceptor) w.acceptor->close(ec);
  w.draining = true;
  w.drain_deadline_ms = SteadyMillis() + opts.drain_timeout_ms;
  for (auto& weak : w.sessions) {
    if (auto sp = weak.lock()) sp->StopIfIdle();
  }
}

// Every kSweepMillis: closes the connections past their deadline, forgets the closed ones, and
// once stopping, stops the worker's loop when its connections are gone (answered and closed)
// or at the drain deadline.
void HttpServer::Impl::Sweep(Worker& w) {
  w.Tick();
  for (auto it = w.sessions.begin(); it != w.sessions.end();) {
    if (auto sp = it->lock()) {
      sp->Expire(w.now_ms);
      ++it;
    } else {
      it = w.sessions.erase(it);
    }
  }
  if (w.draining && (w.sessions.empty() || w.now_ms >= w.drain_deadline_ms)) {
    w.ioc.stop();
    return;
  }
  w.sweep.expires_after(std::chrono::milliseconds(w.draining ? kDrainSweepMillis : kSweepMillis));
  w.sweep.async_wait([this, &w](beast::error_code) { Sweep(w); });
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
  for (int i = 0; i < n; ++i) s.workers.push_back(std::make_unique<Worker>());
  Worker& first = *s.workers[0];
  tcp::endpoint ep(address, static_cast<uint16_t>(port));
  first.acceptor.emplace(first.ioc);
  first.acceptor->open(ep.protocol(), ec);
  if (!ec) first.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) first.acceptor->bind(ep, ec);
  if (!ec) first.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    s.workers.clear();
    return UnavailableError(
        fmt::format("cannot listen on {}:{}: {}", s.opts.bind, port, ec.message()));
  }
  port = first.acceptor->local_endpoint().port();
  s.port = port;
  s.pool = std::make_unique<asio::thread_pool>(std::max(1, s.opts.blocking_threads));
  s.Accept();
  for (auto& w : s.workers) s.Sweep(*w);
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

}  // namespace engage::server
