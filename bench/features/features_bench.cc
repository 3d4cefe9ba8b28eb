// Feature-building benchmark: Engage's FeatureBuilder against the same SQL run on a raw DuckDB
// connection over the same lake files, in one process.
//
//   features_bench [--customers N] [--reps K] [--threads T] [--work DIR] [--keep] [--home DIR]
//
// Setup (untimed, progress on stderr): in a fresh temporary directory under --work (default: the
// system's temp directory), `engage init`'s home is created, N customers (default 1,000,000)
// over 365 days are generated with engage::gen (Parquet), and customers and events are ingested
// into the lake with lake::Ingest, as `engage ingest` does. The generated files are then
// removed; the directory (home included) is removed at the end unless --keep. --home DIR reuses
// a home kept by an earlier run and skips generation and ingest.
// Scenarios, each through FeatureBuilder with the home's [engagement] config:
//  - scoring: Build({DataEnd()}), features for every customer at the day after the data;
//  - training: Build(TrainingCutoffs()), the training set (4 cutoffs by default).
// The reference runs, for each cutoff, the SQL text FeatureBuilder::Sql(cutoff) returns on its
// own DuckDB database, configured as QueryEngine::Open configures Engage's (same thread count,
// default memory limit, no external file cache, parquet metadata cache, UTC), with `events` and
// `customers` defined as QueryEngine defines them: views over read_parquet of the table's files
// in the lake with Hive partitioning on dt. It materialises the result (duckdb_query, then every
// chunk fetched). Engage's time includes its DataEnd() query (Build calls it), metering, the
// query history and the conversion into a FeatureFrame; the table shows DataEnd() alone too.
// Checked, untimed, on every repetition: the same row count, the same customer ids in the same
// order, and per column the same count of non-missing values and the same sum (within float
// rounding: Engage keeps floats); labels too where Engage knows them. Exits 1 if not.
// Each timing is the median of K repetitions. Prints a table, then one JSON object as the last
// line.
#include <duckdb.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "bench_util.h"
#include "engage/core/home.h"
#include "engage/features/features.h"
#include "engage/gen/generator.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "engage/sql/query.h"

namespace {

namespace fs = std::filesystem;
namespace features = engage::features;

using engage::bench::Median;
using engage::bench::Seconds;

struct Options {
  int64_t customers = 1000000;
  int reps = 3;
  int threads = 0;  // as QueryEngine::Open: 0 = all cores
  std::string work;
  std::string home;  // reuse this home: no generation or ingest
  bool keep = false;
};

// Order-sensitive hash of the customer ids, and per column the non-missing count and sum.
struct Summary {
  int64_t rows = 0;
  uint64_t id_hash = 1469598103934665603ull;
  std::vector<std::string> names;  // feature columns (label and customer_id excluded)
  std::vector<int64_t> present;
  std::vector<double> sum;
  std::vector<double> abs_sum;
  int64_t labels_known = 0;
  double label_sum = 0;

  void AddId(const char* s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
    id_hash = (id_hash ^ h) * 1099511628211ull + 0x9e3779b97f4a7c15ull;
  }
  void Add(size_t col, double v) {
    present[col] += 1;
    sum[col] += v;
    abs_sum[col] += std::fabs(v);
  }
  void Resize(std::vector<std::string> cols) {
    if (names.empty()) {
      names = std::move(cols);
      present.assign(names.size(), 0);
      sum.assign(names.size(), 0);
      abs_sum.assign(names.size(), 0);
    }
  }
};

double Elapsed(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Move-only owners of the raw DuckDB handles used by the reference.
struct DbCloser {
  void operator()(duckdb_database* p) const {
    duckdb_close(p);
    delete p;
  }
};
struct ConnCloser {
  void operator()(duckdb_connection* p) const {
    duckdb_disconnect(p);
    delete p;
  }
};
struct ChunkCloser {
  void operator()(duckdb_data_chunk* p) const {
    duckdb_destroy_data_chunk(p);
    delete p;
  }
};
using RawDb = std::unique_ptr<duckdb_database, DbCloser>;
using RawConn = std::unique_ptr<duckdb_connection, ConnCloser>;
using RawChunk = std::unique_ptr<duckdb_data_chunk, ChunkCloser>;

class RawResult {
 public:
  RawResult() = default;
  RawResult(const RawResult&) = delete;
  RawResult& operator=(const RawResult&) = delete;
  ~RawResult() {
    if (valid_) duckdb_destroy_result(&r_);
  }
  duckdb_result* out() {
    valid_ = true;
    return &r_;
  }
  duckdb_result& get() { return r_; }

 private:
  duckdb_result r_{};
  bool valid_ = false;
};

class FeaturesBench {
 public:
  explicit FeaturesBench(Options opts) : opts_(std::move(opts)) {}
  int Run();

 private:
  [[noreturn]] void Die(const std::string& what) {
    if (!dir_.empty()) std::fprintf(stderr, "features_bench: data left in %s\n", dir_.c_str());
    engage::bench::Die("features_bench", what);
  }
  void Check(const engage::Status& s, const std::string& what) {
    if (!s.ok()) Die(fmt::format("{}: {}", what, s.ToString()));
  }
  template <typename T>
  T Value(engage::Result<T> r, const std::string& what) {
    Check(r.status(), what);
    return std::move(*r);
  }
  void Progress(const std::string& what) {
    std::fprintf(stderr, "[%7.1fs] %s\n", Elapsed(start_), what.c_str());
  }

  void Prepare();
  void OpenRaw();
  void RawExec(const std::string& sql);
  // Runs `sql` on the raw connection and fetches every chunk; adds the result to `sum` after the
  // clock stops. Returns the seconds the query and the fetching took.
  double RawQuery(const std::string& sql, Summary& sum);
  void Compare(const Summary& engage, const Summary& raw, const std::string& what);

  Options opts_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::string dir_;  // the temporary directory, removed at the end unless --keep
  engage::HomePaths home_;
  int64_t events_ = 0;
  double generate_s_ = 0, ingest_s_ = 0;
  RawDb raw_db_;
  RawConn raw_;
};

void FeaturesBench::Prepare() {
  if (!opts_.home.empty()) {
    home_.root = fs::absolute(opts_.home).string();
    return;
  }
  std::error_code ec;
  std::string parent = opts_.work.empty() ? fs::temp_directory_path(ec).string() : opts_.work;
  fs::create_directories(parent, ec);
  std::string pattern = parent + "/features-bench-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) Die("cannot create a directory in " + parent);
  dir_ = fs::absolute(pattern).string();
  home_.root = dir_ + "/home";
  Check(engage::lake::Lake::Init(home_, /*force=*/false), "engage init");

  engage::gen::GenOptions g;
  g.customers = opts_.customers;
  g.days = 365;
  g.out_dir = dir_ + "/data";
  Progress(
      fmt::format("generating {} customers over {} days into {}", g.customers, g.days, g.out_dir));
  auto t0 = std::chrono::steady_clock::now();
  auto gen = Value(
      engage::gen::Generate(
          g,
          [&](int64_t done) { Progress(fmt::format("  {} / {} customers", done, g.customers)); }),
      "generate");
  generate_s_ = Elapsed(t0);
  Progress(fmt::format("generated {} events ({} to {}) in {:.1f} s", gen.events, gen.first_day,
                       gen.last_day, generate_s_));

  t0 = std::chrono::steady_clock::now();
  {
    engage::lake::LakeOptions lo;
    lo.writer = true;
    auto lake = Value(engage::lake::Lake::Open(home_, lo), "open the lake for ingest");
    for (const auto& [table, input] : std::vector<std::pair<std::string, std::string>>{
             {"customers", g.out_dir + "/customers.parquet"},
             {"events", g.out_dir + "/events/*.parquet"}}) {
      engage::lake::IngestRequest req;
      req.table = table;
      req.inputs = {input};
      auto rep =
          Value(engage::lake::Ingest(*lake, req,
                                     [&](const std::string& stage) {
                                       Progress(fmt::format("  ingest {}: {}", table, stage));
                                     }),
                "ingest " + table);
      if (rep.record.rows_rejected != 0) {
        Die(fmt::format("ingest {} rejected {} rows", table, rep.record.rows_rejected));
      }
      if (table == "events") events_ = rep.record.rows_accepted;
    }
  }
  ingest_s_ = Elapsed(t0);
  Progress(fmt::format("ingested in {:.1f} s", ingest_s_));
  std::error_code ignored;
  fs::remove_all(g.out_dir, ignored);
}

void FeaturesBench::RawExec(const std::string& sql) {
  RawResult r;
  if (duckdb_query(*raw_, sql.c_str(), r.out()) != DuckDBSuccess) {
    Die(fmt::format("raw DuckDB: {}: {}", sql.substr(0, 200), duckdb_result_error(&r.get())));
  }
}

// The reference database: QueryEngine::Open's settings (DuckDb::Open's config and the SETs it
// runs) and its views, minus the sandbox (allowed_directories, enable_external_access,
// lock_configuration), metering and the __partitions table used for estimates.
void FeaturesBench::OpenRaw() {
  duckdb_config config;
  if (duckdb_create_config(&config) != DuckDBSuccess) Die("cannot create a DuckDB config");
  auto set = [&](const char* k, const std::string& v) {
    if (duckdb_set_config(config, k, v.c_str()) != DuckDBSuccess) {
      Die(fmt::format("raw DuckDB: cannot set {}={}", k, v));
    }
  };
  if (opts_.threads > 0) set("threads", std::to_string(opts_.threads));
  set("temp_directory", home_.tmp());
  set("enable_external_file_cache", "false");
  set("autoinstall_known_extensions", "false");
  set("autoload_known_extensions", "false");
  raw_db_ = RawDb(new duckdb_database(nullptr));
  char* err = nullptr;
  duckdb_state st = duckdb_open_ext(nullptr, raw_db_.get(), config, &err);
  duckdb_destroy_config(&config);
  if (st != DuckDBSuccess) {
    std::string msg = err ? err : "unknown error";
    duckdb_free(err);
    Die("cannot open raw DuckDB: " + msg);
  }
  raw_ = RawConn(new duckdb_connection(nullptr));
  if (duckdb_connect(*raw_db_, raw_.get()) != DuckDBSuccess) Die("cannot connect to raw DuckDB");
  RawExec("SET TimeZone='UTC'");
  RawExec("SET parquet_metadata_cache=true");
  // The table's files, found by listing the lake directory rather than through the catalog.
  for (const std::string table : {"events", "customers"}) {
    std::vector<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(home_.lake() + "/" + table)) {
      if (e.is_regular_file() && e.path().extension() == ".parquet") files.push_back(e.path());
    }
    if (files.empty()) Die("no Parquet files under " + home_.lake() + "/" + table);
    std::sort(files.begin(), files.end());
    std::string list;
    for (const auto& f : files) list += (list.empty() ? "'" : ", '") + f + "'";
    RawExec(fmt::format(
        "CREATE TEMP VIEW \"{}\" AS SELECT * FROM read_parquet([{}], hive_partitioning=true, "
        "hive_types={{'dt': DATE}})",
        table, list));
  }
}

double Number(duckdb_type type, duckdb_logical_type logical, const void* data, idx_t i) {
  switch (type) {
    case DUCKDB_TYPE_BOOLEAN:
      return static_cast<const bool*>(data)[i] ? 1 : 0;
    case DUCKDB_TYPE_TINYINT:
      return static_cast<const int8_t*>(data)[i];
    case DUCKDB_TYPE_SMALLINT:
      return static_cast<const int16_t*>(data)[i];
    case DUCKDB_TYPE_INTEGER:
      return static_cast<const int32_t*>(data)[i];
    case DUCKDB_TYPE_BIGINT:
      return static_cast<double>(static_cast<const int64_t*>(data)[i]);
    case DUCKDB_TYPE_UTINYINT:
      return static_cast<const uint8_t*>(data)[i];
    case DUCKDB_TYPE_USMALLINT:
      return static_cast<const uint16_t*>(data)[i];
    case DUCKDB_TYPE_UINTEGER:
      return static_cast<const uint32_t*>(data)[i];
    case DUCKDB_TYPE_UBIGINT:
      return static_cast<double>(static_cast<const uint64_t*>(data)[i]);
    case DUCKDB_TYPE_FLOAT:
      return static_cast<const float*>(data)[i];
    case DUCKDB_TYPE_DOUBLE:
      return static_cast<const double*>(data)[i];
    case DUCKDB_TYPE_HUGEINT: {
      duckdb_hugeint h = static_cast<const duckdb_hugeint*>(data)[i];
      return std::ldexp(static_cast<double>(h.upper), 64) + static_cast<double>(h.lower);
    }
    case DUCKDB_TYPE_DECIMAL: {
      double scale = std::pow(10.0, duckdb_decimal_scale(logical));
      duckdb_type internal = duckdb_decimal_internal_type(logical);
      return Number(internal, nullptr, data, i) / scale;
    }
    default:  // not Readable()
      return std::nan("");
  }
}

bool Readable(duckdb_type type, duckdb_logical_type logical) {
  switch (type) {
    case DUCKDB_TYPE_BOOLEAN:
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_HUGEINT:
      return true;
    case DUCKDB_TYPE_DECIMAL:
      return Readable(duckdb_decimal_internal_type(logical), nullptr);
    default:
      return false;
  }
}

double FeaturesBench::RawQuery(const std::string& sql, Summary& sum) {
  RawResult res;
  std::vector<RawChunk> chunks;
  double s = Seconds([&] {
    if (duckdb_query(*raw_, sql.c_str(), res.out()) != DuckDBSuccess) {
      Die(fmt::format("raw DuckDB query: {}", duckdb_result_error(&res.get())));
    }
    while (true) {
      duckdb_data_chunk c = duckdb_fetch_chunk(res.get());
      if (c == nullptr) break;
      chunks.emplace_back(new duckdb_data_chunk(c));
    }
  });
  idx_t ncols = duckdb_column_count(&res.get());
  if (ncols < 2) Die("raw result has fewer than 2 columns");
  std::vector<std::string> names;
  std::vector<duckdb_type> types;
  std::vector<duckdb_logical_type> logical;
  for (idx_t j = 0; j < ncols; ++j) {
    if (j >= 2) names.push_back(duckdb_column_name(&res.get(), j));
    types.push_back(duckdb_column_type(&res.get(), j));
    logical.push_back(duckdb_column_logical_type(&res.get(), j));
    if (j >= 1 && !Readable(types[j], logical[j])) {
      Die(fmt::format("raw column {} has a type the check cannot read ({})",
                      duckdb_column_name(&res.get(), j), static_cast<int>(types[j])));
    }
  }
  if (types[0] != DUCKDB_TYPE_VARCHAR) Die("raw customer_id is not VARCHAR");
  sum.Resize(names);
  if (sum.names != names) Die("raw results of two cutoffs have different columns");
  for (const RawChunk& chunk : chunks) {
    idx_t n = duckdb_data_chunk_get_size(*chunk);
    sum.rows += static_cast<int64_t>(n);
    for (idx_t j = 0; j < ncols; ++j) {
      duckdb_vector v = duckdb_data_chunk_get_vector(*chunk, j);
      const void* data = duckdb_vector_get_data(v);
      uint64_t* validity = duckdb_vector_get_validity(v);
      for (idx_t i = 0; i < n; ++i) {
        bool valid = validity == nullptr || duckdb_validity_row_is_valid(validity, i);
        if (j == 0) {
          if (!valid) Die("raw customer_id is NULL");
          auto* str = static_cast<duckdb_string_t*>(duckdb_vector_get_data(v)) + i;
          sum.AddId(duckdb_string_t_data(str), duckdb_string_t_length(*str));
        } else if (!valid) {
          continue;
        } else if (j == 1) {
          sum.labels_known += 1;
          sum.label_sum += Number(types[j], logical[j], data, i);
        } else {
          sum.Add(j - 2, Number(types[j], logical[j], data, i));
        }
      }
    }
  }
  for (auto& l : logical) duckdb_destroy_logical_type(&l);
  return s;
}

Summary Summarise(const features::FeatureFrame& f) {
  Summary s;
  s.Resize(f.names);
  s.rows = f.rows();
  for (const std::string& id : f.customer_ids) s.AddId(id.data(), id.size());
  for (size_t j = 0; j < f.columns.size(); ++j) {
    for (float v : f.columns[j]) {
      if (!std::isnan(v)) s.Add(j, v);
    }
  }
  for (float l : f.labels) {
    if (!std::isnan(l)) {
      s.labels_known += 1;
      s.label_sum += l;
    }
  }
  return s;
}

void FeaturesBench::Compare(const Summary& e, const Summary& r, const std::string& what) {
  if (e.rows != r.rows) Die(fmt::format("{}: Engage has {} rows, raw {}", what, e.rows, r.rows));
  if (e.id_hash != r.id_hash) Die(what + ": the customer ids or their order differ");
  if (e.names != r.names) Die(what + ": the columns differ");
  for (size_t j = 0; j < e.names.size(); ++j) {
    // Engage keeps floats: each value is rounded to 24 bits, so the sums agree to about 1e-7 of
    // the sum of magnitudes.
    double tol = 1e-6 * std::max(e.abs_sum[j], r.abs_sum[j]) + 1e-9;
    if (e.present[j] != r.present[j] || std::fabs(e.sum[j] - r.sum[j]) > tol) {
      Die(fmt::format("{}: column {} differs: Engage {} values summing to {}, raw {} summing to {}",
                      what, e.names[j], e.present[j], e.sum[j], r.present[j], r.sum[j]));
    }
  }
  // Engage marks labels it cannot know yet (the horizon runs past the data) as missing.
  if (e.labels_known > 0 && (e.labels_known != r.labels_known || e.label_sum != r.label_sum)) {
    Die(fmt::format("{}: labels differ: Engage {} positive of {}, raw {} of {}", what, e.label_sum,
                    e.labels_known, r.label_sum, r.labels_known));
  }
}

struct Timing {
  std::vector<double> engage_s, raw_s;
  int64_t rows = 0;
};

int FeaturesBench::Run() {
  Prepare();
  auto lake = Value(engage::lake::Lake::Open(home_, {}), "open the lake");
  if (events_ == 0) {
    for (const auto& f : Value(lake->catalog().Files("events"), "events files")) events_ += f.rows;
  }
  int64_t customers = 0;
  for (const auto& f : Value(lake->catalog().Files("customers"), "customers files")) {
    customers += f.rows;
  }
  auto engine =
      Value(engage::sql::QueryEngine::Open(*lake, opts_.threads), "open the query engine");
  features::FeatureBuilder builder(*engine, lake->config().engagement);
  std::string end = Value(builder.DataEnd(), "DataEnd");
  std::vector<std::string> training = Value(builder.TrainingCutoffs(), "TrainingCutoffs");
  OpenRaw();
  std::string threads = "?";
  {
    RawResult r;
    if (duckdb_query(*raw_, "SELECT current_setting('threads')", r.out()) == DuckDBSuccess) {
      char* v = duckdb_value_varchar(&r.get(), 0, 0);
      if (v) threads = v;
      duckdb_free(v);
    }
  }
  Progress(
      fmt::format("{} customers, {} events; DuckDB threads {}; scoring cutoff {}, training "
                  "cutoffs {}",
                  customers, events_, threads, end, fmt::join(training, ", ")));

  std::vector<double> data_end_s;
  struct Scenario {
    std::string name;
    std::vector<std::string> cutoffs;
    std::vector<std::string> sql;
    Timing t;
  };
  std::vector<Scenario> scenarios = {{"scoring", {end}, {}, {}}, {"training", training, {}, {}}};
  for (auto& sc : scenarios) {
    for (const auto& c : sc.cutoffs) sc.sql.push_back(Value(builder.Sql(c), "Sql " + c));
  }
  for (int rep = 0; rep < opts_.reps; ++rep) {
    data_end_s.push_back(Seconds([&] { Value(builder.DataEnd(), "DataEnd"); }));
    for (auto& sc : scenarios) {
      features::FeatureFrame frame;
      sc.t.engage_s.push_back(
          Seconds([&] { frame = Value(builder.Build(sc.cutoffs), "Build " + sc.name); }));
      Summary engage_sum = Summarise(frame);
      frame = {};
      Summary raw_sum;
      double raw_s = 0;
      for (const auto& sql : sc.sql) raw_s += RawQuery(sql, raw_sum);
      sc.t.raw_s.push_back(raw_s);
      Compare(engage_sum, raw_sum, sc.name);
      sc.t.rows = engage_sum.rows;
      Progress(fmt::format("rep {}: {} ({} rows, {} columns) Engage {:.2f} s, raw {:.2f} s",
                           rep + 1, sc.name, engage_sum.rows, engage_sum.names.size() + 1,
                           sc.t.engage_s.back(), raw_s));
    }
  }

  std::printf("%-9s %8s %10s %9s %9s %7s %14s %14s %12s %12s\n", "scenario", "cutoffs", "rows",
              "engage_s", "raw_s", "ratio", "engage_cust/s", "raw_cust/s", "engage_rows/s",
              "raw_rows/s");
  std::string json = fmt::format(
      "{{\"customers\": {}, \"events\": {}, \"threads\": \"{}\", \"reps\": {}, \"generate_s\": "
      "{:.1f}, \"ingest_s\": {:.1f}, \"data_end_s\": {:.4f}",
      customers, events_, threads, opts_.reps, generate_s_, ingest_s_, Median(data_end_s));
  for (const auto& sc : scenarios) {
    double e = Median(sc.t.engage_s), r = Median(sc.t.raw_s);
    double rows = static_cast<double>(sc.t.rows), cust = static_cast<double>(customers);
    std::printf("%-9s %8zu %10ld %9.3f %9.3f %7.3f %14.0f %14.0f %12.0f %12.0f\n", sc.name.c_str(),
                sc.cutoffs.size(), static_cast<long>(sc.t.rows), e, r, e / r, cust / e, cust / r,
                rows / e, rows / r);
    json += fmt::format(
        ", \"{}\": {{\"cutoffs\": [\"{}\"], \"rows\": {}, \"engage_s\": {:.4f}, \"raw_s\": {:.4f}, "
        "\"ratio\": {:.4f}, \"engage_customers_per_s\": {:.0f}, \"raw_customers_per_s\": {:.0f}, "
        "\"engage_rows_per_s\": {:.0f}, \"raw_rows_per_s\": {:.0f}, \"engage_reps_s\": [{:.3f}], "
        "\"raw_reps_s\": [{:.3f}]}}",
        sc.name, fmt::join(sc.cutoffs, "\", \""), sc.t.rows, e, r, e / r, cust / e, cust / r,
        rows / e, rows / r, fmt::join(sc.t.engage_s, ", "), fmt::join(sc.t.raw_s, ", "));
  }
  std::printf("%-9s %8s %10s %9.3f   (Engage's DataEnd() query alone, part of every Build)\n",
              "data_end", "", "", Median(data_end_s));
  json += ", \"checks\": \"rows, ids and column sums agree\"}";
  std::printf("%s\n", json.c_str());

  engine.reset();
  lake.reset();
  raw_.reset();
  raw_db_.reset();
  if (!dir_.empty()) {
    if (opts_.keep) {
      std::fprintf(stderr, "features_bench: kept %s (rerun with --home %s)\n", dir_.c_str(),
                   home_.root.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--keep") {
      opts.keep = true;
    } else if (a == "--customers" && has_value) {
      opts.customers = std::stoll(argv[++i]);
    } else if (a == "--reps" && has_value) {
      opts.reps = std::max(1, std::stoi(argv[++i]));
    } else if (a == "--threads" && has_value) {
      opts.threads = std::stoi(argv[++i]);
    } else if (a == "--work" && has_value) {
      opts.work = argv[++i];
    } else if (a == "--home" && has_value) {
      opts.home = argv[++i];
    } else {
      engage::bench::Die("features_bench",
                         "usage: features_bench [--customers N] [--reps K] [--threads T] "
                         "[--work DIR] [--keep] [--home DIR]");
    }
  }
  return FeaturesBench(std::move(opts)).Run();
}
