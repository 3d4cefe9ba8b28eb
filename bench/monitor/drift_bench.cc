// Drift benchmark: Engage's table drift (monitor::TableDrift) against the same aggregates run on
// raw DuckDB over the same lake files, in one process.
//
//   drift_bench [--rows N] [--numeric C] [--categorical K] [--reps R] [--threads T] [--work DIR]
//               [--keep]
//
// Setup (untimed, progress on stderr): a fresh home in a temporary directory under --work
// (default: the system's temp directory) with a table `wide`: a timestamp `ts`, C numeric
// columns (default 80; half double, half int64, every 8th with 5% missing) and K string columns
// (default 20, 12 categories each), generated with DuckDB into one Parquet file and ingested with
// lake::Ingest (as `engage ingest` does): N rows (default 1,000,000) in each of two 10-day
// windows, the current window with the first tenth of the numeric columns shifted and the first
// categorical column's shares moved. The directory is removed at the end unless --keep.
// Timed, the median of R repetitions (default 3):
//  - engage: TableDrift over both windows on a QueryEngine opened once (the whole call: its two
//    queries, metering, the query history, the statistics);
//  - duckdb (same SQL): the two statements Engage ran (read back from the query history) on a
//    raw DuckDB database configured as QueryEngine configures its own (threads, UTC, parquet
//    metadata cache), with `wide` the same view over read_parquet of the lake files and Engage's
//    engage_bin_counts registered: Engage's overhead over its own SQL;
//  - duckdb (built-in): the same statements with DuckDB's own aggregates instead of Engage's
//    (quantile_disc, histogram(x, edges), histogram(x)): what plain DuckDB SQL takes for the same
//    quantiles and bins (timed once: it takes minutes).
// Checked, untimed: the reported row counts are N per window, exactly the shifted columns drift,
// and the raw DuckDB runs return the same per-window row counts. Exits 1 if not. Prints a table,
// then one JSON object as the last line.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bench_util.h"
#include "engage/core/clock.h"
#include "engage/core/home.h"
#include "engage/core/text.h"
#include "engage/lake/catalog.h"
#include "engage/lake/duck.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "engage/monitor/drift.h"
#include "engage/sql/functions.h"
#include "engage/sql/query.h"

namespace {

namespace fs = std::filesystem;
using engage::bench::Die;
using engage::bench::Median;
using engage::bench::Seconds;

constexpr const char* kProgram = "drift_bench";

struct Options {
  int64_t rows = 1000000;
  int numeric = 80;
  int categorical = 20;
  int reps = 3;
  int threads = 0;
  std::string work;
  bool keep = false;
};

template <typename T>
T Check(engage::Result<T> r, const std::string& what) {
  if (!r.ok()) Die(kProgram, what + ": " + r.status().ToString());
  return std::move(*r);
}
void Check(const engage::Status& s, const std::string& what) {
  if (!s.ok()) Die(kProgram, what + ": " + s.ToString());
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(kProgram, a + " needs a value");
      return argv[++i];
    };
    if (a == "--rows") {
      o.rows = std::stoll(next());
    } else if (a == "--numeric") {
      o.numeric = std::stoi(next());
    } else if (a == "--categorical") {
      o.categorical = std::stoi(next());
    } else if (a == "--reps") {
      o.reps = std::max(1, std::stoi(next()));
    } else if (a == "--threads") {
      o.threads = std::stoi(next());
    } else if (a == "--work") {
      o.work = next();
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      Die(kProgram, "unknown option " + a);
    }
  }
  if (o.rows < 1000 || o.numeric < 10 || o.categorical < 1) {
    Die(kProgram, "--rows >= 1000, --numeric >= 10, --categorical >= 1");
  }
  return o;
}

std::string TableToml(const Options& o) {
  std::string t = "\n[tables.wide]\ntime_column = \"ts\"\nretention_days = 0\n";
  auto col = [&](const std::string& name, const char* type) {
    t += fmt::format("\n[[tables.wide.columns]]\nname = \"{}\"\ntype = \"{}\"\n", name, type);
  };
  col("ts", "timestamp");
  for (int j = 0; j < o.numeric; ++j) col(fmt::format("x{}", j), j % 2 ? "int64" : "double");
  for (int j = 0; j < o.categorical; ++j) col(fmt::format("s{}", j), "string");
  return t;
}

// Rows i < N: the reference (2024-01-01..10), i >= N: the current window (2024-01-11..20).
// Pseudo-random values from hash(i, j); shifted columns move by +0.5 (of a range of 1..j+1).
std::string GenerateSql(const Options& o, const std::string& file) {
  std::string cols = fmt::format(
      "TIMESTAMP '2024-01-01' + INTERVAL (CAST(i >= {0} AS INT) * 10 + i % 10) DAY + "
      "INTERVAL (i % 86000) SECOND AS ts",
      o.rows);
  int shifted = o.numeric / 10;
  for (int j = 0; j < o.numeric; ++j) {
    std::string u = fmt::format("(hash(i, {}) % 1000003)::DOUBLE / 1000003", j);
    std::string v = fmt::format("{} * {} + {}", u, j + 1,
                                j < shifted ? fmt::format("CASE WHEN i >= {} THEN 0.5 * {} ELSE "
                                                          "0 END",
                                                          o.rows, j + 1)
                                            : std::string("0"));
    if (j % 2) v = fmt::format("CAST(({}) * 100 AS BIGINT)", v);
    if (j % 8 == 0)
      v = fmt::format("CASE WHEN hash(i, {}) % 20 = 0 THEN NULL ELSE {} END", j + 7, v);
    cols += fmt::format(", {} AS x{}", v, j);
  }
  for (int j = 0; j < o.categorical; ++j) {
    // Category k with weight ~ (12 - k); the first column's current window favours the last ones.
    std::string k = fmt::format(
        "CAST(floor(12 - sqrt((hash(i, {}) % 1000003)::DOUBLE / 1000003 * "
        "144)) AS INT)",
        1000 + j);
    if (j == 0) k = fmt::format("CASE WHEN i >= {} THEN 11 - {} ELSE {} END", o.rows, k, k);
    cols += fmt::format(", 'c' || {} AS s{}", k, j);
  }
  return fmt::format("COPY (SELECT {} FROM range({}) t(i)) TO '{}' (FORMAT parquet)", cols,
                     2 * o.rows, file);
}

// Runs `sql` on `conn` and returns the per-window row counts (column 1 of each row, by column 0).
std::vector<int64_t> RunWindows(engage::lake::DuckConn& conn, const std::string& sql) {
  auto r = Check(conn.Query(sql), "raw DuckDB query");
  std::vector<int64_t> rows(2, -1);
  for (int64_t i = 0; i < r.RowCount(); ++i) rows[r.Int(0, i) == 0 ? 0 : 1] = r.Int(1, i);
  return rows;
}

// `sql` with Engage's aggregates replaced by DuckDB's own: engage_quantiles(c, S) by
// quantile_disc(c, [1/S, ...]) (NaN filtered), engage_bin_counts(c, 'e1,e2') by histogram(c,
// [e1, e2]::DOUBLE[]) and engage_category_counts(c, '[...]') by histogram(c) (every category,
// not only the named ones: DuckDB has no cheaper way to count them in one pass).
std::string Builtin(const std::string& sql) {
  std::string out;
  size_t at = 0;
  for (;;) {
    size_t next = sql.find("engage_", at);
    if (next == std::string::npos) break;
    out += sql.substr(at, next - at);
    size_t open = sql.find('(', next);
    std::string name = sql.substr(next, open - next);
    size_t comma = sql.find(", ", open);
    std::string column = sql.substr(open + 1, comma - open - 1);
    size_t arg = comma + 2, end = arg;
    if (sql[arg] == '\'') {  // a string literal, quotes doubled
      for (end = arg + 1; end < sql.size(); ++end) {
        if (sql[end] == '\'' && (end + 1 >= sql.size() || sql[end + 1] != '\'')) break;
        if (sql[end] == '\'') ++end;
      }
      ++end;
    } else {
      end = sql.find(')', arg);
    }
    std::string literal = sql.substr(arg, end - arg);
    if (name == "engage_quantiles") {
      int steps = std::stoi(literal);
      std::string probs;
      for (int i = 1; i < steps; ++i)
        probs += fmt::format("{}{}", i > 1 ? ", " : "", 1.0 * i / steps);
      out += fmt::format("to_json(quantile_disc({0}, [{1}]) FILTER (WHERE NOT isnan({0})))", column,
                         probs);
    } else if (name == "engage_bin_counts") {
      out += fmt::format("histogram({}, [{}]::DOUBLE[])", column,
                         literal.substr(1, literal.size() - 2));
    } else {
      out += fmt::format("histogram({})", column);
    }
    at = end + 1;  // past the closing parenthesis
  }
  return out + sql.substr(at);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = Parse(argc, argv);
  std::string base = o.work.empty() ? fs::temp_directory_path().string() : o.work;
  std::string dir = fmt::format("{}/engage-drift-bench-{}", base, ::getpid());
  fs::create_directories(dir);
  engage::HomePaths home;
  home.root = dir + "/home";
  Check(engage::lake::Lake::Init(home, false), "init");
  {
    std::ofstream out(home.config(), std::ios::app);
    out << TableToml(o);
  }
  const int columns = o.numeric + o.categorical;
  std::fprintf(stderr, "generating %lld rows x %d columns per window...\n",
               static_cast<long long>(o.rows), columns);
  std::string file = dir + "/wide.parquet";
  {
    auto db = Check(engage::lake::DuckDb::Open({.threads = o.threads}), "duckdb");
    auto conn = Check(db.Connect(), "connect");
    Check(conn.Exec(GenerateSql(o, file)), "generating");
  }
  std::fprintf(stderr, "ingesting...\n");
  double ingest_s = 0;
  {
    engage::lake::LakeOptions lo;
    lo.writer = true;
    auto lake = Check(engage::lake::Lake::Open(home, lo), "open lake");
    engage::lake::IngestRequest req;
    req.table = "wide";
    req.inputs = {file};
    ingest_s = Seconds([&] { Check(engage::lake::Ingest(*lake, req), "ingest"); });
  }
  fs::remove(file);

  auto lake = Check(engage::lake::Lake::Open(home, {}), "open lake");
  auto engine = Check(engage::sql::QueryEngine::Open(*lake, o.threads), "query engine");
  engage::monitor::DriftRequest request{
      .table = "wide", .reference = "2024-01-01..2024-01-10", .current = "2024-01-11..2024-01-20"};
  std::fprintf(stderr, "timing engage drift...\n");
  std::vector<double> engage_s;
  engage::monitor::DriftReport report;
  for (int r = 0; r < o.reps; ++r) {
    engage_s.push_back(Seconds(
        [&] { report = Check(engage::monitor::TableDrift(*engine, request), "engage drift"); }));
  }
  if (report.reference_rows != o.rows || report.current_rows != o.rows) {
    Die(kProgram, fmt::format("engage counted {} and {} rows, not {}", report.reference_rows,
                              report.current_rows, o.rows));
  }
  std::set<std::string> drifted, expected;
  for (const auto& c : report.columns) {
    if (c.drifted) drifted.insert(c.column);
  }
  for (int j = 0; j < o.numeric / 10; ++j) expected.insert(fmt::format("x{}", j));
  expected.insert("s0");
  if (drifted != expected || static_cast<int>(report.columns.size()) != columns) {
    Die(kProgram, "engage flagged other columns than the shifted ones:\n" + report.ToText());
  }
  // The statements of the last run, from the query history (newest first).
  engage::lake::Catalog catalog = Check(engage::lake::Catalog::Open(home.meta_db()), "catalog");
  auto history = Check(catalog.QueryHistory(2), "query history");
  if (history.size() < 2 || history[0].source != "drift" || history[1].source != "drift") {
    Die(kProgram, "the query history does not end with the drift queries");
  }
  const std::string q1 = history[1].sql, q2 = history[0].sql;
  const int64_t bytes_scanned = history[0].bytes_scanned + history[1].bytes_scanned;
  const std::string q1_builtin = Builtin(q1), q2_builtin = Builtin(q2);

  // Raw DuckDB over the same files.
  auto files = Check(catalog.Files("wide"), "files");
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(lake->AbsPath(f.path));
  auto db = Check(engage::lake::DuckDb::Open(
                      {.threads = o.threads, .memory_limit = lake->config().query.memory_limit}),
                  "raw duckdb");
  auto conn = Check(db.Connect(), "raw connect");
  Check(conn.Exec("SET TimeZone='UTC'"), "timezone");
  Check(conn.Exec("SET parquet_metadata_cache=true"), "metadata cache");
  Check(engage::sql::RegisterEngageFunctions(conn), "engage functions");
  Check(conn.Exec(fmt::format("CREATE VIEW wide AS SELECT * FROM read_parquet({}, "
                              "hive_partitioning=true, hive_types={{'dt': DATE}})",
                              engage::lake::SqlList(paths))),
        "view");
  std::fprintf(stderr, "timing raw duckdb...\n");
  std::vector<double> same_s, histogram_s;
  for (int r = 0; r < o.reps; ++r) {
    std::vector<int64_t> rows;
    same_s.push_back(Seconds([&] {
      Check(conn.Query(q1), "raw q1");
      rows = RunWindows(conn, q2);
    }));
    if (rows != std::vector<int64_t>{o.rows, o.rows}) Die(kProgram, "raw DuckDB row counts differ");
    if (r > 0) continue;  // DuckDB's own aggregates take minutes: timed once
    histogram_s.push_back(Seconds([&] {
      Check(conn.Query(q1_builtin), "raw q1 (built-in)");
      rows = RunWindows(conn, q2_builtin);
    }));
    if (rows != std::vector<int64_t>{o.rows, o.rows}) Die(kProgram, "raw DuckDB row counts differ");
  }
  double e = Median(engage_s), s = Median(same_s), h = Median(histogram_s);
  std::printf("drift: %lld rows per window, %d columns (%d numeric, %d categorical), %d rep(s)\n",
              static_cast<long long>(o.rows), columns, o.numeric, o.categorical, o.reps);
  std::printf("%-34s %10s %8s\n", "", "seconds", "ratio");
  std::printf("%-34s %10.3f %8s\n", "engage drift (TableDrift)", e, "1.00");
  std::printf("%-34s %10.3f %8.2f\n", "duckdb, same SQL", s, e / s);
  std::printf("%-34s %10.3f %8.2f\n", "duckdb, built-in aggregates", h, e / h);
  std::printf("engage runs (s):");
  for (double t : engage_s) std::printf(" %.3f", t);
  std::printf(
      "\nscanned %s (both queries, as metered); %zu column(s) drifted; ingest took %.1f s\n",
      engage::HumanBytes(bytes_scanned).c_str(), drifted.size(), ingest_s);
  std::printf(
      "{\"bench\": \"drift\", \"rows_per_window\": %lld, \"columns\": %d, \"numeric\": %d, "
      "\"categorical\": %d, \"reps\": %d, \"engage_s\": %.4f, \"duckdb_same_sql_s\": %.4f, "
      "\"duckdb_builtin_s\": %.4f, \"ratio_vs_same_sql\": %.3f, \"ratio_vs_builtin\": %.3f, "
      "\"bytes_scanned\": %lld, \"drifted_columns\": %zu}\n",
      static_cast<long long>(o.rows), columns, o.numeric, o.categorical, o.reps, e, s, h, e / s,
      e / h, static_cast<long long>(bytes_scanned), drifted.size());
  if (!o.keep) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  } else {
    std::fprintf(stderr, "kept %s\n", dir.c_str());
  }
  return 0;
}
