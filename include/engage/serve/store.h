// The prediction store: what the server answers `GET /v1/customers/{id}/prediction` from.
//
// `Publish` copies the latest scoring run of one or more versions of a model from the lake's
// `predictions` table into a new LMDB snapshot under <home>/serving/snapshots/<id>/, then
// switches <home>/serving/CURRENT to it with an atomic rename. A snapshot never changes after it
// is published, so readers need no locks: a `PredictionStore` holds the current snapshot, and
// `Refresh()` swaps in a newer one while requests still running on the old one finish on it.
// Every lookup sees one whole snapshot, the old or the new, never a mix.
//
//   ENGAGE_ASSIGN_OR_RETURN(PublishReport r, Publish(lake, home, {.model = "engagement",
//                                                               .versions = {3, 4}}, clock));
//   ENGAGE_ASSIGN_OR_RETURN(auto store, PredictionStore::Open(home));
//   std::string body;
//   ENGAGE_ASSIGN_OR_RETURN(bool found, store->Current()->AppendJson("42", 3, &body));
//
// Records are compact (segment, score, probability alive, expected transactions, CLV and the
// top reasons as indexes into the snapshot's feature list: 36 bytes for 3 reasons); the JSON is
// rendered on lookup. Each model version is one LMDB database keyed by customer id.
//
// Thread-safety: PredictionStore and Snapshot are safe to use from any number of threads;
// Publish may run in another process while servers read.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/home.h"
#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/lake/lake.h"
#include "engage/serve/ab.h"

namespace engage::serve {

// <home>/serving and its parts.
std::string ServingDir(const HomePaths& home);

// What one published model version holds.
struct PublishedVersion {
  int64_t version = 0;
  std::string scored_at;  // ISO 8601 UTC: the scoring run published
  std::string cutoff;     // YYYY-MM-DD
  int64_t customers = 0;
  std::vector<std::string> segments;  // record segment index -> name
  std::vector<std::string> features;  // record reason index -> feature name
};

struct SnapshotInfo {
  std::string id;
  std::string model;
  std::string published_at;  // ISO 8601 UTC
  int64_t default_version = 0;
  std::vector<PublishedVersion> versions;
  int64_t bytes = 0;  // the snapshot's file size
  // The A/B split served with this snapshot (arms resolved to published versions), if any.
  std::optional<TrafficSplit> split;

  const PublishedVersion* Find(int64_t version) const;
  Json ToJson() const;
  static Result<SnapshotInfo> FromJson(const Json& j);
};

// One published snapshot, open read-only.
class Snapshot {
 public:
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  const SnapshotInfo& info() const { return info_; }

  // Appends customer `customer_id`'s prediction by model `version` (0 = the default version) to
  // `out` as a JSON object. False when the version has no prediction for the customer;
  // kNotFound when the snapshot has no such version.
  Result<bool> AppendJson(std::string_view customer_id, int64_t version, std::string* out) const;

  static Result<std::shared_ptr<Snapshot>> Open(const std::string& dir);

 private:
  Snapshot() = default;
  struct Env;
  std::unique_ptr<Env> env_;
  SnapshotInfo info_;
  std::string dir_;
};

class PredictionStore {
 public:
  // Opens the snapshot CURRENT names. kNotFound (saying to run `engage publish`) when nothing
  // has been published.
  static Result<std::unique_ptr<PredictionStore>> Open(const HomePaths& home);

  // The snapshot to answer from; keep the pointer for the whole request.
  std::shared_ptr<const Snapshot> Current() const;
  // The same, for the hot path: a reference to this thread's copy, renewed when a publish has
  // switched snapshots, so a lookup takes no lock and touches no shared reference count. Valid
  // until this thread's next call; it keeps the snapshot it names open.
  const std::shared_ptr<const Snapshot>& CurrentOnThisThread() const;
  // Switches to the snapshot CURRENT names if it changed; true when it switched.
  Result<bool> Refresh();

 private:
  explicit PredictionStore(HomePaths home);
  // Refresh, retried when publishes in quick succession removed the snapshot CURRENT named.
  Result<bool> RefreshAttempt(int attempt);
  HomePaths home_;
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;
  std::string current_id_;
  // Changes whenever current_ does; unique across stores (thread copies compare it).
  std::atomic<uint64_t> generation_;
};

struct PublishOptions {
  std::string model = "engagement";
  // Versions to publish, each from its latest scoring run; the first is the default. Empty =
  // the latest scored version.
  std::vector<int64_t> versions;
  int keep = 3;  // snapshots kept on disk (the current one included)
  // DuckDB's memory for reading the predictions in customer order; beyond it the sort spills
  // to the home's tmp/ (DuckDB's own default, 80% of RAM, took 20 GB at 100M customers).
  std::string memory_limit = "2GB";
  // Served with the snapshot; every arm's version must be among `versions`.
  std::optional<TrafficSplit> split;
};

struct PublishReport {
  SnapshotInfo snapshot;
  double seconds = 0;
  double bytes_per_customer = 0;  // snapshot file bytes / records
  int64_t removed_snapshots = 0;
  int64_t removed_staging = 0;  // `*.tmp` directories a killed publish had left
  Json ToJson() const;
  std::string ToText() const;  // a summary line and a table of the published versions
};

// Builds a snapshot from the lake's predictions table and makes it current. Publishes are
// serialised by a lock file in the snapshots directory (a second one waits), and each first
// removes the staging directories killed publishes left. kNotFound when the
// table has no predictions for the model or a version; kInvalidArgument for a malformed row
// (naming the customer).
Result<PublishReport> Publish(lake::Lake& lake, const PublishOptions& options, const Clock& clock);

}  // namespace engage::serve
