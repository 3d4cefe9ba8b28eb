#include "engage/serve/ab.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

#include "engage/core/ids.h"
#include "engage/core/text.h"
#include "engage/lake/duck.h"
#include "engage/sql/query.h"

namespace engage::serve {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS traffic_splits (
  model TEXT PRIMARY KEY,
  split TEXT NOT NULL,  -- TrafficSplit as JSON
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ab_exposures (
  model TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  arm TEXT NOT NULL,
  version INTEGER NOT NULL,
  first_served_micros INTEGER NOT NULL,
  PRIMARY KEY (model, customer_id)
);
)sql";

constexpr int kBasisPoints = 10000;
constexpr size_t kMaxSeen = 10'000'000;  // in-memory dedupe of exposures; SQLite dedupes too
constexpr double kZ95 = 1.959963984540054;

// FNV-1a 64: stable across platforms and releases, unlike std::hash.
uint64_t Fnv1a(std::string_view a, std::string_view b) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  };
  mix(a);
  mix(std::string_view("\0", 1));
  mix(b);
  // Final avalanche (splitmix64) so nearby ids spread over the buckets.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

// Wilson score interval for k successes in n trials.
std::pair<double, double> Wilson(int64_t k, int64_t n) {
  if (n == 0) return {0, 0};
  double p = static_cast<double>(k) / static_cast<double>(n), nn = static_cast<double>(n);
  double z2 = kZ95 * kZ95;
  double center = (p + z2 / (2 * nn)) / (1 + z2 / nn);
  double half = kZ95 * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / (1 + z2 / nn);
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Status TrafficSplit::Validate() const {
  if (model.empty()) return InvalidArgumentError("a traffic split needs a model");
  if (arms.size() < 2 || arms.size() > 10) {
    return InvalidArgumentError(
        fmt::format("a traffic split has 2 to 10 arms, this one has {}", arms.size()));
  }
  std::set<std::string> names;
  double total = 0;
  for (const auto& a : arms) {
    if (a.name.empty() || a.ref.empty()) return InvalidArgumentError("an arm needs a name");
    if (!names.insert(a.name).second) {
      return InvalidArgumentError(fmt::format("arm '{}' is listed twice", a.name));
    }
    if (!(a.weight > 0) || a.weight > 100) {
      return InvalidArgumentError(
          fmt::format("arm '{}' has weight {}: weights are percentages above 0", a.name, a.weight));
    }
    total += a.weight;
  }
  if (std::abs(total - 100) > 1e-6) {
    return InvalidArgumentError(fmt::format("the arms' weights sum to {}, not 100", total));
  }
  return Status::Ok();
}

size_t TrafficSplit::Assign(std::string_view customer_id) const {
  int bucket = static_cast<int>(Fnv1a(salt, customer_id) % kBasisPoints);
  double edge = 0;
  for (size_t i = 0; i < arms.size(); ++i) {
    edge += arms[i].weight * (kBasisPoints / 100.0);
    if (bucket < std::lround(edge)) return i;
  }
  return arms.size() - 1;
}

Json TrafficSplit::ToJson() const {
  Json a = Json::array();
  for (const auto& arm : arms) {
    Json j = {{"name", arm.name}, {"ref", arm.ref}, {"weight", arm.weight}};
    if (arm.version > 0) j["version"] = arm.version;
    a.push_back(std::move(j));
  }
  return Json{{"model", model}, {"arms", std::move(a)}, {"salt", salt}, {"updated_at", updated_at}};
}

std::string TrafficSplit::ToText() const {
  std::string out = fmt::format("traffic split of {}:", model);
  for (size_t i = 0; i < arms.size(); ++i) {
    out += fmt::format("{} {}={:g}% ({}@{})", i == 0 ? "" : ",", arms[i].name, arms[i].weight,
                       model, arms[i].ref);
  }
  return out + fmt::format("\nsalt '{}'{}\n", salt.empty() ? model : salt,
                           updated_at.empty() ? "" : fmt::format(", set {}", updated_at));
}

Result<TrafficSplit> TrafficSplit::FromJson(const Json& j) {
  try {
    TrafficSplit s;
    s.model = j.at("model").get<std::string>();
    s.salt = j.value("salt", std::string());
    s.updated_at = j.value("updated_at", std::string());
    for (const auto& a : j.at("arms")) {
      SplitArm arm;
      arm.name = a.at("name").get<std::string>();
      arm.ref = a.value("ref", arm.name);
      arm.weight = a.at("weight").get<double>();
      arm.version = a.value("version", int64_t{0});
      s.arms.push_back(std::move(arm));
    }
    ENGAGE_RETURN_IF_ERROR(s.Validate());
    return s;
  } catch (const Json::exception& e) {
    return InvalidArgumentError(fmt::format("bad traffic split: {}", e.what()));
  }
}

Result<TrafficSplit> TrafficSplit::Parse(const std::string& model,
                                         const std::vector<std::string>& arms,
                                         const std::string& salt) {
  TrafficSplit s;
  s.model = model;
  s.salt = salt.empty() ? model : salt;
  for (const auto& spec : arms) {
    size_t eq = spec.rfind('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError(
          fmt::format("arm '{}' is not name=weight or name:ref=weight (e.g. champion=90)", spec));
    }
    SplitArm a;
    std::string head = spec.substr(0, eq);
    size_t colon = head.find(':');
    a.name = head.substr(0, colon);
    a.ref = colon == std::string::npos ? a.name : head.substr(colon + 1);
    try {
      size_t used = 0;
      a.weight = std::stod(spec.substr(eq + 1), &used);
      if (used != spec.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return InvalidArgumentError(fmt::format("arm '{}': the weight is not a number", spec));
    }
    s.arms.push_back(std::move(a));
  }
  ENGAGE_RETURN_IF_ERROR(s.Validate());
  return s;
}

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<SplitStore>> SplitStore::Open(const std::string& meta_db,
                                                     const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  return std::unique_ptr<SplitStore>(new SplitStore(std::move(db), clock));
}

Result<std::optional<TrafficSplit>> SplitStore::Get(const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          db_.Prepare("SELECT split FROM traffic_splits WHERE model = ?"));
  st.Bind(1, model);
  ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<TrafficSplit>();
  ENGAGE_ASSIGN_OR_RETURN(Json j, ParseJson(st.Text(0), "traffic split"));
  ENGAGE_ASSIGN_OR_RETURN(TrafficSplit s, TrafficSplit::FromJson(j));
  return std::optional<TrafficSplit>(std::move(s));
}

Status SplitStore::Put(TrafficSplit split) {
  ENGAGE_RETURN_IF_ERROR(split.Validate());
  split.updated_at = FormatIsoUtc(clock_.NowMicros());
  for (auto& a : split.arms) a.version = 0;  // resolved at publish time
  std::lock_guard<std::mutex> lock(mu_);
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st, db_.Prepare("INSERT OR REPLACE INTO traffic_splits (model, split, updated_at) "
                                 "VALUES (?, ?, ?)"));
  st.Bind(1, split.model).Bind(2, DumpJson(split.ToJson())).Bind(3, split.updated_at);
  return st.Run();
}

Status SplitStore::Remove(const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st, db_.Prepare("DELETE FROM traffic_splits WHERE model = ?"));
  st.Bind(1, model);
  ENGAGE_RETURN_IF_ERROR(st.Run());
  if (db_.Changes() == 0)
    return NotFoundError(fmt::format("model '{}' has no traffic split", model));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

ExposureLog::ExposureLog(SqliteDb db, const Clock& clock) : clock_(clock), db_(std::move(db)) {
  writer_ = std::thread([this] { Run(); });
}

Result<std::unique_ptr<ExposureLog>> ExposureLog::Open(const std::string& meta_db,
                                                       const Clock& clock) {
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(meta_db));
  ENGAGE_RETURN_IF_ERROR(db.Exec(kSchema));
  return std::unique_ptr<ExposureLog>(new ExposureLog(std::move(db), clock));
}

ExposureLog::~ExposureLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
  Status s = Flush();
  if (!s.ok()) spdlog::warn("A/B exposures not written: {}", s.ToString());
}

void ExposureLog::Record(const std::string& model, std::string_view customer_id,
                         const std::string& arm, int64_t version) {
  std::string key = model;
  key.push_back('\0');
  key.append(customer_id);
  std::lock_guard<std::mutex> lock(mu_);
  if (seen_.count(key)) return;
  if (seen_.size() < kMaxSeen) seen_.insert(std::move(key));
  buffer_.push_back({model, std::string(customer_id), arm, version, clock_.NowMicros()});
}

void ExposureLog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(500));
    lock.unlock();
    Status s = Flush();
    if (!s.ok()) spdlog::warn("A/B exposures: {}", s.ToString());
    lock.lock();
  }
}

Status ExposureLog::Flush() {
  std::lock_guard<std::mutex> db_lock(db_mu_);
  return WriteLocked();
}

Status ExposureLog::WriteLocked() {
  std::vector<Exposure> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(buffer_);
  }
  if (batch.empty()) return Status::Ok();
  Status s = [&]() -> Status {
    ENGAGE_RETURN_IF_ERROR(db_.Exec("BEGIN"));
    ENGAGE_ASSIGN_OR_RETURN(
        SqliteStmt st, db_.Prepare("INSERT OR IGNORE INTO ab_exposures (model, customer_id, "
                                   "arm, version, first_served_micros) VALUES (?, ?, ?, ?, ?)"));
    for (const auto& e : batch) {
      st.Reset();
      st.Bind(1, e.model)
          .Bind(2, e.customer_id)
          .Bind(3, e.arm)
          .Bind(4, e.version)
          .Bind(5, e.at_micros);
      ENGAGE_RETURN_IF_ERROR(st.Run());
    }
    return db_.Exec("COMMIT");
  }();
  if (!s.ok()) {
    (void)db_.Exec("ROLLBACK");
    std::lock_guard<std::mutex> lock(mu_);
    buffer_.insert(buffer_.begin(), batch.begin(), batch.end());  // retried next time
  }
  return s;
}

// ---------------------------------------------------------------------------------------------

Json AbReport::ToJson() const {
  Json a = Json::array();
  const bool control_known = !arms.empty() && arms.front().labelled > 0;
  for (const auto& o : arms) {
    // No outcome known yet (every horizon still open): no rate, rather than a confident 0%.
    const bool known = o.labelled > 0, diff_known = known && control_known;
    a.push_back(Json{{"arm", o.arm},
                     {"version", o.version},
                     {"exposed", o.exposed},
                     {"labelled", o.labelled},
                     {"engaged", o.engaged},
                     {"rate", known ? Json(o.rate) : Json()},
                     {"ci95", known ? Json{o.ci_low, o.ci_high} : Json()},
                     {"diff_vs_control", diff_known ? Json(o.diff) : Json()},
                     {"diff_ci95", diff_known ? Json{o.diff_ci_low, o.diff_ci_high} : Json()}});
  }
  return Json{{"model", model},
              {"horizon_days", horizon_days},
              {"labels_until", labels_until},
              {"arms", std::move(a)}};
}

Result<AbReport> ReportAb(sql::QueryEngine& engine, const HomePaths& home,
                          const EngagementConfig& config, const std::string& model,
                          int horizon_days) {
  if (horizon_days < 1) return InvalidArgumentError("the horizon must be at least 1 day");
  // The exposures, from meta.db into a Parquet file the sandboxed engine may read (tmp/).
  ENGAGE_ASSIGN_OR_RETURN(SqliteDb meta, SqliteDb::Open(home.meta_db()));
  ENGAGE_RETURN_IF_ERROR(meta.Exec(kSchema));
  ENGAGE_ASSIGN_OR_RETURN(SqliteStmt st,
                          meta.Prepare("SELECT customer_id, arm, version, first_served_micros FROM "
                                       "ab_exposures WHERE model = ? ORDER BY rowid"));
  st.Bind(1, model);
  std::error_code ec;
  std::filesystem::create_directories(home.tmp(), ec);
  std::string file =
      fmt::format("{}/ab-exposures-{}.parquet", home.tmp(), NewId(SystemClock::Default()));
  std::vector<std::string> arm_order;
  std::map<std::string, int64_t> arm_versions;
  {
    ENGAGE_ASSIGN_OR_RETURN(lake::DuckDb db, lake::DuckDb::Open({.threads = 1}));
    ENGAGE_ASSIGN_OR_RETURN(lake::DuckConn conn, db.Connect());
    ENGAGE_RETURN_IF_ERROR(conn.Exec(
        "CREATE TABLE x (customer_id VARCHAR, arm VARCHAR, version BIGINT, first_served_at "
        "TIMESTAMP)"));
    {
      lake::ChunkWriter w(
          conn, "x",
          {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_TIMESTAMP});
      for (;;) {
        ENGAGE_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        std::string id = st.Text(0), arm = st.Text(1);
        if (!arm_versions.count(arm)) arm_order.push_back(arm);
        arm_versions[arm] = st.Int(2);
        w.SetString(0, id.data(), id.size());
        w.SetString(1, arm.data(), arm.size());
        w.Set<int64_t>(2, st.Int(2));
        w.Set<int64_t>(3, st.Int(3));
        ENGAGE_RETURN_IF_ERROR(w.Commit());
      }
      ENGAGE_RETURN_IF_ERROR(w.Close());
    }
    if (arm_order.empty()) {
      return NotFoundError(fmt::format(
          "no A/B exposures for model '{}': set a split (engage ab split) and serve predictions",
          model));
    }
    ENGAGE_RETURN_IF_ERROR(
        conn.Exec(fmt::format("COPY x TO {} (FORMAT parquet)", lake::SqlQuote(file))));
  }
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      std::error_code e;
      std::filesystem::remove(path, e);
    }
  } cleanup{file};

  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* events,
                          engine.lake().config().Table(config.events_table));
  std::string time_col = config.time_column.empty() ? events->time_column : config.time_column;
  std::string types;
  for (const auto& q : config.qualifying_types) {
    types += (types.empty() ? "" : ", ") + lake::SqlQuote(q);
  }
  std::string t = lake::SqlIdent(time_col);
  std::string sql = fmt::format(
      "WITH x AS (SELECT * FROM read_parquet({file})), "
      "lim AS (SELECT max({t}) AS until FROM {ev}), "
      "q AS (SELECT CAST({cust} AS VARCHAR) AS customer_id, {t} AS t FROM {ev} "
      "      WHERE {type} IN ({types}) AND dt >= (SELECT CAST(min(first_served_at) AS DATE) FROM "
      "x)), "
      "lab AS (SELECT x.arm, x.customer_id, "
      "        x.first_served_at + INTERVAL ({h}) DAY <= (SELECT until FROM lim) AS done, "
      "        bool_or(q.t >= x.first_served_at AND q.t < x.first_served_at + INTERVAL ({h}) DAY) "
      "          AS engaged "
      "        FROM x LEFT JOIN q ON q.customer_id = x.customer_id GROUP BY ALL) "
      "SELECT arm, count(*), count(*) FILTER (WHERE done), "
      "       count(*) FILTER (WHERE done AND engaged), "
      "       strftime((SELECT until FROM lim), '%Y-%m-%dT%H:%M:%SZ') FROM lab GROUP BY arm",
      fmt::arg("file", lake::SqlQuote(file)), fmt::arg("t", t),
      fmt::arg("ev", lake::SqlIdent(config.events_table)),
      fmt::arg("cust", lake::SqlIdent(config.customer_column)),
      fmt::arg("type", lake::SqlIdent(config.type_column)), fmt::arg("types", types),
      fmt::arg("h", horizon_days));
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckResult r, engine.RunTrusted(sql, "ab-report"));
  AbReport report;
  report.model = model;
  report.horizon_days = horizon_days;
  std::map<std::string, ArmOutcome> by_arm;
  for (int64_t i = 0; i < r.RowCount(); ++i) {
    ArmOutcome o;
    o.arm = r.Str(0, i).value_or("");
    o.exposed = r.Int(1, i);
    o.labelled = r.Int(2, i);
    o.engaged = r.Int(3, i);
    report.labels_until = r.Str(4, i).value_or("");
    by_arm[o.arm] = o;
  }
  for (const auto& name : arm_order) {
    ArmOutcome o = by_arm[name];
    o.arm = name;
    o.version = arm_versions[name];
    o.rate = o.labelled > 0 ? static_cast<double>(o.engaged) / static_cast<double>(o.labelled) : 0;
    std::tie(o.ci_low, o.ci_high) = Wilson(o.engaged, o.labelled);
    report.arms.push_back(o);
  }
  // The difference from the control (first) arm: normal approximation.
  const ArmOutcome& c = report.arms.front();
  for (auto& o : report.arms) {
    o.diff = o.rate - c.rate;
    if (o.labelled > 0 && c.labelled > 0) {
      double se = std::sqrt(o.rate * (1 - o.rate) / static_cast<double>(o.labelled) +
                            c.rate * (1 - c.rate) / static_cast<double>(c.labelled));
      o.diff_ci_low = o.diff - kZ95 * se;
      o.diff_ci_high = o.diff + kZ95 * se;
    }
  }
  return report;
}

std::string AbReport::ToText() const {
  std::string out =
      fmt::format("A/B readout of {}: engaged within {} days of first exposure (labels until {})\n",
                  model, horizon_days, labels_until);
  std::vector<std::vector<std::string>> rows;
  const bool control_known = !arms.empty() && arms.front().labelled > 0;
  for (const auto& o : arms) {
    const bool known = o.labelled > 0;
    rows.push_back({o.arm, std::to_string(o.version), std::to_string(o.exposed),
                    std::to_string(o.labelled), std::to_string(o.engaged),
                    known ? fmt::format("{:.2f}% [{:.2f}, {:.2f}]", 100 * o.rate, 100 * o.ci_low,
                                        100 * o.ci_high)
                          : "n/a (no outcome yet)",
                    &o == &arms.front() ? "control"
                    : known && control_known
                        ? fmt::format("{:+.2f} pts [{:+.2f}, {:+.2f}]", 100 * o.diff,
                                      100 * o.diff_ci_low, 100 * o.diff_ci_high)
                        : "n/a"});
  }
  return out + FormatTable({"arm", "version", "exposed", "labelled", "engaged", "rate (95% CI)",
                            "vs control (95% CI)"},
                           rows);
}

}  // namespace engage::serve
