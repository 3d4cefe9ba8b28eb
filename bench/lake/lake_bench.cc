// Lake benchmark: Engage vs raw DuckDB on the same generated events, in one process.
//
//   lake_bench --events N [--work DIR] [--reps R] [--small-reps S] [--fixed-only]
//
// 1. Generates about N events (engage gen, Parquet) once.
// 2. Ingest: Engage's Ingest() (hashing, validation, quarantine, partitioned zstd Parquet,
//    atomic publish, manifest) vs a raw DuckDB COPY ... PARTITION_BY (dt) of the same files
//    into the same layout, with the same compression.
// 3. Queries: count, a partition-pruned aggregate and a group-by, through Engage's
//    QueryEngine (sandbox, EXPLAIN estimate, metering, history) vs a raw DuckDB connection over
//    the raw copy's files with Hive partitioning.
// 4. Fixed cost per query: a small pruned query (one dt partition, a handful of rows) S times
//    through one long-lived QueryEngine (the same text, whose check and plan resolution it
//    reuses, and a new text each time, checked and resolved every time), through a new
//    QueryEngine per query (what every CLI
//    command and HTTP request did), and on a raw DuckDB connection over the same catalogued
//    files with the same settings (Parquet metadata cache on). Engage minus raw is the fixed cost
//    Engage adds to every query (parse and plan checks, metering, history).
// Each timing is the median of R (S for the small query) runs. Prints a table, then one JSON
// object as the last line. --fixed-only skips the ingest timings and the large queries (it
// ingests once if the work directory has no home yet).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "engage/core/home.h"
#include "engage/gen/generator.h"
#include "engage/lake/duck.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "engage/sql/query.h"

namespace {

namespace fs = std::filesystem;
using engage::Status;

using engage::bench::Die;
using engage::bench::Median;
using engage::bench::Seconds;
using engage::bench::Time;
using engage::bench::Timing;

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "lake_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

struct FixedCost {
  // Medians, in ms: one long-lived QueryEngine (the same text each time: its check and plan
  // resolution are reused), the same engine with a new text each time (a comment makes each
  // distinct: checked and resolved every time), raw DuckDB over the same files, a new
  // QueryEngine opened for each query (what every CLI command and HTTP request did); wall and
  // CPU time.
  double engage_ms = 0, new_text_ms = 0, raw_ms = 0, per_query_ms = 0;
  double engage_cpu_ms = 0, new_text_cpu_ms = 0, raw_cpu_ms = 0, per_query_cpu_ms = 0;
  int64_t rows = 0;

  std::string Json() const {
    return fmt::format(
        "\"small_query_rows\": {}, \"small_query_engage_ms\": {:.4f}, \"small_query_raw_ms\": "
        "{:.4f}, \"small_query_fixed_ms\": {:.4f}, \"small_query_ratio\": {:.3f}, "
        "\"small_query_new_engine_ms\": {:.4f}, \"small_query_new_engine_fixed_ms\": {:.4f}, "
        "\"small_query_engage_cpu_ms\": {:.4f}, \"small_query_raw_cpu_ms\": {:.4f}, "
        "\"small_query_fixed_cpu_ms\": {:.4f}, \"small_query_cpu_ratio\": {:.3f}, "
        "\"small_query_new_engine_cpu_ms\": {:.4f}, \"small_query_new_text_ms\": {:.4f}, "
        "\"small_query_new_text_fixed_ms\": {:.4f}, \"small_query_new_text_ratio\": {:.3f}, "
        "\"small_query_new_text_cpu_ms\": {:.4f}",
        rows, engage_ms, raw_ms, engage_ms - raw_ms, engage_ms / raw_ms, per_query_ms,
        per_query_ms - raw_ms, engage_cpu_ms, raw_cpu_ms, engage_cpu_ms - raw_cpu_ms,
        engage_cpu_ms / raw_cpu_ms, per_query_cpu_ms, new_text_ms, new_text_ms - raw_ms,
        new_text_ms / raw_ms, new_text_cpu_ms);
  }
};

// The fixed cost Engage adds to each query: a small pruned query (one dt partition, a handful of
// rows) through `qe` and through a raw DuckDB connection over the same catalogued files, with the
// same settings (UTC, Parquet metadata cache), interleaved, `reps` times each after a warm-up.
FixedCost MeasureFixedCost(engage::lake::Lake& lake, engage::sql::QueryEngine& qe, int reps) {
  auto files = lake.catalog().Files("events");
  Check(files.status(), "catalog files");
  if (files->empty()) Die("lake_bench", "no events ingested");
  std::vector<std::string> abs;
  for (const auto& f : *files) abs.push_back(lake.AbsPath(f.path));
  const std::string day = files->back().dt;
  auto db = engage::lake::DuckDb::Open({});
  Check(db.status(), "raw duckdb");
  auto raw = db->Connect();
  Check(raw.status(), "raw connection");
  Check(raw->Exec("SET TimeZone='UTC'"), "tz");
  Check(raw->Exec("SET parquet_metadata_cache=true"), "metadata cache");
  Check(raw->Exec(fmt::format("CREATE VIEW events AS SELECT * FROM read_parquet({}, "
                              "hive_partitioning=true, hive_types={{'dt': DATE}})",
                              engage::lake::SqlList(abs))),
        "raw view");
  const std::string sql = fmt::format(
      "SELECT event_type, count(*) AS n, sum(amount) AS amount FROM events WHERE dt = DATE '{}' "
      "GROUP BY 1 ORDER BY 1",
      day);
  engage::sql::QueryRequest req;
  req.sql = sql;
  req.source = "bench";
  FixedCost out;
  auto run_engage = [&](engage::sql::QueryEngine& engine) {
    auto r = engine.Run(req);
    Check(r.status(), "small query");
    out.rows = r->row_count;
  };
  auto run_raw = [&] {
    auto r = raw->Query(sql);
    Check(r.status(), "raw small query");
    if (r->RowCount() != out.rows) Die("lake_bench", "engage and raw DuckDB disagree");
  };
  for (int i = 0; i < 5; ++i) {
    run_engage(qe);
    run_raw();
  }
  std::vector<double> e, t, w, n, e_cpu, t_cpu, w_cpu, n_cpu;
  for (int i = 0; i < reps; ++i) {
    Timing te = Time([&] { run_engage(qe); });
    req.sql = fmt::format("{} /* {} */", sql, i);
    Timing tt = Time([&] { run_engage(qe); });
    req.sql = sql;
    Timing tw = Time(run_raw);
    e.push_back(te.wall_s);
    e_cpu.push_back(te.cpu_s);
    t.push_back(tt.wall_s);
    t_cpu.push_back(tt.cpu_s);
    w.push_back(tw.wall_s);
    w_cpu.push_back(tw.cpu_s);
  }
  // Opening an engine costs milliseconds: fewer repetitions.
  for (int i = 0; i < std::max(3, reps / 10); ++i) {
    Timing tn = Time([&] {
      auto fresh = engage::sql::QueryEngine::Open(lake);
      Check(fresh.status(), "query engine per query");
      run_engage(**fresh);
    });
    n.push_back(tn.wall_s);
    n_cpu.push_back(tn.cpu_s);
  }
  out.engage_ms = Median(e) * 1000;
  out.raw_ms = Median(w) * 1000;
  out.per_query_ms = Median(n) * 1000;
  out.engage_cpu_ms = Median(e_cpu) * 1000;
  out.new_text_ms = Median(t) * 1000;
  out.new_text_cpu_ms = Median(t_cpu) * 1000;
  out.raw_cpu_ms = Median(w_cpu) * 1000;
  out.per_query_cpu_ms = Median(n_cpu) * 1000;
  std::printf("small pruned query (dt = %s, %ld rows), medians of %d (wall | process CPU):\n",
              day.c_str(), static_cast<long>(out.rows), reps);
  std::printf("  raw DuckDB                 %8.3f ms                               | %8.3f ms\n",
              out.raw_ms, out.raw_cpu_ms);
  auto line = [&](const char* what, double ms, double cpu_ms) {
    std::printf(
        "  %-26s %8.3f ms  fixed %8.3f ms  ratio %6.3f | %8.3f ms  fixed %8.3f ms  "
        "ratio %6.3f\n",
        what, ms, ms - out.raw_ms, ms / out.raw_ms, cpu_ms, cpu_ms - out.raw_cpu_ms,
        cpu_ms / out.raw_cpu_ms);
  };
  line("engage, long-lived engine", out.engage_ms, out.engage_cpu_ms);
  line("  (a new text each time)", out.new_text_ms, out.new_text_cpu_ms);
  line("engage, engine per query", out.per_query_ms, out.per_query_cpu_ms);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = 1000000;
  std::string work = "bench-work";
  int reps = 3;
  int small_reps = 300;
  bool fixed_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--fixed-only") {
      fixed_only = true;
      continue;
    }
    if (i + 1 >= argc) break;
    if (a == "--events")
      events = std::stoll(argv[++i]);
    else if (a == "--work")
      work = argv[++i];
    else if (a == "--reps")
      reps = std::stoi(argv[++i]);
    else if (a == "--small-reps")
      small_reps = std::max(3, std::stoi(argv[++i]));
  }
  fs::create_directories(work);
  work = fs::canonical(work).string();

  // About 47 events per customer over 365 days (the generator calibration).
  std::string data = fmt::format("{}/data-{}", work, events);
  if (!fs::exists(data + "/events")) {
    engage::gen::GenOptions g;
    g.customers = std::max<int64_t>(100, events / 47);
    g.out_dir = data;
    auto r = engage::gen::Generate(g);
    Check(r.status(), "generate");
    std::fprintf(stderr, "generated %ld events for %ld customers\n", static_cast<long>(r->events),
                 static_cast<long>(r->customers));
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(data + "/events")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string file_list = engage::lake::SqlList(files);

  // --- ingest -------------------------------------------------------------------------------
  std::vector<double> engage_ingest, raw_ingest;
  int64_t rows = 0;
  std::string home_dir = work + "/home";
  std::string raw_dir = work + "/raw";
  const bool have_home = fs::exists(home_dir + "/engage.toml");
  for (int r = 0; r < (fixed_only ? (have_home ? 0 : 1) : reps); ++r) {
    fs::remove_all(home_dir);
    engage::HomePaths home{home_dir};
    Check(engage::lake::Lake::Init(home, false), "init");
    engage_ingest.push_back(Seconds([&] {
      engage::lake::LakeOptions opts;
      opts.writer = true;
      auto lake = engage::lake::Lake::Open(home, opts);
      Check(lake.status(), "open");
      engage::lake::IngestRequest req;
      req.table = "events";
      req.inputs = files;
      auto rep = engage::lake::Ingest(**lake, req);
      Check(rep.status(), "ingest");
      rows = rep->record.rows_accepted;
    }));
    if (fixed_only) continue;
    fs::remove_all(raw_dir);
    raw_ingest.push_back(Seconds([&] {
      auto db = engage::lake::DuckDb::Open({});
      auto conn = db->Connect();
      Check(conn->Exec("SET TimeZone='UTC'"), "tz");
      Check(conn->Exec(fmt::format(
                "COPY (SELECT *, CAST(event_time AS DATE) AS dt FROM read_parquet({})) TO '{}' "
                "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt))",
                file_list, raw_dir)),
            "raw copy");
    }));
  }

  engage::HomePaths home{home_dir};
  auto lake = engage::lake::Lake::Open(home, {});
  Check(lake.status(), "open for queries");
  auto qe = engage::sql::QueryEngine::Open(**lake);
  Check(qe.status(), "query engine");
  const FixedCost fixed = MeasureFixedCost(**lake, **qe, small_reps);
  if (fixed_only) {
    std::printf("{\"events\": %ld, %s}\n", static_cast<long>(events), fixed.Json().c_str());
    return 0;
  }

  // --- queries ------------------------------------------------------------------------------
  auto db = engage::lake::DuckDb::Open({});
  auto raw = db->Connect();
  Check(raw->Exec(fmt::format("CREATE VIEW events AS SELECT * FROM read_parquet('{}/*/*.parquet', "
                              "hive_partitioning=true, hive_types={{'dt': DATE}})",
                              raw_dir)),
        "raw view");
  // A second raw reference reads an explicit file list, as Engage's views do, so the glob's
  // directory listing is not counted against raw DuckDB.
  std::vector<std::string> raw_files;
  for (const auto& e : fs::recursive_directory_iterator(raw_dir)) {
    if (e.is_regular_file()) raw_files.push_back(e.path());
  }
  auto db_list = engage::lake::DuckDb::Open({});
  auto raw_list = db_list->Connect();
  Check(raw_list->Exec(fmt::format("CREATE VIEW events AS SELECT * FROM read_parquet({}, "
                                   "hive_partitioning=true, hive_types={{'dt': DATE}})",
                                   engage::lake::SqlList(raw_files))),
        "raw list view");
  auto last_dt = raw->Query("SELECT max(dt) FROM events");
  std::string day = last_dt->Str(0, 0).value_or("2024-12-31");
  std::vector<std::pair<std::string, std::string>> queries = {
      {"count", "SELECT count(*) FROM events"},
      {"pruned", fmt::format("SELECT event_type, count(*), sum(amount) FROM events WHERE dt >= "
                             "DATE '{}' - INTERVAL 6 DAY GROUP BY 1",
                             day)},
      {"group_by",
       "SELECT customer_id, count(*) AS n, sum(amount) AS revenue FROM events GROUP "
       "BY 1 ORDER BY revenue DESC NULLS LAST LIMIT 10"},
  };
  double query_s = 0, raw_query_s = 0, raw_list_query_s = 0;
  std::printf("%-10s %10s %12s %7s %16s %7s\n", "query", "engage_s", "raw_glob_s", "ratio",
              "raw_filelist_s", "ratio");
  for (const auto& [name, sql] : queries) {
    std::vector<double> e, w, l;
    for (int r = 0; r < reps; ++r) {
      e.push_back(Seconds([&] {
        engage::sql::QueryRequest req;
        req.sql = sql;
        req.source = "bench";
        Check((*qe)->Run(req).status(), name.c_str());
      }));
      w.push_back(Seconds([&] { Check(raw->Query(sql).status(), name.c_str()); }));
      l.push_back(Seconds([&] { Check(raw_list->Query(sql).status(), name.c_str()); }));
    }
    double em = Median(e), wm = Median(w), lm = Median(l);
    query_s += em;
    raw_query_s += wm;
    raw_list_query_s += lm;
    std::printf("%-10s %10.4f %12.4f %7.3f %16.4f %7.3f\n", name.c_str(), em, wm, em / wm, lm,
                em / lm);
  }
  double ingest_s = Median(engage_ingest), raw_ingest_s = Median(raw_ingest);
  std::printf("%-10s %10.4f %12.4f %7.3f   (%ld rows)\n", "ingest", ingest_s, raw_ingest_s,
              ingest_s / raw_ingest_s, static_cast<long>(rows));
  std::printf(
      "{\"events\": %ld, \"ingest_s\": %.4f, \"raw_ingest_s\": %.4f, \"query_s\": %.4f, "
      "\"raw_query_s\": %.4f, \"raw_filelist_query_s\": %.4f, \"ingest_ratio\": %.3f, "
      "\"query_ratio\": %.3f, \"query_ratio_filelist\": %.3f, %s}\n",
      static_cast<long>(rows), ingest_s, raw_ingest_s, query_s, raw_query_s, raw_list_query_s,
      ingest_s / raw_ingest_s, query_s / raw_query_s, query_s / raw_list_query_s,
      fixed.Json().c_str());
  return 0;
}
