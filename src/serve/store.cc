#include "engage/serve/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <lmdb.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unordered_map>
#include <utility>

#include "engage/core/fs.h"
#include "engage/core/ids.h"
#include "engage/core/log.h"
#include "engage/core/text.h"
#include "engage/lake/duck.h"

namespace engage::serve {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kCommitEvery = 500000;  // records per LMDB write transaction
// The LMDB map is address space, not disk (the file grows as written): sized generously from
// the rows to publish (a record takes about 60 bytes with LMDB's overhead).
constexpr size_t kMapBytesPerRow = 512;
constexpr size_t kMinMapBytes = size_t{256} << 20;
constexpr size_t kHeaderBytes = 2 + 4 * sizeof(float);  // segment, reasons, 4 floats
constexpr size_t kReasonBytes = sizeof(uint16_t) + sizeof(float);
constexpr size_t kMaxReasons = 255;

Status LmdbError(int rc, std::string_view what) {
  return InternalError(fmt::format("LMDB {}: {}", what, mdb_strerror(rc)));
}

std::string DbName(int64_t version) { return fmt::format("v{}", version); }

std::string SnapshotsDir(const HomePaths& home) { return ServingDir(home) + "/snapshots"; }
std::string CurrentFile(const HomePaths& home) { return ServingDir(home) + "/CURRENT"; }

// The exclusive lock one publish holds for its whole run (an flock on snapshots/.publish.lock,
// released by the kernel if the process dies): while it is held, no other publish is staging,
// so a `*.tmp` directory found then is left over from a killed one.
class PublishLock {
 public:
  static Result<PublishLock> Acquire(const std::string& snapshots_dir) {
    std::error_code ec;
    fs::create_directories(snapshots_dir, ec);
    if (ec) {
      return PermissionDeniedError(
          fmt::format("cannot create '{}': {}", snapshots_dir, ec.message()));
    }
    std::string path = snapshots_dir + "/.publish.lock";
    PublishLock lock(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (lock.fd_ < 0) {
      return PermissionDeniedError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    }
    int rc;
    do {
      rc = ::flock(lock.fd_, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      return InternalError(fmt::format("cannot lock '{}': {}", path, std::strerror(errno)));
    }
    return lock;
  }
  PublishLock(PublishLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  PublishLock& operator=(PublishLock&&) = delete;
  ~PublishLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit PublishLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Removes the staging directories (`<id>.tmp`) of publishes that were killed; the publish lock
// must be held. Returns how many went.
int64_t RemoveStaleStaging(const std::string& snapshots_dir) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(snapshots_dir, ec)) {
    std::error_code type_ec;
    if (e.path().extension() == ".tmp" && e.is_directory(type_ec)) stale.push_back(e.path());
  }
  int64_t removed = 0;
  for (const auto& p : stale) {
    std::error_code rm_ec;
    fs::remove_all(p, rm_ec);
    if (rm_ec) {
      spdlog::warn("publish: cannot remove stale staging '{}': {}", p.string(), rm_ec.message());
    } else {
      ++removed;
    }
  }
  return removed;
}

// A number as JSON: shortest text that reads back as the same float; null when not finite.
void AppendNumber(std::string* out, float v) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  fmt::format_to(std::back_inserter(*out), "{}", v);
}

void AppendString(std::string* out, std::string_view s) {
  bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\' &&
           static_cast<unsigned char>(c) < 0x80;
  });
  if (plain) {
    out->push_back('"');
    out->append(s);
    out->push_back('"');
  } else {
    AppendJson(out, Json(std::string(s)));
  }
}

float ReadFloat(const char* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

std::string ServingDir(const HomePaths& home) { return home.root + "/serving"; }

const PublishedVersion* SnapshotInfo::Find(int64_t version) const {
  if (version == 0) version = default_version;
  for (const auto& v : versions) {
    if (v.version == version) return &v;
  }
  return nullptr;
}

Json SnapshotInfo::ToJson() const {
  Json vs = Json::array();
  for (const auto& v : versions) {
    vs.push_back(Json{{"version", v.version},
                      {"scored_at", v.scored_at},
                      {"cutoff", v.cutoff},
                      {"customers", v.customers},
                      {"segments", v.segments},
                      {"features", v.features}});
  }
  Json j{{"id", id},
         {"model", model},
         {"published_at", published_at},
         {"default_version", default_version},
         {"versions", std::move(vs)},
         {"bytes", bytes}};
  if (split) j["split"] = split->ToJson();
  return j;
}

Result<SnapshotInfo> SnapshotInfo::FromJson(const Json& j) {
  try {
    SnapshotInfo s;
    s.id = j.at("id").get<std::string>();
    s.model = j.at("model").get<std::string>();
    s.published_at = j.at("published_at").get<std::string>();
    s.default_version = j.at("default_version").get<int64_t>();
    s.bytes = j.value("bytes", int64_t{0});
    for (const auto& v : j.at("versions")) {
      PublishedVersion p;
      p.version = v.at("version").get<int64_t>();
      p.scored_at = v.at("scored_at").get<std::string>();
      p.cutoff = v.at("cutoff").get<std::string>();
      p.customers = v.at("customers").get<int64_t>();
      p.segments = v.at("segments").get<std::vector<std::string>>();
      p.features = v.at("features").get<std::vector<std::string>>();
      s.versions.push_back(std::move(p));
    }
    if (j.contains("split") && !j["split"].is_null()) {
      ENGAGE_ASSIGN_OR_RETURN(TrafficSplit split, TrafficSplit::FromJson(j["split"]));
      s.split = std::move(split);
    }
    return s;
  } catch (const Json::exception& e) {
    return DataLossError(fmt::format("snapshot description is damaged: {}", e.what()));
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

namespace {
std::atomic<uint64_t> next_env_id{1};
}  // namespace

struct Snapshot::Env {
  MDB_env* env = nullptr;
  std::unordered_map<int64_t, MDB_dbi> dbis;
  const uint64_t id = next_env_id.fetch_add(1, std::memory_order_relaxed);  // never reused
  // Every read transaction begun on this snapshot, one per thread, aborted when it closes.
  std::mutex txns_mu;
  std::unordered_map<std::thread::id, MDB_txn*> txns;

  // This thread's read transaction on the snapshot. A snapshot never changes, so a transaction
  // can stay open for good. A lookup finds it in a thread-local cache of the last two snapshots
  // the thread read, taking no lock (a shared pool's mutex, contended by two event loops, put
  // milliseconds into the latency tail); a miss looks in `txns`, so a thread never has two.
  Result<MDB_txn*> ThreadTxn() {
    struct Slot {
      uint64_t env = 0;
      MDB_txn* txn = nullptr;
    };
    thread_local std::array<Slot, 2> slots;
    thread_local size_t next = 0;
    for (const Slot& slot : slots) {
      if (slot.env == id) return slot.txn;
    }
    MDB_txn* txn = nullptr;
    {
      std::lock_guard<std::mutex> lock(txns_mu);
      MDB_txn*& mine = txns[std::this_thread::get_id()];
      if (mine == nullptr) {
        int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &mine);
        if (rc != 0) {
          txns.erase(std::this_thread::get_id());
          return LmdbError(rc, "txn_begin");
        }
      }
      txn = mine;
    }
    slots[next++ % slots.size()] = {id, txn};
    return txn;
  }
  ~Env() {
    for (const auto& [thread, t] : txns) mdb_txn_abort(t);
    if (env != nullptr) mdb_env_close(env);
  }
};

Snapshot::~Snapshot() = default;

Result<std::shared_ptr<Snapshot>> Snapshot::Open(const std::string& dir) {
  std::shared_ptr<Snapshot> s(new Snapshot());
  s->dir_ = dir;
  ENGAGE_ASSIGN_OR_RETURN(std::string text, PosixFileSystem().ReadFile(dir + "/info.json"));
  ENGAGE_ASSIGN_OR_RETURN(Json j, ParseJson(text, dir + "/info.json"));
  ENGAGE_ASSIGN_OR_RETURN(s->info_, SnapshotInfo::FromJson(j));
  s->env_ = std::make_unique<Env>();
  int rc = mdb_env_create(&s->env_->env);
  if (rc != 0) return LmdbError(rc, "env_create");
  // Few databases (one per version): a read transaction's set-up grows with this number.
  mdb_env_set_maxdbs(s->env_->env, static_cast<MDB_dbi>(s->info_.versions.size() + 1));
  // Snapshots never change once published: no lock file, no reader table, no read-ahead (random
  // lookups), transactions not tied to threads.
  rc = mdb_env_open(s->env_->env, dir.c_str(), MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS | MDB_NORDAHEAD,
                    0644);
  if (rc != 0) return LmdbError(rc, fmt::format("open '{}'", dir));
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(s->env_->env, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError(rc, "txn_begin");
  for (const auto& v : s->info_.versions) {
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn, DbName(v.version).c_str(), 0, &dbi);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return DataLossError(fmt::format("snapshot '{}' lacks the records of version {}: {}", dir,
                                       v.version, mdb_strerror(rc)));
    }
    s->env_->dbis[v.version] = dbi;
  }
  // Committing (not aborting) keeps the database handles open for later transactions.
  rc = mdb_txn_commit(txn);
  if (rc != 0) return LmdbError(rc, "txn_commit");
  return s;
}

Result<bool> Snapshot::AppendJson(std::string_view customer_id, int64_t version,
                                  std::string* out) const {
  const PublishedVersion* pv = info_.Find(version);
  if (pv == nullptr) {
    return NotFoundError(fmt::format("model {} version {} is not published", info_.model,
                                     version == 0 ? info_.default_version : version));
  }
  MDB_dbi dbi = env_->dbis.at(pv->version);
  ENGAGE_ASSIGN_OR_RETURN(MDB_txn * txn, env_->ThreadTxn());
  MDB_val key{customer_id.size(), const_cast<char*>(customer_id.data())};
  MDB_val val;
  int rc = mdb_get(txn, dbi, &key, &val);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return LmdbError(rc, "get");
  const char* p = static_cast<const char*>(val.mv_data);
  if (val.mv_size < kHeaderBytes ||
      val.mv_size != kHeaderBytes + kReasonBytes * static_cast<unsigned char>(p[1])) {
    return DataLossError(fmt::format("damaged record for customer '{}'", customer_id));
  }
  auto segment = static_cast<unsigned char>(p[0]);
  auto reasons = static_cast<unsigned char>(p[1]);
  out->append("{\"customer_id\":");
  AppendString(out, customer_id);
  out->append(",\"model\":");
  AppendString(out, info_.model);
  fmt::format_to(std::back_inserter(*out), ",\"model_version\":{},\"score\":", pv->version);
  AppendNumber(out, ReadFloat(p + 2));
  out->append(",\"segment\":");
  AppendString(out, segment < pv->segments.size() ? pv->segments[segment] : "");
  out->append(",\"p_alive\":");
  AppendNumber(out, ReadFloat(p + 6));
  out->append(",\"expected_transactions\":");
  AppendNumber(out, ReadFloat(p + 10));
  out->append(",\"clv\":");
  AppendNumber(out, ReadFloat(p + 14));
  out->append(",\"reasons\":[");
  for (unsigned i = 0; i < reasons; ++i) {
    const char* r = p + kHeaderBytes + i * kReasonBytes;
    uint16_t f;
    std::memcpy(&f, r, sizeof f);
    out->append(i == 0 ? "{\"feature\":" : ",{\"feature\":");
    AppendString(out, f < pv->features.size() ? pv->features[f] : "");
    out->append(",\"contribution\":");
    AppendNumber(out, ReadFloat(r + 2));
    out->push_back('}');
  }
  out->append("],\"cutoff\":\"");
  out->append(pv->cutoff);
  out->append("\",\"scored_at\":\"");
  out->append(pv->scored_at);
  out->append("\"}");
  return true;
}

Result<std::unique_ptr<PredictionStore>> PredictionStore::Open(const HomePaths& home) {
  std::unique_ptr<PredictionStore> store(new PredictionStore(home));
  ENGAGE_ASSIGN_OR_RETURN(bool switched, store->Refresh());
  (void)switched;
  return store;
}

namespace {
// Store generations: never reused, so a thread's copy of one store's snapshot can never pass
// for another's.
std::atomic<uint64_t> next_generation{1};
uint64_t NextGeneration() { return next_generation.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

PredictionStore::PredictionStore(HomePaths home)
    : home_(std::move(home)), generation_(NextGeneration()) {}

std::shared_ptr<const Snapshot> PredictionStore::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

const std::shared_ptr<const Snapshot>& PredictionStore::CurrentOnThisThread() const {
  thread_local uint64_t seen_generation = 0;
  thread_local std::shared_ptr<const Snapshot> snapshot;
  uint64_t generation = generation_.load(std::memory_order_acquire);
  if (generation != seen_generation) {
    snapshot = Current();
    seen_generation = generation;
  }
  return snapshot;
}

Result<bool> PredictionStore::Refresh() { return RefreshAttempt(0); }

Result<bool> PredictionStore::RefreshAttempt(int attempt) {
  auto text = PosixFileSystem().ReadFile(CurrentFile(home_));
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return NotFoundError(
          fmt::format("no predictions published in '{}': run `engage score` then `engage publish`",
                      ServingDir(home_)));
    }
    return text.status();
  }
  std::string id = *text;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (id == current_id_) return false;
  }
  auto snap = Snapshot::Open(SnapshotsDir(home_) + "/" + id);
  if (!snap.ok() && snap.status().code() == StatusCode::kNotFound) {
    // Publishes in quick succession may remove a snapshot between reading CURRENT and opening
    // it: CURRENT then names a newer one.
    if (++attempt < 5) return RefreshAttempt(attempt);
  }
  if (!snap.ok()) return snap.status();
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(*snap);
  current_id_ = id;
  generation_.store(NextGeneration(), std::memory_order_release);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Publishing

namespace {

// An LMDB environment being written.
class Writer {
 public:
  ~Writer() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    if (env_ != nullptr) mdb_env_close(env_);
  }
  Status Open(const std::string& dir, size_t map_bytes) {
    int rc = mdb_env_create(&env_);
    if (rc != 0) return LmdbError(rc, "env_create");
    mdb_env_set_maxdbs(env_, 1024);
    mdb_env_set_mapsize(env_, map_bytes);
    // No syncs while writing: the snapshot is invisible until it is synced and renamed.
    rc = mdb_env_open(env_, dir.c_str(), MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOLOCK, 0644);
    if (rc != 0) return LmdbError(rc, fmt::format("open '{}'", dir));
    return Status::Ok();
  }
  Status Begin(int64_t version) {
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn_);
    if (rc != 0) return LmdbError(rc, "txn_begin");
    rc = mdb_dbi_open(txn_, DbName(version).c_str(), MDB_CREATE, &dbi_);
    if (rc != 0) return LmdbError(rc, "dbi_open");
    return Status::Ok();
  }
  // Keys must arrive in ascending byte order.
  Status Put(std::string_view key, std::string_view value) {
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), const_cast<char*>(value.data())};
    int rc = mdb_put(txn_, dbi_, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) {
      return InvalidArgumentError(
          fmt::format("customer '{}' has more than one prediction in the scoring run", key));
    }
    if (rc != 0) return LmdbError(rc, fmt::format("put '{}'", key));
    if (++pending_ >= kCommitEvery) return Commit(true);
    return Status::Ok();
  }
  Status Commit(bool reopen) {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    pending_ = 0;
    if (rc != 0) return LmdbError(rc, "commit");
    if (!reopen) return Status::Ok();
    rc = mdb_txn_begin(env_, nullptr, 0, &txn_);
    if (rc != 0) return LmdbError(rc, "txn_begin");
    return Status::Ok();
  }
  Status Sync() {
    int rc = mdb_env_sync(env_, 1);
    if (rc != 0) return LmdbError(rc, "sync");
    return Status::Ok();
  }

 private:
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
  MDB_dbi dbi_ = 0;
  int64_t pending_ = 0;
};

// The reasons column: [{"feature": name, "contribution": x}, ...].
Status EncodeReasons(const std::string& text, std::string_view customer,
                     std::unordered_map<std::string, uint16_t>* features,
                     std::vector<std::string>* feature_names, std::string* rec) {
  auto j = ParseJson(text, "reasons");
  if (!j.ok() || !j->is_array() || j->size() > kMaxReasons) {
    return InvalidArgumentError(
        fmt::format("customer '{}': reasons are not a JSON array of at most {} objects: {}",
                    customer, kMaxReasons, text));
  }
  (*rec)[1] = static_cast<char>(j->size());
  for (const auto& r : *j) {
    if (!r.is_object() || !r.contains("feature") || !r["feature"].is_string() ||
        !r.contains("contribution") || !r["contribution"].is_number()) {
      return InvalidArgumentError(
          fmt::format("customer '{}': a reason lacks feature or contribution: {}", customer, text));
    }
    const std::string& name = r["feature"].get_ref<const std::string&>();
    auto it = features->find(name);
    if (it == features->end()) {
      if (feature_names->size() > 0xFFFF) {
        return InvalidArgumentError("more than 65,536 distinct reason features");
      }
      it = features->emplace(name, static_cast<uint16_t>(feature_names->size())).first;
      feature_names->push_back(name);
    }
    uint16_t idx = it->second;
    float c = r["contribution"].get<float>();
    rec->append(reinterpret_cast<const char*>(&idx), sizeof idx);
    rec->append(reinterpret_cast<const char*>(&c), sizeof c);
  }
  return Status::Ok();
}

// A query's result read chunk by chunk as DuckDB produces it, so memory stays bounded however
// many rows there are (duckdb_query would materialise them all).
class StreamingQuery {
 public:
  ~StreamingQuery() {
    if (chunk_ != nullptr) duckdb_destroy_data_chunk(&chunk_);
    if (has_result_) duckdb_destroy_result(&result_);
    if (pending_ != nullptr) duckdb_destroy_pending(&pending_);
    if (stmt_ != nullptr) duckdb_destroy_prepare(&stmt_);
  }
  Status Start(lake::DuckConn& conn, const std::string& sql) {
    if (duckdb_prepare(conn.raw(), sql.c_str(), &stmt_) != DuckDBSuccess) {
      return InvalidArgumentError(duckdb_prepare_error(stmt_));
    }
    if (duckdb_pending_prepared_streaming(stmt_, &pending_) != DuckDBSuccess) {
      return InvalidArgumentError(duckdb_pending_error(pending_));
    }
    has_result_ = true;
    if (duckdb_execute_pending(pending_, &result_) != DuckDBSuccess) {
      return InvalidArgumentError(duckdb_result_error(&result_));
    }
    return Status::Ok();
  }
  // The next chunk (owned by this object until the next call), or null at the end.
  duckdb_data_chunk Next() {
    if (chunk_ != nullptr) duckdb_destroy_data_chunk(&chunk_);
    chunk_ = duckdb_fetch_chunk(result_);
    return chunk_;
  }
  // Set when the stream ended on an error rather than at the end of the rows.
  std::optional<std::string> Error() {
    const char* e = duckdb_result_error(&result_);
    return e != nullptr ? std::optional<std::string>(e) : std::nullopt;
  }

 private:
  duckdb_prepared_statement stmt_ = nullptr;
  duckdb_pending_result pending_ = nullptr;
  duckdb_result result_{};
  bool has_result_ = false;
  duckdb_data_chunk chunk_ = nullptr;
};

// One column of a chunk.
struct Column {
  void* data;
  uint64_t* validity;
  bool Valid(idx_t row) const {
    return validity == nullptr || duckdb_validity_row_is_valid(validity, row);
  }
  std::string_view Text(idx_t row) const {
    auto* v = static_cast<duckdb_string_t*>(data) + row;
    return {duckdb_string_t_data(v), duckdb_string_t_length(*v)};
  }
  double Double(idx_t row) const { return static_cast<double*>(data)[row]; }
};

Status WriteVersion(lake::DuckConn& conn, const std::string& source, const std::string& model,
                    int64_t version, Writer* w, PublishedVersion* out) {
  std::string where =
      fmt::format("model = {} AND model_version = {}", lake::SqlQuote(model), version);
  ENGAGE_ASSIGN_OR_RETURN(
      lake::DuckResult latest,
      conn.Query(fmt::format("SELECT strftime(max(scored_at), '%Y-%m-%dT%H:%M:%S.%fZ'), "
                             "max(scored_at)::VARCHAR, arg_max(cutoff, scored_at)::VARCHAR FROM "
                             "{} WHERE {}",
                             source, where)));
  if (latest.RowCount() == 0 || latest.IsNull(0, 0)) {
    return NotFoundError(fmt::format(
        "no predictions of {} version {} in the predictions table: run `engage score --model "
        "{}@{}` first",
        model, version, model, version));
  }
  out->version = version;
  out->scored_at = latest.Str(0, 0).value_or("");
  out->cutoff = latest.Str(2, 0).value_or("");
  std::string at = latest.Str(1, 0).value_or("");
  StreamingQuery rows;
  ENGAGE_RETURN_IF_ERROR(rows.Start(
      conn, fmt::format("SELECT CAST(customer_id AS VARCHAR), CAST(segment AS VARCHAR), "
                        "CAST(score AS DOUBLE), CAST(p_alive AS DOUBLE), "
                        "CAST(expected_transactions AS DOUBLE), CAST(clv AS DOUBLE), "
                        "CAST(reasons AS VARCHAR) FROM {} WHERE {} AND scored_at = TIMESTAMP {} "
                        "ORDER BY 1",
                        source, where, lake::SqlQuote(at))));
  ENGAGE_RETURN_IF_ERROR(w->Begin(version));
  std::unordered_map<std::string, uint8_t> segments;
  std::unordered_map<std::string, uint16_t> features;
  std::string rec;
  while (duckdb_data_chunk chunk = rows.Next()) {
    idx_t n = duckdb_data_chunk_get_size(chunk);
    if (n == 0) break;
    Column cols[7];
    for (idx_t c = 0; c < 7; ++c) {
      duckdb_vector v = duckdb_data_chunk_get_vector(chunk, c);
      cols[c] = {duckdb_vector_get_data(v), duckdb_vector_get_validity(v)};
    }
    for (idx_t i = 0; i < n; ++i) {
      std::string_view id = cols[0].Valid(i) ? cols[0].Text(i) : std::string_view();
      std::string segment(cols[1].Valid(i) ? cols[1].Text(i) : std::string_view());
      auto seg = segments.find(segment);
      if (seg == segments.end()) {
        if (segments.size() >= 255) {
          return InvalidArgumentError(
              fmt::format("version {} has more than 255 segments", version));
        }
        seg = segments.emplace(segment, static_cast<uint8_t>(out->segments.size())).first;
        out->segments.push_back(segment);
      }
      rec.assign(2, '\0');
      rec[0] = static_cast<char>(seg->second);
      for (int c = 2; c <= 5; ++c) {
        float v = cols[c].Valid(i) ? static_cast<float>(cols[c].Double(i)) : NAN;
        rec.append(reinterpret_cast<const char*>(&v), sizeof v);
      }
      if (cols[6].Valid(i)) {
        ENGAGE_RETURN_IF_ERROR(
            EncodeReasons(std::string(cols[6].Text(i)), id, &features, &out->features, &rec));
      }
      ENGAGE_RETURN_IF_ERROR(w->Put(id, rec));
      ++out->customers;
    }
  }
  if (auto e = rows.Error()) return InternalError(fmt::format("reading predictions: {}", *e));
  return w->Commit(false);
}

}  // namespace

Json PublishReport::ToJson() const {
  return Json{{"snapshot", snapshot.ToJson()},
              {"seconds", seconds},
              {"bytes_per_customer", bytes_per_customer},
              {"removed_snapshots", removed_snapshots},
              {"removed_staging", removed_staging}};
}

Result<PublishReport> Publish(lake::Lake& lake, const PublishOptions& options, const Clock& clock) {
  auto t0 = std::chrono::steady_clock::now();
  const HomePaths& home = lake.home();
  ENGAGE_ASSIGN_OR_RETURN(auto files, lake.catalog().Files("predictions"));
  if (files.empty()) {
    return NotFoundError("the predictions table is empty: run `engage score` first");
  }
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(lake.AbsPath(f.path));
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckDb db, lake::DuckDb::Open({.memory_limit = options.memory_limit,
                                                               .temp_directory = home.tmp()}));
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckConn conn, db.Connect());
  ENGAGE_RETURN_IF_ERROR(conn.Exec("SET TimeZone='UTC'"));
  const std::string source =
      fmt::format("read_parquet({}, union_by_name=true)", lake::SqlList(paths));

  std::vector<int64_t> versions = options.versions;
  if (versions.empty()) {
    ENGAGE_ASSIGN_OR_RETURN(
        lake::DuckResult latest,
        conn.Query(fmt::format("SELECT max(model_version) FROM {} WHERE model = {}", source,
                               lake::SqlQuote(options.model))));
    if (latest.RowCount() == 0 || latest.IsNull(0, 0)) {
      return NotFoundError(
          fmt::format("no predictions of model '{}': run `engage score --model {}@champion` first",
                      options.model, options.model));
    }
    versions.push_back(latest.Int(0, 0));
  }

  // One publish at a time; then whatever staging is left is a killed publish's.
  ENGAGE_ASSIGN_OR_RETURN(PublishLock publish_lock, PublishLock::Acquire(SnapshotsDir(home)));
  PublishReport report;
  report.removed_staging = RemoveStaleStaging(SnapshotsDir(home));
  SnapshotInfo& info = report.snapshot;
  info.id = NewId(clock);
  info.model = options.model;
  info.published_at = FormatIsoUtc(clock.NowMicros());
  info.default_version = versions.front();
  if (options.split) {
    for (const auto& arm : options.split->arms) {
      if (std::find(versions.begin(), versions.end(), arm.version) == versions.end()) {
        return InvalidArgumentError(
            fmt::format("the split's arm '{}' serves version {}, which is not being published",
                        arm.name, arm.version));
      }
    }
    info.split = options.split;
  }
  std::error_code ec;
  const std::string dir = SnapshotsDir(home) + "/" + info.id;
  const std::string staging = dir + ".tmp";
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) {
    return PermissionDeniedError(fmt::format("cannot create '{}': {}", staging, ec.message()));
  }
  // Rows of the latest scoring run of each version: the map size.
  std::string listed;
  for (int64_t v : versions) listed += (listed.empty() ? "" : ", ") + std::to_string(v);
  ENGAGE_ASSIGN_OR_RETURN(
      lake::DuckResult count,
      conn.Query(fmt::format(
          "SELECT count(*) FROM {src} p JOIN (SELECT model_version AS v, max(scored_at) AS at "
          "FROM {src} WHERE model = {m} GROUP BY 1) l ON p.model_version = l.v AND p.scored_at = "
          "l.at WHERE p.model = {m} AND p.model_version IN ({listed})",
          fmt::arg("src", source), fmt::arg("m", lake::SqlQuote(options.model)),
          fmt::arg("listed", listed))));
  size_t map_bytes = std::max(kMinMapBytes, static_cast<size_t>(count.Int(0, 0)) * kMapBytesPerRow);
  int64_t records = 0;
  {
    Writer w;
    Status s = w.Open(staging, map_bytes);
    for (size_t i = 0; s.ok() && i < versions.size(); ++i) {
      if (std::find(versions.begin(), versions.begin() + static_cast<long>(i), versions[i]) !=
          versions.begin() + static_cast<long>(i)) {
        continue;  // listed twice
      }
      PublishedVersion pv;
      s = WriteVersion(conn, source, options.model, versions[i], &w, &pv);
      records += pv.customers;
      info.versions.push_back(std::move(pv));
    }
    if (s.ok()) s = w.Sync();
    if (!s.ok()) {
      fs::remove_all(staging, ec);
      return s;
    }
  }
  info.bytes = static_cast<int64_t>(fs::file_size(staging + "/data.mdb", ec));
  PosixFileSystem files_io;
  ENGAGE_RETURN_IF_ERROR(
      files_io.WriteFileAtomic(staging + "/info.json", DumpJson(info.ToJson(), 2)));
  fs::rename(staging, dir, ec);
  if (ec) return InternalError(fmt::format("cannot rename '{}': {}", staging, ec.message()));
  // The switch: readers that open CURRENT from now on get the new snapshot.
  ENGAGE_RETURN_IF_ERROR(files_io.WriteFileAtomic(CurrentFile(home), info.id + "\n"));

  // Old snapshots beyond `keep` go; a server still reading one keeps its mapping until it
  // switches (unlinked files stay readable while mapped).
  std::vector<std::string> ids;
  for (const auto& e : fs::directory_iterator(SnapshotsDir(home), ec)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && name.find('.') == std::string::npos) ids.push_back(name);
  }
  std::sort(ids.begin(), ids.end());
  int keep = std::max(1, options.keep);
  for (size_t i = 0; i + static_cast<size_t>(keep) < ids.size(); ++i) {
    if (ids[i] == info.id) continue;
    fs::remove_all(SnapshotsDir(home) + "/" + ids[i], ec);
    if (!ec) ++report.removed_snapshots;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report.bytes_per_customer =
      records > 0 ? static_cast<double>(info.bytes) / static_cast<double>(records) : 0;
  return report;
}

std::string PublishReport::ToText() const {
  const auto& s = snapshot;
  std::string out =
      fmt::format("published snapshot {} of {} in {:.2f} s: {:.1f} MB, {:.1f} bytes per customer\n",
                  s.id, s.model, seconds, static_cast<double>(s.bytes) / 1e6, bytes_per_customer);
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : s.versions) {
    rows.push_back({std::to_string(v.version), v.version == s.default_version ? "yes" : "",
                    std::to_string(v.customers), v.scored_at, v.cutoff});
  }
  return out + FormatTable({"version", "default", "customers", "scored_at", "cutoff"}, rows);
}

}  // namespace engage::serve
