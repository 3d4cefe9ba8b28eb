// Lake benchmark: Engage vs raw DuckDB on the same generated events, in one process.
//
//   lake_bench --events N [--work DIR] [--reps R]
//
// 1. Generates about N events (engage gen, Parquet) once.
// 2. Ingest: Engage's Ingest() (hashing, validation, quarantine, partitioned zstd Parquet,
//    atomic publish, manifest) vs a raw DuckDB COPY ... PARTITION_BY (dt) of the same files
//    into the same layout, with the same compression.
// 3. Queries: count, a partition-pruned aggregate and a group-by, through Engage's
//    QueryEngine (sandbox, EXPLAIN estimate, metering, history) vs a raw DuckDB connection over
//    the raw copy's files with Hive partitioning.
// Each timing is the median of R runs. Prints a table, then one JSON object as the last line.
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

using engage::bench::Median;
using engage::bench::Seconds;

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "lake_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = 1000000;
  std::string work = "bench-work";
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--events")
      events = std::stoll(argv[i + 1]);
    else if (a == "--work")
      work = argv[i + 1];
    else if (a == "--reps")
      reps = std::stoi(argv[i + 1]);
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
  for (int r = 0; r < reps; ++r) {
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

  // --- queries ------------------------------------------------------------------------------
  engage::HomePaths home{home_dir};
  auto lake = engage::lake::Lake::Open(home, {});
  Check(lake.status(), "open for queries");
  auto qe = engage::sql::QueryEngine::Open(**lake);
  Check(qe.status(), "query engine");
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
      "\"query_ratio\": %.3f, \"query_ratio_filelist\": %.3f}\n",
      static_cast<long>(rows), ingest_s, raw_ingest_s, query_s, raw_query_s, raw_list_query_s,
      ingest_s / raw_ingest_s, query_s / raw_query_s, query_s / raw_list_query_s);
  return 0;
}
