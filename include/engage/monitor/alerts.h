// Alerts: a budget crossed, an error-severity check failed, dataset drift, a model below its
// minimum AUC, a failed execution. Each is recorded in meta.db (`engage alerts`) and delivered to
// every channel of [alerts] in engage.toml: a webhook (HTTP POST of the alert's JSON) and a
// command (run by /bin/sh -c with the JSON on stdin), each retried with backoff and its delivery
// status recorded.
//
//   AlertSender sender(home.meta_db(), clock);
//   sender.Raise(config.alerts, {.kind = "budget", .name = "daily", .message = "...",
//                                .details = {{"spent_usd", 1.2}, ...}});
//
// Delivery never blocks or fails the work that raised the alert: Raise records the alert and
// returns; a thread of the sender delivers it. When the sender is destroyed it waits up to
// kShutdownFlushMs for deliveries still under way, then stops them; what is left stays "pending"
// and the next sender that raises an alert (or a server, when it starts) delivers it.
//
// Thread-safety: AlertSender's methods may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/core/json.h"
#include "engage/core/sqlite.h"
#include "engage/core/status.h"

namespace engage::monitor {

struct Alert {
  std::string id;                   // time-ordered, set when recorded
  std::string at;                   // ISO-8601 UTC
  std::string kind;                 // budget, check, drift, model_health, execution
  std::string name;                 // the budget, table, model or execution
  std::string message;              // for people
  Json details = Json::object();    // merged into the JSON body (spent_usd, limit_usd, ...)
  Json deliveries = Json::array();  // [{"channel", "status", "attempts", "error"}]
  // The body delivered: {"id", "at", "kind", "name", "message", ...details}.
  Json Body() const;
  // Body() and "deliveries".
  Json ToJson() const;
};

// Alerts as a table (at, kind, name, delivery, message) and as {"alerts": [...]}.
std::string AlertsTable(const std::vector<Alert>& alerts);
Json AlertsJson(const std::vector<Alert>& alerts);

// POSTs `body` to an http:// URL; Ok on a 2xx answer within `timeout_ms`, else an error naming
// the URL and what happened.
Status PostJson(const std::string& url, const std::string& body, int64_t timeout_ms);
// Runs `command` with /bin/sh -c, `input` on its stdin and its stdout sent to stderr; Ok when it
// exits 0 within `timeout_ms` (else it is killed).
Status RunAlertCommand(const std::string& command, const std::string& input, int64_t timeout_ms);

class AlertSender {
 public:
  AlertSender(std::string meta_db, const Clock& clock);
  // Waits up to kShutdownFlushMs for the queued deliveries, then stops the delivery thread.
  ~AlertSender();
  AlertSender(const AlertSender&) = delete;
  AlertSender& operator=(const AlertSender&) = delete;

  // Records `alert` (logged as a warning) and queues its delivery to `channels`. Returns the
  // recorded alert. Errors only when it cannot be recorded.
  Result<Alert> Raise(const AlertsConfig& channels, Alert alert);
  // Queues the deliveries left pending by earlier processes (alerts of the last day). Raise runs it
  // once per sender; a server runs it when it starts.
  Status ResumePending(const AlertsConfig& channels);
  // Waits up to `timeout_ms` for the queued deliveries to finish; true when none is left.
  bool Flush(int64_t timeout_ms);

  // Whether an alert of this kind, name and message was recorded.
  Result<bool> Seen(const std::string& kind, const std::string& name, const std::string& message);

  // The newest `limit` alerts, newest first.
  Result<std::vector<Alert>> List(int64_t limit);

  // How long the destructor waits for deliveries.
  static constexpr int64_t kShutdownFlushMs = 5000;

 private:
  struct Job {
    Alert alert;
    AlertsConfig channels;
  };
  void Worker();
  void Deliver(Job& job);
  Status Store(const Alert& alert, bool insert);

  const std::string meta_db_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Job> queue_;
  int64_t busy_ = 0;  // jobs taken by the worker and not yet done
  std::atomic<bool> stopping_{false};
  std::atomic<bool> resumed_{false};  // ResumePending ran (Raise runs it once)
  std::thread worker_;                // started with the first delivery
};

}  // namespace engage::monitor
