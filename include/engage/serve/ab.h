// A/B tests of model versions: traffic splits, exposures, and the outcome readout.
//
// A TrafficSplit divides a model's customers between arms (e.g. champion 90%, challenger 10%),
// each arm a registry reference resolved to a version when predictions are published. A
// customer's arm is a pure function of the split's salt and the customer id, so it never
// changes while the split does not, on any server. Every prediction served through a split says
// its arm, and the first serving of each customer is recorded as an exposure in meta.db.
// `ReportAb` later compares the arms' engagement on the labels that arrived after exposure: the
// share of exposed customers with a qualifying event within the horizon, with 95% confidence
// intervals and the difference from the first (control) arm.
//
//   ENGAGE_ASSIGN_OR_RETURN(TrafficSplit s,
//                           TrafficSplit::Parse("engagement", {"champion=90", "challenger=10"}));
//   size_t arm = s.Assign("customer-42");
//
// Thread-safety: TrafficSplit is a value; SplitStore and ExposureLog are safe for concurrent use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/core/sqlite.h"
#include "engage/core/status.h"

namespace engage::sql {
class QueryEngine;
}  // namespace engage::sql

namespace engage::serve {

struct SplitArm {
  std::string name;     // e.g. "champion"
  std::string ref;      // alias or version number in the registry, e.g. "champion" or "3"
  double weight = 0;    // percent of customers; the arms' weights sum to 100
  int64_t version = 0;  // resolved when published (0 before)
};

struct TrafficSplit {
  std::string model;
  std::vector<SplitArm> arms;
  std::string salt;  // changing it reshuffles customers between arms
  std::string updated_at;

  // 2 to 10 arms with distinct names, weights > 0 summing to 100.
  Status Validate() const;
  // The arm customer `id` falls in.
  size_t Assign(std::string_view customer_id) const;
  Json ToJson() const;
  // "traffic split of engagement: champion=90% (engagement@champion), challenger=10% (...)"
  // and the salt, in two lines.
  std::string ToText() const;
  static Result<TrafficSplit> FromJson(const Json& j);
  // Arms as "name=weight" (the name is also the registry reference) or "name:ref=weight".
  static Result<TrafficSplit> Parse(const std::string& model, const std::vector<std::string>& arms,
                                    const std::string& salt = "");
};

// The traffic_splits table of meta.db.
class SplitStore {
 public:
  static Result<std::unique_ptr<SplitStore>> Open(const std::string& meta_db, const Clock& clock);
  Result<std::optional<TrafficSplit>> Get(const std::string& model);
  // Validates and stores (replacing the model's split).
  Status Put(TrafficSplit split);
  // kNotFound when the model has no split.
  Status Remove(const std::string& model);

 private:
  SplitStore(SqliteDb db, const Clock& clock) : db_(std::move(db)), clock_(clock) {}
  std::mutex mu_;
  SqliteDb db_;
  const Clock& clock_;
};

// First servings per customer through a split (ab_exposures in meta.db), buffered in memory and
// written by a background thread.
class ExposureLog {
 public:
  static Result<std::unique_ptr<ExposureLog>> Open(const std::string& meta_db, const Clock& clock);
  ~ExposureLog();
  void Record(const std::string& model, std::string_view customer_id, const std::string& arm,
              int64_t version);
  Status Flush();

 private:
  struct Exposure {
    std::string model, customer_id, arm;
    int64_t version = 0;
    int64_t at_micros = 0;
  };
  ExposureLog(SqliteDb db, const Clock& clock);
  void Run();
  Status WriteLocked();  // db_mu_ held

  const Clock& clock_;
  std::mutex db_mu_;
  SqliteDb db_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Exposure> buffer_;          // guarded by mu_
  std::unordered_set<std::string> seen_;  // model + '\0' + customer, guarded by mu_
  bool stop_ = false;                     // guarded by mu_
  std::thread writer_;
};

struct ArmOutcome {
  std::string arm;
  int64_t version = 0;
  int64_t exposed = 0;   // customers first served through this arm
  int64_t labelled = 0;  // of them, those whose horizon has passed in the events
  int64_t engaged = 0;   // of the labelled, those with a qualifying event within the horizon
  double rate = 0, ci_low = 0, ci_high = 0;            // engaged / labelled, Wilson 95%
  double diff = 0, diff_ci_low = 0, diff_ci_high = 0;  // rate - the control arm's rate
};

struct AbReport {
  std::string model;
  int horizon_days = 0;
  std::string labels_until;      // the last event time: horizons ending later are still pending
  std::vector<ArmOutcome> arms;  // the first is the control
  Json ToJson() const;
  std::string ToText() const;  // a heading and a table of the arms with 95% CIs
};

// Compares the arms of `model`'s exposures on the events table of `config` (qualifying types,
// horizon). kNotFound when nothing was exposed.
Result<AbReport> ReportAb(sql::QueryEngine& engine, const HomePaths& home,
                          const EngagementConfig& config, const std::string& model,
                          int horizon_days);

}  // namespace engage::serve
