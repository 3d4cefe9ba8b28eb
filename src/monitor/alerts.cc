#include "engage/monitor/alerts.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "engage/core/ids.h"
#include "engage/core/text.h"

extern char** environ;

namespace engage::monitor {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  alert TEXT NOT NULL
);
)sql";

int64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A socket file descriptor closed when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Set while an AlertSender shuts down: deliveries under way give up within a tenth of a second
// (and stay pending for the next process).
thread_local const std::atomic<bool>* stop_flag = nullptr;

bool Stopping() { return stop_flag != nullptr && stop_flag->load(); }

// Waits until `fd` is ready for `events` or `deadline` (monotonic ms) passes.
bool WaitFd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - MonotonicMs();
    if (left <= 0 || Stopping()) return false;
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

std::string DeliveryState(const Json& deliveries) {
  if (deliveries.empty()) return "recorded";
  std::string out;
  for (const Json& d : deliveries) {
    if (!out.empty()) out += ", ";
    out += d.value("channel", "") + ": " + d.value("status", "");
  }
  return out;
}

Alert AlertFromJson(const Json& j) {
  Alert a;
  a.id = j.value("id", "");
  a.at = j.value("at", "");
  a.kind = j.value("kind", "");
  a.name = j.value("name", "");
  a.message = j.value("message", "");
  for (const auto& [k, v] : j.items()) {
    if (k != "id" && k != "at" && k != "kind" && k != "name" && k != "message" &&
        k != "deliveries") {
      a.details[k] = v;
    }
  }
  if (j.contains("deliveries") && j["deliveries"].is_array()) a.deliveries = j["deliveries"];
  return a;
}

}  // namespace

Json Alert::Body() const {
  Json j = details.is_object() ? details : Json::object();
  j["id"] = id;
  j["at"] = at;
  j["kind"] = kind;
  j["name"] = name;
  j["message"] = message;
  return j;
}

Json Alert::ToJson() const {
  Json j = Body();
  j["deliveries"] = deliveries;
  return j;
}

std::string AlertsTable(const std::vector<Alert>& alerts) {
  if (alerts.empty()) return "no alerts\n";
  std::vector<std::vector<std::string>> rows;
  for (const Alert& a : alerts) {
    rows.push_back({a.at, a.kind, a.name, DeliveryState(a.deliveries), a.message});
  }
  return FormatTable({"at", "kind", "name", "delivery", "message"}, rows);
}

Json AlertsJson(const std::vector<Alert>& alerts) {
  Json a = Json::array();
  for (const Alert& x : alerts) a.push_back(x.ToJson());
  return Json{{"alerts", std::move(a)}};
}

Status PostJson(const std::string& url, const std::string& body, int64_t timeout_ms) {
  // http://host[:port][/path]
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    return InvalidArgumentError(fmt::format("webhook '{}': only http:// URLs are supported", url));
  }
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string host = authority, port = "80";
  if (size_t colon = authority.rfind(':');
      colon != std::string::npos && authority.find(']') == std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || port.empty() || path.find_first_of("\r\n ") != std::string::npos) {
    return InvalidArgumentError(fmt::format("webhook '{}': not a valid http:// URL", url));
  }
  const int64_t deadline = MonotonicMs() + timeout_ms;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return UnavailableError(
        fmt::format("webhook '{}': cannot resolve '{}': {}", url, host, gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addrs(found, freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
    Fd s{socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol)};
    if (s.fd < 0) continue;
    if (connect(s.fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      continue;
    }
    if (!WaitFd(s.fd, POLLOUT, deadline)) {
      last_error = "timed out connecting";
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last_error = std::strerror(err);
      continue;
    }
    std::string request = fmt::format(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nUser-Agent: "
        "engage-alerts\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        path, authority, body.size(), body);
    size_t sent = 0;
    while (sent < request.size()) {
      if (!WaitFd(s.fd, POLLOUT, deadline)) {
        return Status(StatusCode::kDeadlineExceeded,
                      fmt::format("webhook '{}': timed out sending", url));
      }
      ssize_t n = send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return UnavailableError(fmt::format("webhook '{}': {}", url, std::strerror(errno)));
      }
      if (n > 0) sent += static_cast<size_t>(n);
    }
    // The status line is enough: "HTTP/1.1 204 No Content".
    std::string answer;
    while (answer.find("\r\n") == std::string::npos && answer.size() < 4096) {
      if (!WaitFd(s.fd, POLLIN, deadline)) {
        return Status(StatusCode::kDeadlineExceeded,
                      fmt::format("webhook '{}': no answer in time", url));
      }
      char buf[1024];
      ssize_t n = recv(s.fd, buf, sizeof buf, 0);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return UnavailableError(fmt::format("webhook '{}': {}", url, std::strerror(errno)));
      }
      answer.append(buf, static_cast<size_t>(n));
    }
    int status = 0;
    if (std::sscanf(answer.c_str(), "HTTP/%*d.%*d %d", &status) != 1) {
      return UnavailableError(fmt::format("webhook '{}': not an HTTP answer", url));
    }
    if (status < 200 || status > 299) {
      return UnavailableError(fmt::format("webhook '{}': answered HTTP {}", url, status));
    }
    return Status::Ok();
  }
  return UnavailableError(fmt::format("webhook '{}': cannot connect: {}", url, last_error));
}

Status RunAlertCommand(const std::string& command, const std::string& input, int64_t timeout_ms) {
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) {
    return InternalError(fmt::format("alert command: pipe failed: {}", std::strerror(errno)));
  }
  // A command that exits without reading its input must not kill Engage with SIGPIPE: writes to
  // its stdin then fail with EPIPE instead (the child starts with the default disposition).
  static const bool sigpipe_ignored = [] {
    signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  // Its output goes nowhere: a chatty command must not flood Engage's own output.
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  if (rc != 0) {
    close(in[1]);
    return InternalError(fmt::format("alert command: cannot start /bin/sh: {}", std::strerror(rc)));
  }
  // The body is small; a command that does not read it gets EPIPE, not Engage a SIGPIPE.
  size_t written = 0;
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  const int64_t deadline = MonotonicMs() + timeout_ms;
  while (written < input.size() && WaitFd(in[1], POLLOUT, deadline)) {
    ssize_t n = write(in[1], input.data() + written, input.size() - written);
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    if (n > 0) written += static_cast<size_t>(n);
  }
  close(in[1]);
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (MonotonicMs() >= deadline || Stopping()) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("alert command '{}' did not finish in {} ms", command, timeout_ms));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return UnavailableError(fmt::format("alert command '{}' {}", command,
                                      WIFEXITED(status)
                                          ? fmt::format("exited {}", WEXITSTATUS(status))
                                          : fmt::format("killed by signal {}", WTERMSIG(status))));
}

AlertSender::AlertSender(std::string meta_db, const Clock& clock)
    : meta_db_(std::move(meta_db)), clock_(clock) {}

AlertSender::~AlertSender() {
  Flush(kShutdownFlushMs);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Status AlertSender::Store(const Alert& alert, bool insert) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db.Prepare(insert ? "INSERT INTO alerts (alert, id, at, kind, name) VALUES (?, ?, ?, ?, ?)"
                        : "UPDATE alerts SET alert = ? WHERE id = ?"));
  st.Bind(1, DumpJson(alert.ToJson())).Bind(2, alert.id);
  if (insert) st.Bind(3, alert.at).Bind(4, alert.kind).Bind(5, alert.name);
  return st.Run();
}

Result<Alert> AlertSender::Raise(const AlertsConfig& channels, Alert alert) {
  if (!resumed_.exchange(true)) {
    if (Status s = ResumePending(channels); !s.ok()) {
      spdlog::warn("could not resume pending alert deliveries: {}", s.message());
    }
  }
  alert.id = NewId(clock_);
  alert.at = FormatIsoUtc(clock_.NowMicros());
  alert.deliveries = Json::array();
  if (!channels.webhook_url.empty()) {
    alert.deliveries.push_back(
        Json{{"channel", "webhook"}, {"status", "pending"}, {"attempts", 0}, {"error", ""}});
  }
  if (!channels.command.empty()) {
    alert.deliveries.push_back(
        Json{{"channel", "command"}, {"status", "pending"}, {"attempts", 0}, {"error", ""}});
  }
  ENGAGE_RETURN_IF_ERROR(Store(alert, true));
  spdlog::warn("alert ({} {}): {}", alert.kind, alert.name, alert.message);
  if (!alert.deliveries.empty()) {
    std::lock_guard lock(mu_);
    queue_.push_back(Job{alert, channels});
    if (!worker_.joinable()) worker_ = std::thread([this] { Worker(); });
  }
  changed_.notify_all();
  return alert;
}

Status AlertSender::ResumePending(const AlertsConfig& channels) {
  resumed_ = true;
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  std::string since = FormatIsoUtc(clock_.NowMicros() - 86400LL * 1000000);
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db.Prepare("SELECT alert FROM alerts WHERE at >= ? AND alert LIKE '%\"pending\"%' "
                 "ORDER BY id"));
  st.Bind(1, since);
  std::vector<Alert> pending;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Json j = Json::parse(st.Text(0), nullptr, false);
    if (j.is_object()) pending.push_back(AlertFromJson(j));
  }
  std::lock_guard lock(mu_);
  for (Alert& a : pending) {
    bool has_pending = false;
    for (const Json& d : a.deliveries) has_pending |= d.value("status", "") == "pending";
    if (!has_pending) continue;
    queue_.push_back(Job{std::move(a), channels});
  }
  if (!queue_.empty() && !worker_.joinable()) worker_ = std::thread([this] { Worker(); });
  changed_.notify_all();
  return Status::Ok();
}

bool AlertSender::Flush(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [this] { return queue_.empty() && busy_ == 0; });
}

void AlertSender::Worker() {
  stop_flag = &stopping_;
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_.load() || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping
    Job job = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    Deliver(job);
    lock.lock();
    --busy_;
    changed_.notify_all();
  }
}

void AlertSender::Deliver(Job& job) {
  const std::string body = DumpJson(job.alert.Body());
  const int64_t timeout_ms = job.channels.timeout_seconds * 1000;
  for (Json& d : job.alert.deliveries) {
    if (d.value("status", "") != "pending") continue;
    const std::string channel = d.value("channel", "");
    int64_t backoff_ms = 250;
    for (int64_t attempt = d.value("attempts", int64_t{0}); attempt < job.channels.max_attempts;
         ++attempt) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
      }
      Status s = channel == "webhook" ? PostJson(job.channels.webhook_url, body, timeout_ms)
                                      : RunAlertCommand(job.channels.command, body, timeout_ms);
      if (!s.ok() && Stopping()) break;  // cut short by shutdown: still pending
      d["attempts"] = attempt + 1;
      d["error"] = s.ok() ? "" : s.message();
      if (s.ok()) {
        d["status"] = "delivered";
        break;
      }
      if (attempt + 1 >= job.channels.max_attempts) {
        d["status"] = "failed";
        spdlog::warn("alert {} not delivered to its {}: {}", job.alert.id, channel, s.message());
        break;
      }
      // Persist the attempt so far: a process that ends now leaves it pending for the next.
      if (Status stored = Store(job.alert, false); !stored.ok()) {
        spdlog::warn("could not record alert {}'s delivery: {}", job.alert.id, stored.message());
      }
      std::unique_lock lock(mu_);
      changed_.wait_for(lock, std::chrono::milliseconds(backoff_ms),
                        [this] { return stopping_.load(); });
      backoff_ms *= 2;
    }
  }
  if (Status stored = Store(job.alert, false); !stored.ok()) {
    spdlog::warn("could not record alert {}'s delivery: {}", job.alert.id, stored.message());
  }
}

Result<bool> AlertSender::Seen(const std::string& kind, const std::string& name,
                               const std::string& message) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st, db.Prepare("SELECT EXISTS (SELECT 1 FROM alerts WHERE kind = ? AND name = ? "
                                "AND json_extract(alert, '$.message') = ?)"));
  st.Bind(1, kind).Bind(2, name).Bind(3, message);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row && st.Int(0) != 0;
}

Result<std::vector<Alert>> AlertSender::List(int64_t limit) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db_));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          db.Prepare("SELECT alert FROM alerts ORDER BY rowid DESC LIMIT ?"));
  st.Bind(1, limit);
  std::vector<Alert> out;
  for (;;) {
    ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Json j = Json::parse(st.Text(0), nullptr, false);
    if (j.is_object()) out.push_back(AlertFromJson(j));
  }
  return out;
}

}  // namespace engage::monitor
