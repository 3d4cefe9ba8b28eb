#include "engage/sql/query.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <thread>

#include "engage/lake/maintenance.h"
#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

class QueryTest : public LakeTest {
 protected:
  // Ten days of events (2024-05-01 .. 2024-05-10), 2000 per day, as one Parquet source.
  void LoadEvents() {
    std::string pq = dir_.path() + "/src.parquet";
    Scalar(
        "COPY (SELECT i AS event_id, i % 97 AS customer_id, TIMESTAMP '2024-05-01' + "
        "INTERVAL (i * 43200) MILLISECOND AS event_time, 'purchase' AS event_type, 'web' AS "
        "channel, (i % 50)::DOUBLE AS amount, md5(i::VARCHAR) AS properties FROM "
        "range(20000) t(i)) TO '" +
        pq + "' (FORMAT parquet)");
    ASSERT_OK(IngestFiles("events", {pq}));
  }

  Result<sql::QueryResult> Run(
      const std::string& q, bool dry_run = false, std::optional<int64_t> max_scan = std::nullopt,
      std::function<Status(const std::set<std::string>&)> authorize = nullptr) {
    lake_ = Open(false);
    auto qe = sql::QueryEngine::Open(*lake_, 1);
    if (!qe.ok()) return qe.status();
    sql::QueryRequest req;
    req.sql = q;
    req.dry_run = dry_run;
    req.max_scan_bytes = max_scan;
    req.authorize = std::move(authorize);
    return (*qe)->Run(req);
  }

  void SetConfigLine(const std::string& from, const std::string& to) {
    std::ifstream in(home_.config());
    std::stringstream ss;
    ss << in.rdbuf();
    std::string cfg = ss.str();
    size_t pos = cfg.find(from);
    ASSERT_NE(pos, std::string::npos);
    cfg.replace(pos, from.size(), to);
    std::ofstream out(home_.config());
    out << cfg;
  }

  std::unique_ptr<lake::Lake> lake_;
};

TEST_F(QueryTest, CountsRowsAndMeasuresBytesScanned) {
  LoadEvents();
  auto r = Run("SELECT count(*) AS n, sum(amount) AS total FROM events");
  ASSERT_OK(r);
  ASSERT_EQ(r->columns, (std::vector<std::string>{"n", "total"}));
  EXPECT_EQ(r->rows[0][0], 20000);
  EXPECT_EQ(r->rows[0][1].get<double>(), 490000.0);
  EXPECT_GT(r->bytes_scanned, 0);
  EXPECT_EQ(r->partitions_scanned, 10);
  // Reading one column reads less than the whole files (the estimate).
  EXPECT_LT(r->bytes_scanned, r->estimated_bytes * 2);
  EXPECT_GT(r->estimated_bytes, 0);
  // Under Athena's 10 MB minimum, the cost is the minimum's.
  EXPECT_DOUBLE_EQ(r->cost_usd, CostUsd(Prices{}, 0));
}

TEST_F(QueryTest, ATableWithAMissingFileFailsOnlyTheQueriesThatReadIt) {
  LoadEvents();
  // A data file deleted behind the catalog's back.
  auto files = std::filesystem::directory_iterator(home_.lake() + "/events");
  ASSERT_TRUE(std::filesystem::remove_all(files->path()) > 0);
  auto other = Run("SELECT count(*) FROM customers");
  ASSERT_OK(other);
  EXPECT_EQ(other->rows[0][0], 0);
  auto broken = Run("SELECT count(*) FROM events");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("table 'events' cannot be read"), std::string::npos)
      << broken.status().ToString();
}

TEST_F(QueryTest, PartitionFilterPrunesFilesInEstimateAndScan) {
  LoadEvents();
  auto all = Run("SELECT sum(amount) FROM events");
  ASSERT_OK(all);
  auto one = Run("SELECT sum(amount) FROM events WHERE dt = DATE '2024-05-03'");
  ASSERT_OK(one);
  EXPECT_EQ(one->partitions_scanned, 1);
  ASSERT_EQ(one->scans.size(), 1u);
  EXPECT_EQ(one->scans[0].table, "events");
  EXPECT_EQ(one->scans[0].files_scanned, 1);
  EXPECT_EQ(one->scans[0].files_total, 10);
  EXPECT_LT(one->estimated_bytes * 5, all->estimated_bytes);
  EXPECT_LT(one->bytes_scanned * 3, all->bytes_scanned);
  auto range = Run("SELECT count(*) FROM events WHERE dt BETWEEN '2024-05-02' AND '2024-05-04'");
  ASSERT_OK(range);
  EXPECT_EQ(range->partitions_scanned, 3);
  EXPECT_EQ(range->rows[0][0], 6000);
}

TEST_F(QueryTest, UnfilteredScansAreChargedToTheRightTable) {
  LoadEvents();
  // A customers table with a different number of files and rows than events.
  std::string c = dir_.WriteFile("c.csv",
                                 "customer_id,signup_time\n1,2024-01-01 00:00:00\n"
                                 "2,2024-01-02 00:00:00\n3,2024-01-03 00:00:00\n");
  ASSERT_OK(IngestFiles("customers", {c}));
  auto events = Run("SELECT * FROM events", true);
  ASSERT_OK(events);
  ASSERT_EQ(events->scans.size(), 1u);
  EXPECT_EQ(events->scans[0].table, "events");
  EXPECT_EQ(events->partitions_scanned, 10);
  auto customers = Run("SELECT * FROM customers", true);
  ASSERT_OK(customers);
  ASSERT_EQ(customers->scans.size(), 1u);
  EXPECT_EQ(customers->scans[0].table, "customers");
  EXPECT_EQ(customers->partitions_scanned, 1);  // a snapshot table: one load, one partition
  EXPECT_LT(customers->estimated_bytes, events->estimated_bytes);
  // A join charges both; a subquery on the same table charges it twice.
  auto join = Run("SELECT count(*) FROM events JOIN customers USING (customer_id)", true);
  ASSERT_OK(join);
  EXPECT_EQ(join->partitions_scanned, 11);
  auto sub = Run("SELECT count(*) FROM events WHERE dt = (SELECT max(dt) FROM events)", true);
  ASSERT_OK(sub);
  EXPECT_EQ(sub->scans.size(), 2u);
}

TEST_F(QueryTest, DryRunEstimatesWithoutRunning) {
  LoadEvents();
  auto r = Run("SELECT * FROM events WHERE dt >= DATE '2024-05-09'", /*dry_run=*/true);
  ASSERT_OK(r);
  EXPECT_TRUE(r->dry_run);
  EXPECT_TRUE(r->rows.empty());
  EXPECT_EQ(r->bytes_scanned, 0);
  EXPECT_EQ(r->partitions_scanned, 2);
  EXPECT_GT(r->estimated_bytes, 0);
  EXPECT_GT(r->estimated_cost_usd, 0);
}

TEST_F(QueryTest, ScanCutoffRefusesBeforeRunning) {
  LoadEvents();
  auto r = Run("SELECT * FROM events", false, /*max_scan=*/1000);
  EXPECT_STATUS_CODE(r, StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("scan cutoff"), std::string::npos);
  // A filtered query under the cutoff runs.
  auto all = Run("SELECT 1 FROM events", true);
  ASSERT_OK(all);
  auto ok = Run("SELECT count(*) FROM events WHERE dt = DATE '2024-05-01'", false,
                all->estimated_bytes / 5);
  ASSERT_OK(ok);
  // The config default applies when no flag is given.
  SetConfigLine("max_scan_bytes = 0", "max_scan_bytes = 1000");
  EXPECT_STATUS_CODE(Run("SELECT * FROM events"), StatusCode::kResourceExhausted);
}

TEST_F(QueryTest, TableRequiringPartitionFilterRefusesFullScans) {
  SetConfigLine("require_partition_filter = false", "require_partition_filter = true");
  LoadEvents();
  auto r = Run("SELECT count(*) FROM events");
  EXPECT_STATUS_CODE(r, StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("dt"), std::string::npos);
  ASSERT_OK(Run("SELECT count(*) FROM events WHERE dt >= DATE '2024-05-05'"));
}

TEST_F(QueryTest, WritesAndConfigChangesAreRefusedAsNotReadOnly) {
  LoadEvents();
  // Every statement that is not a SELECT is refused the same way, whether or not DuckDB could
  // bind it against a view (DELETE FROM a view is a binder error, not a permission), and before
  // it is bound.
  for (const char* q : {"DELETE FROM events",
                        "INSERT INTO events SELECT * FROM events",
                        "UPDATE events SET amount = 1",
                        "TRUNCATE events",
                        "MERGE INTO events USING events e2 ON true WHEN MATCHED THEN DELETE",
                        "CREATE TABLE x AS SELECT 1",
                        "CREATE VIEW v AS SELECT 1",
                        "DROP VIEW events",
                        "ALTER VIEW events RENAME TO e",
                        "COPY (SELECT 1) TO '/tmp/x.csv'",
                        "COPY events FROM '/etc/passwd'",
                        "ATTACH '/tmp/x.db' AS x",
                        "DETACH x",
                        "INSTALL httpfs",
                        "LOAD httpfs",
                        "SET threads = 1",
                        "RESET threads",
                        "PRAGMA enable_profiling",
                        "CALL pragma_version()",
                        "CHECKPOINT",
                        "VACUUM",
                        "BEGIN",
                        "USE memory",
                        "EXPORT DATABASE '/tmp/x'",
                        "IMPORT DATABASE '/tmp/engage-no-such-export'",
                        "WITH x AS (SELECT 1) DELETE FROM events",
                        "EXPLAIN DELETE FROM events",
                        "EXPLAIN ANALYZE INSERT INTO events SELECT * FROM events",
                        "-- a comment\n delete from events;",
                        "SELECT 1; DELETE FROM events",
                        "DROP VIEW events; SELECT 1"}) {
    SCOPED_TRACE(q);
    auto r = Run(q);
    EXPECT_STATUS_CODE(r, StatusCode::kPermissionDenied);
    EXPECT_NE(r.status().message().find("read-only"), std::string::npos) << r.status().message();
  }
  auto del = Run("DELETE FROM events");
  EXPECT_NE(del.status().message().find("a DELETE statement"), std::string::npos)
      << del.status().message();
  auto ins = Run("insert into events select * from events");
  EXPECT_NE(ins.status().message().find("an INSERT statement"), std::string::npos)
      << ins.status().message();
  auto two = Run("SELECT 1; DELETE FROM events");
  EXPECT_NE(two.status().message().find("statement 2 of 2 is a DELETE statement"),
            std::string::npos)
      << two.status().message();
  // The data is untouched.
  auto n = Run("SELECT count(*) FROM events");
  ASSERT_OK(n);
  EXPECT_EQ(n->rows[0][0], 20000);
}

TEST_F(QueryTest, AnUnknownTableIsNotFoundNamingItAndTheLakesTables) {
  LoadEvents();
  for (const std::string& q :
       {std::string("SELECT * FROM nope"), std::string("SELECT * FROM main.nope"),
        std::string("SELECT count(*) FROM events JOIN nope USING (customer_id)"),
        std::string("EXPLAIN SELECT * FROM nope"), std::string("SELECT * FROM query_table('nope')"),
        std::string("SELECT * FROM \"no-pe\"")}) {
    SCOPED_TRACE(q);
    auto r = Run(q);
    EXPECT_STATUS_CODE(r, StatusCode::kNotFound);
    const std::string m = r.status().message();
    EXPECT_TRUE(m.find("'nope'") != std::string::npos || m.find("'no-pe'") != std::string::npos)
        << m;
    EXPECT_NE(m.find("customers, events"), std::string::npos) << m;
    // Nothing of DuckDB's own wording or catalogs.
    for (const char* internal :
         {"pg_", "EXPLAIN (", "json_serialize", "Catalog Error", "LINE ", "Did you mean", "__q"}) {
      EXPECT_EQ(m.find(internal), std::string::npos) << internal << " in " << m;
    }
  }
  // A near miss suggests the lake table, and only a lake table.
  auto typo = Run("SELECT * FROM evnets");
  EXPECT_STATUS_CODE(typo, StatusCode::kNotFound);
  EXPECT_NE(typo.status().message().find("did you mean 'events'?"), std::string::npos)
      << typo.status().message();
  auto far = Run("SELECT * FROM pg_enumx");
  EXPECT_STATUS_CODE(far, StatusCode::kNotFound);
  EXPECT_EQ(far.status().message().find("did you mean"), std::string::npos)
      << far.status().message();
}

// Predictions of three scoring runs: engagement version 1 (customers 1-3), version 2 later
// (customers 1-2), and another model (customer 1).
constexpr const char* kPredictionsHeader =
    "customer_id,scored_at,cutoff,score,segment,p_alive,expected_transactions,clv,reasons,model,"
    "model_version\n";
constexpr const char* kPredictionRuns[] = {
    "1,2024-05-01 10:00:00,2024-05-01,0.1,low,,,,,engagement,1\n"
    "2,2024-05-01 10:00:00,2024-05-01,0.2,low,,,,,engagement,1\n"
    "3,2024-05-01 10:00:00,2024-05-01,0.3,medium,,,,,engagement,1\n",
    "1,2024-05-02 10:00:00,2024-05-02,0.7,high,,,,,engagement,2\n"
    "2,2024-05-02 10:00:00,2024-05-02,0.8,high,,,,,engagement,2\n",
    "1,2024-05-03 10:00:00,2024-05-03,0.5,medium,,,,,other,1\n"};

TEST_F(QueryTest, PredictionsLatestIsTheLatestScoringOfEachModelAndCustomer) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(IngestFiles("predictions",
                          {dir_.WriteFile("p" + std::to_string(i) + ".csv",
                                          std::string(kPredictionsHeader) + kPredictionRuns[i])}));
  }
  auto r =
      Run("SELECT model, customer_id, model_version, score FROM predictions_latest ORDER BY 1, 2");
  ASSERT_OK(r);
  EXPECT_EQ(r->rows, Json::parse(R"([["engagement",1,2,0.7],["engagement",2,2,0.8],
                                     ["engagement",3,1,0.3],["other",1,1,0.5]])"));
  EXPECT_EQ(r->column_types[1], "BIGINT");  // as customer_id in events and customers
  // Reads of it are reads of `predictions`: authorized, metered and recorded as such.
  EXPECT_EQ(r->tables, (std::set<std::string>{"predictions"}));
  EXPECT_GT(r->bytes_scanned, 0);
  std::set<std::string> seen;
  auto denied = Run("SELECT count(*) FROM Predictions_Latest", false, std::nullopt,
                    [&seen](const std::set<std::string>& t) {
                      seen = t;
                      return PermissionDeniedError("no predictions for you");
                    });
  EXPECT_STATUS_CODE(denied, StatusCode::kPermissionDenied);
  EXPECT_EQ(seen, (std::set<std::string>{"predictions"}));
  for (const std::string& q :
       {std::string("SELECT count(*) FROM predictions_latest"),
        std::string("SELECT count(*) FROM PREDICTIONS_LATEST"),
        std::string("SELECT count(*) FROM query_table('predictions_latest')"),
        std::string("SELECT count(*) FROM predictions_latest WHERE score > 0")}) {
    SCOPED_TRACE(q);
    auto n = Run(q);
    ASSERT_OK(n);
    EXPECT_EQ(n->rows[0][0], 4);
  }
  // Known by name: a typo suggests it, and it cannot be written.
  auto typo = Run("SELECT * FROM predictions_lates");
  EXPECT_STATUS_CODE(typo, StatusCode::kNotFound);
  EXPECT_NE(typo.status().message().find("did you mean 'predictions_latest'?"), std::string::npos)
      << typo.status().message();
  for (const std::string& q : {std::string("DROP VIEW predictions_latest"),
                               std::string("CREATE OR REPLACE VIEW predictions_latest AS SELECT 1"),
                               std::string("DELETE FROM predictions_latest")}) {
    SCOPED_TRACE(q);
    EXPECT_STATUS_CODE(Run(q), StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(Run("SELECT count(*) FROM predictions_latest")->rows[0][0], 4);
  // A query on one partition of predictions runs on views of its files (predictions_latest is
  // defined over them there too); the next one on the whole table sees it all again.
  EXPECT_EQ(Run("SELECT count(*) FROM predictions WHERE dt = DATE '2024-05-02'")->rows[0][0], 2);
  EXPECT_EQ(Run("SELECT count(*) FROM predictions_latest")->rows[0][0], 4);
}

TEST_F(QueryTest, PredictionsLatestOfAnEmptyTableIsEmpty) {
  auto r = Run("SELECT count(*), min(customer_id) FROM predictions_latest");
  ASSERT_OK(r);
  EXPECT_EQ(r->rows[0][0], 0);
  EXPECT_EQ(r->tables, (std::set<std::string>{"predictions"}));
}

// Predictions written when customer_id was stored as text read the same as newer ones.
TEST_F(QueryTest, PredictionsWithTextCustomerIdsStayReadable) {
  std::string predictions = "[tables.predictions]\ntime_column = \"scored_at\"\n";
  for (const char* col :
       {"customer_id:string", "scored_at:timestamp", "cutoff:date", "score:double",
        "segment:string", "p_alive:double", "expected_transactions:double", "clv:double",
        "reasons:string", "model:string", "model_version:int64"}) {
    std::string c = col;
    predictions += "[[tables.predictions.columns]]\nname = \"" + c.substr(0, c.find(':')) +
                   "\"\ntype = \"" + c.substr(c.find(':') + 1) + "\"\n";
  }
  std::string original;
  {
    std::ifstream in(home_.config());
    std::stringstream ss;
    ss << in.rdbuf();
    original = ss.str();
  }
  AppendConfig(predictions);  // the old built-in schema: the id as text
  ASSERT_OK(IngestFiles("predictions", {dir_.WriteFile("old.csv", std::string(kPredictionsHeader) +
                                                                      kPredictionRuns[0])}));
  std::ofstream(home_.config()) << original;  // today's: the id as in events (int64)
  ASSERT_OK(IngestFiles("predictions", {dir_.WriteFile("new.csv", std::string(kPredictionsHeader) +
                                                                      kPredictionRuns[1])}));
  auto r = Run("SELECT customer_id, model_version FROM predictions_latest ORDER BY 1");
  ASSERT_OK(r);
  EXPECT_EQ(r->rows, Json::parse("[[1,2],[2,2],[3,1]]"));
  EXPECT_EQ(r->column_types[0], "BIGINT");
  auto all = Run("SELECT count(*), count(DISTINCT customer_id) FROM predictions");
  ASSERT_OK(all);
  EXPECT_EQ(all->rows[0], Json::parse("[5,3]"));
  auto joined =
      Run("SELECT count(*) FROM predictions_latest p JOIN (SELECT 1::BIGINT AS customer_id) c "
          "USING (customer_id)");
  ASSERT_OK(joined);
  EXPECT_EQ(joined->rows[0][0], 1);
  // Compaction merges an old (text id) and a new (BIGINT id) file of one partition.
  ASSERT_OK(IngestFiles(
      "predictions",
      {dir_.WriteFile("same_day.csv", std::string(kPredictionsHeader) +
                                          "4,2024-05-01 11:00:00,2024-05-01,0.4,medium,,,,,"
                                          "engagement,1\n")}));
  {
    auto writer = Open(true);
    ASSERT_OK(lake::Compact(*writer, "predictions"));
  }
  auto compacted = Run("SELECT customer_id, model_version FROM predictions_latest ORDER BY 1");
  ASSERT_OK(compacted);
  EXPECT_EQ(compacted->rows, Json::parse("[[1,2],[2,2],[3,1],[4,1]]"));
}

TEST_F(QueryTest, FilesOutsideTheLakeCannotBeRead) {
  LoadEvents();
  std::string outside = dir_.WriteFile("secret.csv", "a\n1\n");
  for (const std::string& q :
       {std::string("SELECT * FROM read_csv('/etc/passwd')"), "SELECT * FROM '" + outside + "'",
        std::string("SELECT * FROM read_text('/etc/hostname')"),
        "SELECT * FROM read_parquet('" + dir_.path() + "/src.parquet')"}) {
    auto r = Run(q);
    EXPECT_STATUS_CODE(r, StatusCode::kPermissionDenied);
    EXPECT_NE(r.status().message().find("only the lake"), std::string::npos) << q;
  }
}

TEST_F(QueryTest, SeveralStatementsAndBadSqlAreInvalid) {
  LoadEvents();
  EXPECT_STATUS_CODE(Run("SELECT 1; SELECT 2"), StatusCode::kInvalidArgument);
  auto bad = Run("SELEC 1");
  EXPECT_STATUS_CODE(bad, StatusCode::kInvalidArgument);
  // An error names what is wrong, not the wrapper Engage runs the query in.
  auto column = Run("SELECT nocol FROM events");
  EXPECT_STATUS_CODE(column, StatusCode::kInvalidArgument);
  EXPECT_NE(column.status().message().find("nocol"), std::string::npos);
  auto runtime = Run("SELECT CAST(channel AS INTEGER) FROM events");
  EXPECT_STATUS_CODE(runtime, StatusCode::kInvalidArgument);
  EXPECT_EQ(runtime.status().message().find("__q"), std::string::npos)
      << runtime.status().message();
  EXPECT_EQ(runtime.status().message().find("LINE "), std::string::npos)
      << runtime.status().message();
  ASSERT_OK(Run("SELECT 1;"));  // a trailing semicolon is fine
}

TEST_F(QueryTest, EmptyTableIsQueryable) {
  auto r = Run("SELECT count(*), max(signup_time) FROM customers");
  ASSERT_OK(r);
  EXPECT_EQ(r->rows[0][0], 0);
  EXPECT_EQ(r->bytes_scanned, 0);
}

TEST_F(QueryTest, EveryQueryIsRecordedInHistoryWithItsCost) {
  LoadEvents();
  ASSERT_OK(Run("SELECT count(*) FROM events"));
  EXPECT_FALSE(Run("SELECT * FROM events", false, 10).ok());
  ASSERT_OK(Run("SELECT 1 FROM events", true));
  auto l = Open(false);
  auto h = l->catalog().QueryHistory(10);
  ASSERT_OK(h);
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].status, "dry_run");
  EXPECT_EQ((*h)[1].status, "refused");
  EXPECT_EQ((*h)[2].status, "ok");
  EXPECT_GT((*h)[2].bytes_scanned, 0);
  EXPECT_GT((*h)[2].cost_usd, 0);
}

TEST_F(QueryTest, ResultRowsAreCappedAndFlaggedTruncated) {
  SetConfigLine("max_result_rows = 100000", "max_result_rows = 5");
  LoadEvents();
  auto r = Run("SELECT event_id FROM events ORDER BY event_id");
  ASSERT_OK(r);
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->row_count, 5);
  EXPECT_EQ(r->rows[4][0], 4);
}

TEST_F(QueryTest, EveryResultTypeArrivesAsJson) {
  auto r =
      Run("SELECT 1 AS a, 1 AS a, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t, [1, 2] AS l, "
          "{'k': 'x\"y'} AS s, 1.5::DECIMAL(4, 2) AS d, 'nan'::DOUBLE AS n, NULL AS z, "
          "DATE '2024-02-29' AS dd");
  ASSERT_OK(r);
  // A repeated name is made unique the way DuckDB does it.
  EXPECT_EQ(r->columns, (std::vector<std::string>{"a", "a_1", "t", "l", "s", "d", "n", "z", "dd"}));
  EXPECT_EQ(r->column_types[2], "TIMESTAMPTZ");
  EXPECT_EQ(r->column_types[3], "LIST");
  const Json& row = r->rows[0];
  ASSERT_EQ(row.size(), 9u);
  EXPECT_EQ(row[0], 1);
  EXPECT_EQ(row[1], 1);
  EXPECT_EQ(row[2], "2024-01-01 00:00:00+00");
  EXPECT_EQ(row[3], Json::array({1, 2}));
  EXPECT_EQ(row[4]["k"], "x\"y");
  EXPECT_EQ(row[5], 1.5);
  EXPECT_EQ(row[6], "NaN");
  EXPECT_TRUE(row[7].is_null());
  EXPECT_EQ(row[8], "2024-02-29");
}

// 64-bit integers stay numbers; wider ones arrive as their exact digits (a double would lose them).
TEST_F(QueryTest, WideIntegersKeepEveryDigit) {
  auto r =
      Run("SELECT 18446744073709551615::UBIGINT AS u, '-9223372036854775808'::BIGINT AS b, "
          "170141183460469231731687303715884105727::HUGEINT AS h, "
          "'-170141183460469231731687303715884105728'::HUGEINT AS n, [2::HUGEINT ^ 100] AS l, "
          "1e300 AS e");
  ASSERT_OK(r);
  const Json& row = r->rows[0];
  EXPECT_EQ(row[0], Json(uint64_t{18446744073709551615ULL}));
  EXPECT_EQ(row[1], Json(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(row[2], "170141183460469231731687303715884105727");
  EXPECT_EQ(row[3], "-170141183460469231731687303715884105728");
  EXPECT_TRUE(row[5].is_number_float()) << row[5];
  auto dec =
      Run("SELECT 12345678901234567890123456789.123456789::DECIMAL(38,9) AS d38, "
          "1.5::DECIMAL(18,6) AS small, 0.1::DOUBLE + 0.2::DOUBLE AS dbl, "
          "170141183460469231731687303715884105727::"
          "UHUGEINT AS uh");
  ASSERT_OK(dec);
  EXPECT_EQ(dec->rows[0][0], "12345678901234567890123456789.123456789");
  EXPECT_EQ(dec->rows[0][1], 1.5);
  EXPECT_EQ(dec->rows[0][2], 0.30000000000000004);
  EXPECT_EQ(dec->column_types[3], "UHUGEINT");
  EXPECT_NE(r->ToCsv().find("170141183460469231731687303715884105727"), std::string::npos);
}

TEST_F(QueryTest, AQueryWithANulByteIsRefusedSayingWhere) {
  LoadEvents();
  auto r = Run(std::string("SELECT 1\0; DROP TABLE events", 28));
  EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("NUL byte (at byte 8)"), std::string::npos)
      << r.status().message();
}

// "lake.events" is not DuckDB's "no table named 'events'": the qualifier is the problem.
TEST_F(QueryTest, AQualifiedNameSaysTablesHaveNoSchema) {
  LoadEvents();
  for (const char* q : {"SELECT * FROM lake.events", "SELECT * FROM memory.main.events",
                        "SELECT * FROM engage.events e JOIN customers USING (customer_id)"}) {
    SCOPED_TRACE(q);
    auto r = Run(q);
    EXPECT_STATUS_CODE(r, StatusCode::kNotFound);
    EXPECT_NE(r.status().message().find("without a schema or catalog: write events"),
              std::string::npos)
        << r.status().message();
  }
  ASSERT_OK(Run("SELECT count(*) FROM main.events"));
}

TEST_F(QueryTest, CsvQuotesFieldsAsRfc4180Says) {
  auto r =
      Run("SELECT 'plain' AS \"a,b\", 'x,y' AS q, 'say \"hi\"' AS quote, 'one' || chr(10) || 'two' "
          "AS lf, 'cr' || chr(13) AS cr, NULL AS n, '' AS e, 1.5 AS f, 7 AS i, [1, 2] AS l, "
          "{'k': 'v'} AS s");
  ASSERT_OK(r);
  EXPECT_EQ(r->ToCsv(),
            "\"a,b\",q,quote,lf,cr,n,e,f,i,l,s\n"
            "plain,\"x,y\",\"say \"\"hi\"\"\",\"one\ntwo\",\"cr\r\",,\"\",1.5,7,\"[1,2]\","
            "\"{\"\"k\"\":\"\"v\"\"}\"\n");
}

TEST_F(QueryTest, JsonHasTheDocumentedKeys) {
  LoadEvents();
  auto r = Run("SELECT channel, count(*) FROM events GROUP BY 1");
  ASSERT_OK(r);
  Json j = r->ToJson();
  for (const char* k : {"columns", "rows", "bytes_scanned", "estimated_bytes", "partitions_scanned",
                        "cost_usd", "elapsed_ms"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
}

// --- one long-lived engine ----------------------------------------------------------------------

class LongLivedEngineTest : public QueryTest {
 protected:
  void SetUp() override {
    QueryTest::SetUp();
    lake_ = Open(false);
    auto qe = sql::QueryEngine::Open(*lake_, 1);
    ASSERT_OK(qe);
    engine_ = std::move(*qe);
  }

  int64_t Count(const std::string& q) {
    sql::QueryRequest req;
    req.sql = q;
    auto r = engine_->Run(req);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status().ToString();
    return r.ok() ? r->rows[0][0].get<int64_t>() : -1;
  }

  // Events for each of `days` days from 2024-05-01, `per_day` a day, ids from `first_id`.
  std::string EventsCsv(const std::string& name, int64_t first_id, int days, int per_day) {
    std::string csv = EventsHeader();
    for (int d = 0; d < days; ++d) {
      for (int i = 0; i < per_day; ++i) {
        csv += fmt::format("{},1,2024-05-{:02d} 12:00:00,session,web,,\n",
                           first_id + d * per_day + i, d + 1);
      }
    }
    return dir_.WriteFile(name, csv);
  }

  std::unique_ptr<sql::QueryEngine> engine_;
};

TEST_F(LongLivedEngineTest, SeesAnIngestMadeThroughAnotherLake) {
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 0);
  EXPECT_EQ(engine_->ViewBuildsForTesting(), 1);
  // Another Lake (its own meta.db connection, as `engage ingest` in another process) ingests.
  ASSERT_OK(IngestFiles("events", {EventsCsv("a.csv", 1, 3, 2)}));
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 6);
  EXPECT_EQ(engine_->ViewBuildsForTesting(), 2);
  // Trusted SQL sees it too.
  ASSERT_OK(IngestFiles("events", {EventsCsv("b.csv", 100, 1, 4)}));
  auto trusted = engine_->RunTrusted("SELECT count(*) FROM events", "test");
  ASSERT_OK(trusted);
  EXPECT_EQ(trusted->Int(0, 0), 10);
  EXPECT_EQ(engine_->ViewBuildsForTesting(), 3);
}

// A repeated query reuses its check and plan resolution until the catalog changes; it is still
// authorized, estimated and metered each time.
TEST_F(LongLivedEngineTest, ARepeatedQueryReusesItsResolutionUntilTheCatalogChanges) {
  ASSERT_OK(IngestFiles("events", {EventsCsv("a.csv", 1, 3, 2)}));
  int authorized = 0;
  sql::QueryRequest req;
  req.sql = "SELECT count(*) FROM events WHERE dt = DATE '2024-05-02'";
  req.authorize = [&authorized](const std::set<std::string>& tables) {
    ++authorized;
    return tables.count("events") ? Status::Ok() : PermissionDeniedError("no");
  };
  auto first = engine_->Run(req);
  ASSERT_OK(first);
  auto second = engine_->Run(req);
  ASSERT_OK(second);
  EXPECT_EQ(engine_->CheckedQueryHitsForTesting(), 1);
  EXPECT_EQ(authorized, 2);
  EXPECT_EQ(second->rows, first->rows);
  EXPECT_EQ(second->estimated_bytes, first->estimated_bytes);
  EXPECT_GT(second->bytes_scanned, 0);
  // A refusal is not cached as an answer: a denying policy is asked again and refuses.
  req.authorize = [](const std::set<std::string>&) { return PermissionDeniedError("denied"); };
  EXPECT_STATUS_CODE(engine_->Run(req), StatusCode::kPermissionDenied);
  // New files for that day: resolved again, and the new rows are counted.
  ASSERT_OK(IngestFiles("events", {EventsCsv("b.csv", 100, 3, 2)}));
  req.authorize = nullptr;
  auto after = engine_->Run(req);
  ASSERT_OK(after);
  EXPECT_EQ(after->rows[0][0], 4);
  ASSERT_EQ(after->scans.size(), 1u);
  EXPECT_EQ(after->scans[0].files_scanned, 2);
  EXPECT_EQ(engine_->CheckedQueryHitsForTesting(), 2);  // the denied run was a hit; this is not
  // A long text is checked every time rather than kept (the cache holds 64 KiB texts at most).
  req.sql = "SELECT count(*) FROM events /* " + std::string(70 * 1024, 'x') + " */";
  ASSERT_OK(engine_->Run(req));
  ASSERT_OK(engine_->Run(req));
  EXPECT_EQ(engine_->CheckedQueryHitsForTesting(), 2);
}

TEST_F(LongLivedEngineTest, SeesCompactionAndRetention) {
  ASSERT_OK(IngestFiles("events", {EventsCsv("a.csv", 1, 3, 2)}));
  ASSERT_OK(IngestFiles("events", {EventsCsv("b.csv", 100, 3, 2)}));
  sql::QueryRequest req;
  req.sql = "SELECT count(*) FROM events WHERE dt = DATE '2024-05-02'";
  auto before = engine_->Run(req);
  ASSERT_OK(before);
  EXPECT_EQ(before->rows[0][0], 4);
  ASSERT_EQ(before->scans.size(), 1u);
  EXPECT_EQ(before->scans[0].files_scanned, 2);
  EXPECT_EQ(before->scans[0].files_total, 6);
  {
    auto writer = Open(true);
    ASSERT_OK(lake::Compact(*writer, "events"));
  }
  auto compacted = engine_->Run(req);
  ASSERT_OK(compacted);
  EXPECT_EQ(compacted->rows[0][0], 4);
  ASSERT_EQ(compacted->scans.size(), 1u);
  EXPECT_EQ(compacted->scans[0].files_scanned, 1);
  EXPECT_EQ(compacted->scans[0].files_total, 3);
  // Retention keeps 30 days from "today" (2024-06-01): 2024-05-01 goes.
  SetConfigLine("retention_days = 400", "retention_days = 30");
  {
    auto writer = Open(true);
    auto r = lake::ApplyRetention(*writer, "events", false);
    ASSERT_OK(r);
    ASSERT_EQ(r->dropped.size(), 1u);
  }
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 8);
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE dt = DATE '2024-05-01'"), 0);
}

TEST_F(LongLivedEngineTest, ViewsAreNotRebuiltWhenNothingChanged) {
  ASSERT_OK(IngestFiles("events", {EventsCsv("a.csv", 1, 3, 2)}));
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 6);
  const int64_t builds = engine_->ViewBuildsForTesting();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Count("SELECT count(*) FROM events WHERE dt = DATE '2024-05-03'"), 2);
    ASSERT_OK(engine_->RunTrusted("SELECT count(*) FROM events", "test"));
  }
  // Refused and failed queries, a re-ingest of the same content (a no-op) and the history the
  // queries wrote change nothing either.
  sql::QueryRequest bad;
  bad.sql = "SELECT * FROM events";
  bad.max_scan_bytes = 1;
  EXPECT_STATUS_CODE(engine_->Run(bad), StatusCode::kResourceExhausted);
  ASSERT_OK(IngestFiles("events", {dir_.path() + "/a.csv"}));
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 6);
  EXPECT_EQ(engine_->ViewBuildsForTesting(), builds);
}

TEST_F(LongLivedEngineTest, AQueryRunsOnViewsOfTheFilesItsPlanResolved) {
  ASSERT_OK(IngestFiles("events", {EventsCsv("a.csv", 1, 3, 2)}));
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE dt = DATE '2024-05-02'"), 2);
  EXPECT_EQ(engine_->RunViewBuildsForTesting(), 1);
  // The same files again: the view is reused.
  EXPECT_EQ(Count("SELECT sum(event_id) FROM events WHERE dt = DATE '2024-05-02'"), 3 + 4);
  EXPECT_EQ(engine_->RunViewBuildsForTesting(), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE dt >= DATE '2024-05-02'"), 4);
  EXPECT_EQ(engine_->RunViewBuildsForTesting(), 2);
  // A query reading every file runs on the full views.
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 6);
  EXPECT_EQ(engine_->RunViewBuildsForTesting(), 2);
  // A pruned scan reads no file but still has the table's columns.
  EXPECT_EQ(Count("SELECT count(event_time) FROM events WHERE dt = DATE '1999-01-01'"), 0);
  EXPECT_EQ(engine_->RunViewBuildsForTesting(), 3);
  // New files: the run views are defined again from the new generation's files.
  ASSERT_OK(IngestFiles("events", {EventsCsv("b.csv", 100, 3, 1)}));
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE dt = DATE '2024-05-02'"), 3);
  EXPECT_EQ(engine_->RunViewBuildsForTesting(), 4);
}

TEST_F(LongLivedEngineTest, QueriesOnRestrictedViewsReturnWhatTheFullViewsReturn) {
  LoadEvents();
  ASSERT_OK(IngestFiles("customers", {dir_.WriteFile("c.csv",
                                                     "customer_id,signup_time\n"
                                                     "1,2024-01-01 00:00:00\n"
                                                     "2,2024-01-02 00:00:00\n")}));
  for (const std::string& q : {
           std::string("SELECT count(*), sum(amount) FROM events WHERE dt = DATE '2024-05-03'"),
           std::string("SELECT event_id FROM events WHERE dt BETWEEN '2024-05-02' AND "
                       "'2024-05-04' ORDER BY event_id DESC LIMIT 7"),
           std::string("SELECT dt, count(*) FROM events WHERE dt IN ('2024-05-01', "
                       "'2024-05-09') GROUP BY dt ORDER BY dt"),
           std::string("SELECT count(*) FROM events WHERE dt = (SELECT max(dt) FROM events)"),
           std::string("SELECT (SELECT count(*) FROM events WHERE dt = DATE '2024-05-02'), "
                       "(SELECT count(*) FROM events WHERE dt = DATE '2024-05-05')"),
           std::string("SELECT count(*) FROM events a JOIN events b USING (event_id) WHERE a.dt "
                       "= DATE '2024-05-04' AND b.dt >= DATE '2024-05-04'"),
           std::string("SELECT c.customer_id, count(*) FROM events e JOIN customers c USING "
                       "(customer_id) WHERE e.dt = DATE '2024-05-06' GROUP BY 1 ORDER BY 1"),
           std::string("WITH d AS (SELECT * FROM events WHERE dt > DATE '2024-05-08') SELECT "
                       "count(*), min(event_time) FROM d"),
           std::string("SELECT event_id, row_number() OVER (ORDER BY event_time) FROM events "
                       "WHERE dt = DATE '2024-05-07' ORDER BY 1 LIMIT 3"),
           std::string("SELECT count(*) FROM events WHERE dt = DATE '2024-05-02' UNION ALL "
                       "SELECT count(*) FROM events WHERE dt = DATE '2024-05-08'"),
           std::string("SELECT count(*) FROM events WHERE dt = DATE '2024-05-02' AND EXISTS "
                       "(SELECT 1 FROM customers WHERE customer_id = 2)"),
           // DuckDB answers a count(*) of one pruned file from its metadata while planning: the
           // plan then lists no file for it.
           std::string("SELECT count(*) FROM events WHERE dt = DATE '2024-05-01'"),
           std::string("SELECT (SELECT count(*) FROM events WHERE dt = DATE '2024-05-01'), "
                       "sum(amount) FROM events WHERE dt = DATE '2024-05-02'"),
           std::string("SELECT count(*) FROM events WHERE dt = DATE '2024-05-01' AND amount > "
                       "1e12"),
           "SELECT count(*) FROM read_parquet('" + home_.lake() +
               "/events/dt=2024-05-05/*.parquet') WHERE amount > 10",
       }) {
    SCOPED_TRACE(q);
    sql::QueryRequest req;
    req.sql = q;
    auto r = engine_->Run(req);
    ASSERT_OK(r);
    auto full = engine_->RunTrusted("SELECT to_json(__q) FROM (" + q + ") __q", "test");
    ASSERT_OK(full);
    Json expected = Json::array();
    for (int64_t i = 0; i < full->RowCount(); ++i) {
      Json row = Json::array();
      Json obj = Json::parse(full->Str(0, i).value_or("{}"));
      for (auto& [k, v] : obj.items()) row.push_back(v);
      expected.push_back(row);
    }
    EXPECT_EQ(r->rows, expected);
  }
  EXPECT_GT(engine_->RunViewBuildsForTesting(), 0);
}

TEST_F(LongLivedEngineTest, ThreadsShareOneEngine) {
  ASSERT_OK(IngestFiles("events", {EventsCsv("a.csv", 1, 5, 3)}));
  std::vector<std::thread> threads;
  std::atomic<int64_t> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        sql::QueryRequest req;
        req.sql = fmt::format("SELECT count(*) FROM events WHERE dt = DATE '2024-05-0{}'", t + 1);
        req.timeout_ms = 60000;  // watched: the engine's one watchdog serves every thread
        req.cancelled = [] { return false; };
        auto r = engine_->Run(req);
        if (!r.ok() || r->rows[0][0] != 3) {
          ++wrong;
          ADD_FAILURE() << req.sql << ": " << (r.ok() ? r->ToJson().dump() : r.status().ToString());
        }
        auto all = engine_->RunTrusted("SELECT count(*) FROM events", "test");
        if (!all.ok() || all->Int(0, 0) != 15) {
          ++wrong;
          ADD_FAILURE() << (all.ok() ? std::to_string(all->Int(0, 0)) : all.status().ToString());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  auto h = lake_->catalog().QueryHistory(100);
  ASSERT_OK(h);
  EXPECT_EQ(h->size(), 40u);
}

// --- the trust boundary: tables as DuckDB resolved them, every scan metered -------------------

class ResolvedQueryTest : public QueryTest {
 protected:
  void SetUp() override {
    QueryTest::SetUp();
    LoadEvents();
    std::string c = dir_.WriteFile("c.csv",
                                   "customer_id,signup_time\n1,2024-01-01 00:00:00\n"
                                   "2,2024-01-02 00:00:00\n");
    ASSERT_OK(IngestFiles("customers", {c}));
  }

  // Runs `q` with an authorize callback that records the tables it is shown and allows them.
  Result<sql::QueryResult> RunSeeing(const std::string& q, std::set<std::string>* seen,
                                     std::optional<int64_t> max_scan = std::nullopt) {
    return Run(q, false, max_scan, [seen](const std::set<std::string>& tables) {
      *seen = tables;
      return Status::Ok();
    });
  }

  std::string LakeGlob(const std::string& table) {
    return home_.lake() + "/" + table + "/*/*.parquet";
  }
};

TEST_F(ResolvedQueryTest, AuthorizeSeesTheTablesDuckDbResolvedWhateverTheSpelling) {
  for (const std::string& q :
       {std::string("SELECT * FROM CUSTOMERS LIMIT 2"), std::string("FROM \"Customers\""),
        std::string("SELECT * FROM main.customers"),
        std::string("SELECT * FROM query_table('customers')"),
        // DuckDB answers a count(*) of one file from its metadata while planning: the optimized
        // plan has no scan left, the table is still read.
        std::string("SELECT count(*) FROM query_table('customers')"),
        "SELECT count(*) FROM read_parquet('" + LakeGlob("customers") + "')",
        std::string("SELECT (SELECT count(*) FROM customers)"),
        std::string("WITH x AS (SELECT * FROM cUsToMeRs) SELECT * FROM x"),
        "SELECT * FROM read_parquet('" + LakeGlob("customers") + "')",
        std::string("EXPLAIN SELECT * FROM CUSTOMERS"),
        std::string("EXPLAIN ANALYZE SELECT * FROM query_table('customers')"),
        std::string("-- c\n/* d */ explain (format json) FROM customers")}) {
    std::set<std::string> seen;
    auto r = RunSeeing(q, &seen);
    SCOPED_TRACE(q);
    ASSERT_OK(r);
    EXPECT_EQ(seen, std::set<std::string>{"customers"}) << q;
  }
  std::set<std::string> seen;
  ASSERT_OK(RunSeeing("SELECT count(*) FROM events JOIN Customers USING (customer_id)", &seen));
  EXPECT_EQ(seen, (std::set<std::string>{"customers", "events"}));
  // A scan pruned to no file still reads its table as far as authorization goes.
  ASSERT_OK(RunSeeing("SELECT * FROM customers WHERE dt = DATE '1900-01-01'", &seen));
  EXPECT_EQ(seen, std::set<std::string>{"customers"});
  // Pure generators read no table.
  ASSERT_OK(RunSeeing("SELECT * FROM range(3), unnest([1, 2])", &seen));
  EXPECT_TRUE(seen.empty());
}

TEST_F(ResolvedQueryTest, ARefusalFromAuthorizeStopsTheQuery) {
  auto r = Run("SELECT * FROM query_table('CUSTOMERS')", false, std::nullopt,
               [](const std::set<std::string>& tables) {
                 return tables.count("customers") ? PermissionDeniedError("no customers for you")
                                                  : Status::Ok();
               });
  EXPECT_STATUS_CODE(r, StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "no customers for you");
}

TEST_F(ResolvedQueryTest, TableFunctionsOtherThanLakeScansAreRefused) {
  // A readable CSV inside the lake directory, but not a table's file.
  {
    std::ofstream notes(home_.lake() + "/notes.csv");
    notes << "a,b\n1,2\n";
  }
  const std::string notes = home_.lake() + "/notes.csv";
  // A quarantined row: binding read_csv over it used to quote the row in the sniffer's error.
  std::filesystem::create_directories(home_.lake() + "/_quarantine/customers");
  const std::string quarantined = home_.lake() + "/_quarantine/customers/q.jsonl";
  {
    std::ofstream q(quarantined);
    q << "{\"record\":{\"customer_id\":\"SECRET-ALICE-123\"}}\n";
  }
  for (const std::string& q :
       {"SELECT * FROM read_csv('" + notes + "')", "SELECT * FROM '" + notes + "'",
        "SELECT * FROM read_text('" + notes + "')",
        "SELECT * FROM read_csv('" + quarantined +
            "', header=true, delim='\x01', quote='', names=['a','b'])",
        "SELECT * FROM read_json('" + quarantined + "', format='array')",
        "SELECT * FROM query_table('" + quarantined + "')",
        "SELECT * FROM query('SELECT * FROM read_csv(''" + quarantined + "'')')",
        "SELECT * FROM '" + LakeGlob("customers") + "'",
        "SELECT * FROM read_parquet('" + quarantined + "')"}) {
    std::set<std::string> seen;
    auto r = RunSeeing(q, &seen);
    SCOPED_TRACE(q);
    EXPECT_STATUS_CODE(r, StatusCode::kPermissionDenied);
    EXPECT_EQ(r.status().message().find("SECRET"), std::string::npos) << r.status().message();
  }
  for (const std::string& q : {"SELECT * FROM read_text('" + LakeGlob("events") + "')",
                               "SELECT * FROM read_blob('" + LakeGlob("events") + "')",
                               "SELECT * FROM glob('" + LakeGlob("events") + "')",
                               "SELECT * FROM parquet_metadata('" + LakeGlob("events") + "')",
                               std::string("SELECT * FROM duckdb_settings()"),
                               std::string("SELECT * FROM information_schema.tables"),
                               std::string("SELECT * FROM duckdb_views()")}) {
    std::set<std::string> seen;
    auto r = RunSeeing(q, &seen);
    SCOPED_TRACE(q);
    EXPECT_STATUS_CODE(r, StatusCode::kPermissionDenied);
  }
}

TEST_F(ResolvedQueryTest, ReadParquetTakesOnlyLiteralArguments) {
  // A path computed from the clock names one table's files when the query is checked and another
  // table's when it runs: authorized for events, it would read customers.
  const std::string events = LakeGlob("events"), customers = LakeGlob("customers");
  for (const std::string& q :
       {"SELECT count(*) FROM read_parquet(CASE WHEN epoch_ms(now()) % 2 = 0 THEN '" + events +
            "' ELSE '" + customers + "' END)",
        "SELECT count(*) FROM read_parquet('" + home_.lake() + "/' || 'customers/*/*.parquet')",
        "SELECT count(*) FROM read_parquet((SELECT '" + customers + "'))",
        "SELECT count(*) FROM read_parquet(['" + events + "', lower('" + customers + "')])"}) {
    SCOPED_TRACE(q);
    std::set<std::string> seen;
    auto r = RunSeeing(q, &seen);
    EXPECT_STATUS_CODE(r, StatusCode::kPermissionDenied);
    EXPECT_NE(r.status().message().find("literal"), std::string::npos) << r.status().message();
  }
  // Literals, lists of them and options are fine.
  std::set<std::string> seen;
  ASSERT_OK(RunSeeing("SELECT count(*) FROM read_parquet(['" + events +
                          "'], hive_partitioning = "
                          "true, hive_types = {'dt': 'DATE'}) WHERE dt = DATE '2024-05-02'",
                      &seen));
  EXPECT_EQ(seen, std::set<std::string>{"events"});
  ASSERT_OK(RunSeeing("SELECT count(*) FROM parquet_scan('" + customers + "')", &seen));
  EXPECT_EQ(seen, std::set<std::string>{"customers"});
}

TEST_F(ResolvedQueryTest, TheScanCutoffSeesEveryScanWhateverTheSpelling) {
  std::set<std::string> seen;
  for (const std::string& q :
       {std::string("SELECT sum(amount) FROM EVENTS"),
        std::string("SELECT sum(amount) FROM query_table('events')"),
        std::string("EXPLAIN ANALYZE SELECT sum(amount) FROM events"),
        "SELECT sum(amount) FROM read_parquet('" + LakeGlob("events") + "')"}) {
    auto r = RunSeeing(q, &seen, /*max_scan=*/100000);
    SCOPED_TRACE(q);
    EXPECT_STATUS_CODE(r, StatusCode::kResourceExhausted);
    auto dry = RunSeeing(q, &seen);
    ASSERT_OK(dry);
    EXPECT_GT(dry->estimated_bytes, 100000) << q;
    EXPECT_EQ(dry->partitions_scanned, 10) << q;
  }
}

TEST_F(ResolvedQueryTest, ThePartitionFilterRuleSeesEveryScanWhateverTheSpelling) {
  SetConfigLine("require_partition_filter = false", "require_partition_filter = true");
  std::set<std::string> seen;
  for (const std::string& q : {std::string("SELECT count(*) FROM EVENTS"),
                               std::string("SELECT count(*) FROM query_table('events')"),
                               std::string("EXPLAIN ANALYZE SELECT count(*) FROM events"),
                               "SELECT count(*) FROM read_parquet('" + LakeGlob("events") + "')"}) {
    SCOPED_TRACE(q);
    EXPECT_STATUS_CODE(RunSeeing(q, &seen), StatusCode::kFailedPrecondition);
  }
  ASSERT_OK(
      RunSeeing("SELECT count(*) FROM query_table('events') WHERE dt = DATE '2024-05-02'", &seen));
  ASSERT_OK(RunSeeing(
      "SELECT count(*) FROM read_parquet('" + home_.lake() + "/events/dt=2024-05-02/*.parquet')",
      &seen));
}

TEST_F(ResolvedQueryTest, AQueryIsStoppedOnceItReallyReadsMoreThanTheCutoff) {
  // A recursive query rescans a table on every step: its estimate is one scan's.
  std::set<std::string> seen;
  auto r = RunSeeing(
      "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000 AND "
      "(SELECT count(*) FROM events WHERE dt = DATE '2024-05-01' AND amount IS NULL AND n > 0) = "
      "0) SELECT count(*) FROM r",
      &seen, /*max_scan=*/200000);
  EXPECT_STATUS_CODE(r, StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("reading more than the scan cutoff"), std::string::npos)
      << r.status().message();
}

TEST_F(ResolvedQueryTest, APlanDuckDbCannotSerializeOptimizedIsEstimatedOnItsBoundPlan) {
  // DuckDB 1.4 fails to serialize this query's optimized plan (an internal binding error); the
  // bound plan before optimization still names the scan, charged with every file of the table.
  std::set<std::string> seen;
  auto r = RunSeeing(
      "SELECT count(*), count(DISTINCT customer_id), min(event_id), count(channel), min(amount) "
      ">= 0 AND max(amount) <= 1, count(properties) FROM events",
      &seen);
  ASSERT_OK(r);
  EXPECT_EQ(seen, std::set<std::string>{"events"});
  EXPECT_EQ(r->rows[0][0], 20000);
  EXPECT_EQ(r->partitions_scanned, 10);
  EXPECT_STATUS_CODE(RunSeeing("SELECT count(*), count(DISTINCT customer_id), min(event_id), "
                               "count(channel), min(amount) >= 0 AND max(amount) <= 1, "
                               "count(properties) FROM events",
                               &seen, /*max_scan=*/1000),
                     StatusCode::kResourceExhausted);
}

TEST_F(ResolvedQueryTest, AQueryPastItsTimeoutIsStopped) {
  lake_ = Open(false);
  auto qe = sql::QueryEngine::Open(*lake_, 1);
  ASSERT_OK(qe);
  sql::QueryRequest req;
  req.sql = "SELECT count(*) FROM events a, events b, events c";  // 8e12 rows
  req.timeout_ms = 300;
  auto r = (*qe)->Run(req);
  EXPECT_STATUS_CODE(r, StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("time limit"), std::string::npos);
  // The engine still answers afterwards, and its watchdog stops the next runaway query too.
  req.sql = "SELECT count(*) FROM events";
  auto again = (*qe)->Run(req);
  ASSERT_OK(again);
  EXPECT_EQ(again->rows[0][0], 20000);
  req.sql = "SELECT count(*) FROM events a, events b, events c";
  EXPECT_STATUS_CODE((*qe)->Run(req), StatusCode::kDeadlineExceeded);
}

TEST_F(ResolvedQueryTest, ACancelledQueryStops) {
  lake_ = Open(false);
  auto qe = sql::QueryEngine::Open(*lake_, 1);
  ASSERT_OK(qe);
  sql::QueryRequest req;
  req.sql = "SELECT count(*) FROM events a, events b, events c";
  auto start = std::chrono::steady_clock::now();
  req.cancelled = [start] {
    return std::chrono::steady_clock::now() - start > std::chrono::milliseconds(200);
  };
  auto r = (*qe)->Run(req);
  EXPECT_STATUS_CODE(r, StatusCode::kCancelled);
}

TEST_F(QueryTest, TheEngineSettingsAreNotReadable) {
  LoadEvents();
  for (const char* q :
       {"SELECT current_setting('allowed_directories')", "SELECT CURRENT_SETTING('temp_directory')",
        "SELECT count(*) FROM events WHERE current_setting('threads') > 0",
        "SELECT getvariable('x')"}) {
    SCOPED_TRACE(q);
    auto r = Run(q);
    EXPECT_STATUS_CODE(r, StatusCode::kPermissionDenied);
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().find(home_.root), std::string::npos) << r.status().message();
    }
  }
}

}  // namespace
}  // namespace engage::testing
