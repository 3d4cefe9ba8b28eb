#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engage/core/json.h"
#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

namespace fs = std::filesystem;

std::vector<Json> ReadJsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<Json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(Json::parse(line));
  return out;
}

int CountFiles(const std::string& dir) {
  if (!fs::exists(dir)) return 0;
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

const char kGoodCsv[] =
    "event_id,customer_id,event_time,event_type,channel,amount,properties\n"
    "1,10,2024-05-01 10:00:00,purchase,web,12.5,\n"
    "2,10,2024-05-01 11:00:00,session,app,,\n"
    "3,11,2024-05-02T09:30:00Z,page_view,web,,\"{\"\"page\"\":\"\"/p/1\"\"}\"\n";

TEST_F(LakeTest, CsvRowsLandInDatePartitions) {
  std::string f = dir_.WriteFile("events.csv", kGoodCsv);
  auto r = IngestFiles("events", {f});
  ASSERT_OK(r);
  EXPECT_FALSE(r->no_op);
  EXPECT_EQ(r->record.rows_read, 3);
  EXPECT_EQ(r->record.rows_accepted, 3);
  EXPECT_EQ(r->record.rows_rejected, 0);
  EXPECT_EQ(r->record.partitions, (std::vector<std::string>{"2024-05-01", "2024-05-02"}));
  EXPECT_TRUE(fs::exists(home_.lake() + "/events/dt=2024-05-01"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + LakeGlob("events") + "'"), "3");
  EXPECT_EQ(Scalar("SELECT sum(amount) FROM '" + LakeGlob("events") + "'"), "12.5");
  EXPECT_TRUE(r->quarantine_file.empty());
  // The file name carries the ingest id.
  bool named = false;
  for (const auto& e : fs::recursive_directory_iterator(home_.lake() + "/events")) {
    if (e.is_regular_file())
      named |= e.path().filename().string().starts_with("part-" + r->record.id);
  }
  EXPECT_TRUE(named);
}

TEST_F(LakeTest, ReingestOfSameContentIsNoOp) {
  std::string f = dir_.WriteFile("events.csv", kGoodCsv);
  auto first = IngestFiles("events", {f});
  ASSERT_OK(first);
  std::string copy = dir_.WriteFile("copy-of-events.csv", kGoodCsv);
  auto second = IngestFiles("events", {copy});
  ASSERT_OK(second);
  EXPECT_TRUE(second->no_op);
  ASSERT_EQ(second->skipped.size(), 1u);
  EXPECT_EQ(second->skipped[0].previous_ingest_id, first->record.id);
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + LakeGlob("events") + "'"), "3");
}

TEST_F(LakeTest, ReusedIdWithSameContentIsNoOpAndWithOtherContentFails) {
  std::string f = dir_.WriteFile("events.csv", kGoodCsv);
  ASSERT_OK(IngestFiles("events", {f}, "batch-1"));
  auto again = IngestFiles("events", {f}, "batch-1");
  ASSERT_OK(again);
  EXPECT_TRUE(again->no_op);
  std::string other =
      dir_.WriteFile("other.csv", EventsHeader() + "9,10,2024-05-03 10:00:00,session,web,,\n");
  EXPECT_STATUS_CODE(IngestFiles("events", {other}, "batch-1"), StatusCode::kAlreadyExists);
}

TEST_F(LakeTest, BadRowsAreQuarantinedWithLineAndReason) {
  std::string csv = EventsHeader() +
                    "1,10,2024-05-01 10:00:00,purchase,web,12.5,\n"    // line 2 ok
                    "2,10,not-a-time,session,web,,\n"                  // line 3 bad time
                    "3,10,2024-05-01 10:00:00,purchase,web,abc,\n"     // line 4 bad amount
                    "4,10,2024-05-01 10:00:00,teleport,web,,\n"        // line 5 bad type
                    "5,10,2024-05-01 10:00:00\n"                       // line 6 columns
                    "6,,2024-05-01 10:00:00,session,web,,\n"           // line 7 missing
                    "7,10,2024-05-01 10:00:00,purchase,web,-3,\n"      // line 8 negative
                    "8,10,1970-01-01 00:00:00,session,web,,\n"         // line 9 too old
                    "9,10,2030-01-01 00:00:00,session,web,,\n"         // line 10 future
                    "10,10,2024-05-01 10:00:00,session,w\xff\xfe,,\n"  // line 11 utf-8
                    "11,10,2024-05-01 12:00:00,session,app,,\n";       // line 12 ok
  std::string f = dir_.WriteFile("mixed.csv", csv);
  auto r = IngestFiles("events", {f});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_read, 11);
  EXPECT_EQ(r->record.rows_accepted, 2);
  EXPECT_EQ(r->record.rows_rejected, 9);
  ASSERT_FALSE(r->quarantine_file.empty());
  EXPECT_EQ(r->quarantine_file, home_.quarantine() + "/events/" + r->record.id + ".jsonl");
  auto rows = ReadJsonl(r->quarantine_file);
  ASSERT_EQ(rows.size(), 9u);
  std::map<int64_t, std::string> by_line;
  for (const auto& j : rows) {
    EXPECT_EQ(j["source_file"], f);
    by_line[j["line"].get<int64_t>()] = j["reason"].get<std::string>();
  }
  EXPECT_NE(by_line[3].find("event_time: cannot parse 'not-a-time'"), std::string::npos)
      << by_line[3];
  EXPECT_NE(by_line[4].find("amount: cannot parse 'abc'"), std::string::npos) << by_line[4];
  EXPECT_NE(by_line[5].find("event_type: 'teleport' is not one of the allowed values"),
            std::string::npos)
      << by_line[5];
  EXPECT_NE(by_line[6].find("unparseable line"), std::string::npos) << by_line[6];
  EXPECT_NE(by_line[7].find("customer_id: required value is missing"), std::string::npos)
      << by_line[7];
  EXPECT_NE(by_line[8].find("below the minimum"), std::string::npos) << by_line[8];
  EXPECT_NE(by_line[9].find("outside the accepted range"), std::string::npos) << by_line[9];
  EXPECT_NE(by_line[10].find("outside the accepted range"), std::string::npos) << by_line[10];
  EXPECT_NE(by_line[11].find("unparseable line"), std::string::npos) << by_line[11];
  // The raw record is kept for repair.
  for (const auto& j : rows) {
    if (j["line"] == 4) {
      EXPECT_EQ(j["record"]["amount"], "abc");
    }
  }
  EXPECT_EQ(Scalar("SELECT string_agg(event_id::VARCHAR, ',' ORDER BY event_id) FROM '" +
                   LakeGlob("events") + "'"),
            "1,11");
}

TEST_F(LakeTest, OverlongLineIsQuarantinedAndOthersLoad) {
  std::string big(10 * 1024 * 1024, 'x');
  std::string csv = EventsHeader() + "1,10,2024-05-01 10:00:00,session,web,,\n" +
                    "2,10,2024-05-01 10:00:00,session,web,," + big + "\n" +
                    "3,10,2024-05-01 10:00:00,session,web,,\n";
  std::string f = dir_.WriteFile("big.csv", csv);
  auto r = IngestFiles("events", {f});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_accepted, 2);
  EXPECT_EQ(r->record.rows_rejected, 1);
  auto rows = ReadJsonl(r->quarantine_file);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["line"], 3);
  EXPECT_NE(rows[0]["reason"].get<std::string>().find("line size"), std::string::npos)
      << rows[0]["reason"];
}

TEST_F(LakeTest, EmptyFileFailsAndWritesNothing) {
  std::string f = dir_.WriteFile("empty.csv", "");
  auto r = IngestFiles("events", {f});
  EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("empty.csv"), std::string::npos);
  EXPECT_EQ(CountFiles(home_.lake() + "/events"), 0);
  auto l = Open(false);
  EXPECT_TRUE(l->catalog().RecentIngests(10)->empty());
}

TEST_F(LakeTest, MissingFileAndUnknownTableAreNotFound) {
  auto missing = IngestFiles("events", {dir_.path() + "/nope.csv"});
  EXPECT_STATUS_CODE(missing, StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.csv"), std::string::npos);
  std::string f = dir_.WriteFile("events.csv", kGoodCsv);
  auto unknown = IngestFiles("clicks", {f});
  EXPECT_STATUS_CODE(unknown, StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("clicks"), std::string::npos);
  EXPECT_STATUS_CODE(IngestFiles("events", {dir_.path() + "/*.nothing"}), StatusCode::kNotFound);
}

TEST_F(LakeTest, MissingRequiredColumnFailsNamingIt) {
  std::string f = dir_.WriteFile("nocust.csv",
                                 "event_id,event_time,event_type\n1,2024-05-01 10:00:00,session\n");
  auto r = IngestFiles("events", {f});
  EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("customer_id"), std::string::npos) << r.status().message();
  EXPECT_EQ(CountFiles(home_.lake() + "/events"), 0);
}

TEST_F(LakeTest, OptionalColumnsMayBeAbsent) {
  std::string f = dir_.WriteFile(
      "min.csv", "event_id,customer_id,event_time,event_type\n1,5,2024-05-01 10:00:00,session\n");
  auto r = IngestFiles("events", {f});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_accepted, 1);
  EXPECT_EQ(Scalar("SELECT channel IS NULL FROM '" + LakeGlob("events") + "'"), "true");
}

TEST_F(LakeTest, JsonlWithBrokenLineQuarantinesIt) {
  std::string f = dir_.WriteFile(
      "events.jsonl",
      "{\"event_id\":1,\"customer_id\":7,\"event_time\":\"2024-05-01T10:00:00Z\","
      "\"event_type\":\"purchase\",\"amount\":9.5}\n"
      "{not json\n"
      "[1,2,3]\n"
      "{\"event_id\":2,\"customer_id\":\"x\",\"event_time\":\"2024-05-01T10:00:00Z\","
      "\"event_type\":\"session\"}\n"
      "{\"event_id\":3,\"customer_id\":8,\"event_time\":\"2024-05-02T10:00:00Z\","
      "\"event_type\":\"session\",\"channel\":\"app\"}\n");
  auto r = IngestFiles("events", {f});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_read, 5);
  EXPECT_EQ(r->record.rows_accepted, 2);
  auto rows = ReadJsonl(r->quarantine_file);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["line"], 2);
  EXPECT_EQ(rows[0]["reason"], "line is not valid JSON");
  EXPECT_EQ(rows[1]["line"], 3);
  EXPECT_EQ(rows[1]["reason"], "line is not a JSON object");
  EXPECT_EQ(rows[2]["line"], 4);
  EXPECT_NE(rows[2]["reason"].get<std::string>().find("customer_id: cannot parse 'x'"),
            std::string::npos);
}

TEST_F(LakeTest, ParquetAndGzipCsvSourcesLoad) {
  std::string pq = dir_.path() + "/events.parquet";
  std::string gz = dir_.path() + "/events.csv.gz";
  Scalar(
      "COPY (SELECT i AS event_id, i % 7 AS customer_id, TIMESTAMP '2024-05-01' + "
      "INTERVAL (i) HOUR AS event_time, 'session' AS event_type, 'web' AS channel, "
      "NULL::DOUBLE AS amount, NULL::VARCHAR AS properties FROM range(100) t(i)) TO '" +
      pq + "' (FORMAT parquet)");
  Scalar(
      "COPY (SELECT i + 1000 AS event_id, i AS customer_id, TIMESTAMP '2024-05-01' AS "
      "event_time, 'purchase' AS event_type, 'store' AS channel, 2.5 AS amount FROM "
      "range(50) t(i)) TO '" +
      gz + "' (FORMAT csv, HEADER, COMPRESSION gzip)");
  auto r = IngestFiles("events", {pq, gz});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_read, 150);
  EXPECT_EQ(r->record.rows_accepted, 150);
  EXPECT_EQ(r->record.partitions.size(), 5u);  // 100 hours from 2024-05-01 spans 5 days
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + LakeGlob("events") + "' WHERE amount = 2.5"), "50");
}

TEST_F(LakeTest, ParquetRowNumbersIdentifyBadRows) {
  std::string pq = dir_.path() + "/bad.parquet";
  Scalar(
      "COPY (SELECT i AS event_id, CASE WHEN i = 3 THEN -1 ELSE i END AS customer_id, "
      "TIMESTAMP '2024-05-01' AS event_time, 'session' AS event_type FROM range(5) t(i)) TO '" +
      pq + "' (FORMAT parquet)");
  auto r = IngestFiles("events", {pq});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_rejected, 1);
  auto rows = ReadJsonl(r->quarantine_file);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["row"], 4);
  EXPECT_TRUE(rows[0]["line"].is_null());
}

TEST_F(LakeTest, PrimaryKeyDuplicatesAreRejectedWithinAndAcrossIngests) {
  std::string a = dir_.WriteFile("c1.csv",
                                 "customer_id,signup_time,country\n"
                                 "1,2024-01-01 00:00:00,UK\n"
                                 "2,2024-01-02 00:00:00,FR\n"
                                 "1,2024-01-03 00:00:00,DE\n");
  auto r1 = IngestFiles("customers", {a});
  ASSERT_OK(r1);
  EXPECT_EQ(r1->record.rows_accepted, 2);
  EXPECT_EQ(r1->record.rows_rejected, 1);
  auto q1 = ReadJsonl(r1->quarantine_file);
  ASSERT_EQ(q1.size(), 1u);
  EXPECT_EQ(q1[0]["line"], 4);
  EXPECT_NE(q1[0]["reason"].get<std::string>().find("duplicate primary key (1)"),
            std::string::npos);
  std::string b = dir_.WriteFile("c2.csv",
                                 "customer_id,signup_time,country\n"
                                 "2,2024-02-01 00:00:00,ES\n"
                                 "3,2024-02-01 00:00:00,ES\n");
  auto r2 = IngestFiles("customers", {b});
  ASSERT_OK(r2);
  EXPECT_EQ(r2->record.rows_accepted, 1);
  auto q2 = ReadJsonl(r2->quarantine_file);
  ASSERT_EQ(q2.size(), 1u);
  EXPECT_NE(q2[0]["reason"].get<std::string>().find("already exists"), std::string::npos);
}

TEST_F(LakeTest, WhitespaceSeparatedFilesMapPositionalColumns) {
  AppendConfig(R"(
[tables.cdnow]
time_column = "day"
retention_days = 0
[tables.cdnow.csv]
delimiter = "whitespace"
header = false
[[tables.cdnow.columns]]
name = "customer_id"
type = "int64"
source = "column0"
required = true
[[tables.cdnow.columns]]
name = "day"
type = "date"
source = "column2"
format = "%Y%m%d"
required = true
[[tables.cdnow.columns]]
name = "cds"
type = "int64"
source = "column3"
[[tables.cdnow.columns]]
name = "amount"
type = "double"
source = "column4"
min = 0
)");
  std::string f = dir_.WriteFile("cdnow.txt",
                                 "00001 0001 19970101 1  11.77\r\n"
                                 "00002 0002 19970112 1  12.00\r\n"
                                 "00003 0003 19970199 2  20.76\r\n"
                                 "00004 0004 19970102\r\n");
  auto r = IngestFiles("cdnow", {f});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_accepted, 2);
  EXPECT_EQ(r->record.rows_rejected, 2);
  auto rows = ReadJsonl(r->quarantine_file);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["line"], 3);
  EXPECT_NE(rows[0]["reason"].get<std::string>().find("day: cannot parse"), std::string::npos);
  EXPECT_EQ(rows[1]["line"], 4);
  EXPECT_NE(rows[1]["reason"].get<std::string>().find("expected 5 fields, found 3"),
            std::string::npos);
  EXPECT_EQ(Scalar("SELECT sum(amount) FROM '" + LakeGlob("cdnow") + "'"), "23.77");
}

TEST_F(LakeTest, HeaderedWhitespaceFileReportsTrueLineNumbers) {
  AppendConfig(R"toml(
[tables.ws]
retention_days = 0
[tables.ws.csv]
delimiter = "whitespace"
[[tables.ws.columns]]
name = "id"
type = "int64"
required = true
[[tables.ws.columns]]
name = "label"
)toml");
  std::string f = dir_.WriteFile("ws.txt", "id label\n1 a\n2 \xff\n3 c\nx d\n");
  auto r = IngestFiles("ws", {f});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_accepted, 2);
  auto rows = ReadJsonl(r->quarantine_file);
  ASSERT_EQ(rows.size(), 2u);
  std::map<int64_t, std::string> by_line;
  for (const auto& j : rows) by_line[j["line"].get<int64_t>()] = j["reason"].get<std::string>();
  EXPECT_NE(by_line[3].find("unparseable line"), std::string::npos) << by_line[3];
  EXPECT_NE(by_line[5].find("id: cannot parse 'x'"), std::string::npos) << by_line[5];
}

TEST_F(LakeTest, ManifestRecordsSourcesAndCounts) {
  std::string f = dir_.WriteFile("events.csv", kGoodCsv);
  auto r = IngestFiles("events", {f}, "manifest-1");
  ASSERT_OK(r);
  auto l = Open(false);
  auto rec = l->catalog().FindIngest("manifest-1");
  ASSERT_OK(rec);
  ASSERT_TRUE(rec->has_value());
  const auto& m = **rec;
  EXPECT_EQ(m.table, "events");
  EXPECT_EQ(m.rows_read, 3);
  EXPECT_EQ(m.files_written, 2);
  EXPECT_GT(m.bytes_written, 0);
  ASSERT_EQ(m.sources.size(), 1u);
  EXPECT_EQ(m.sources[0].path, f);
  EXPECT_EQ(m.sources[0].sha256.size(), 64u);
  auto files = l->catalog().Files("events");
  ASSERT_OK(files);
  EXPECT_EQ(files->size(), 2u);
}

TEST_F(LakeTest, RecoveryRemovesWhatAKilledWriterLeft) {
  std::string f = dir_.WriteFile("events.csv", kGoodCsv);
  ASSERT_OK(IngestFiles("events", {f}));
  // Simulate a writer killed after moving a file in but before publishing it, one killed while
  // staging, and one killed after writing its quarantine file.
  std::string orphan = home_.lake() + "/events/dt=2024-05-01/part-dead-0.parquet";
  std::string orphan_dir = home_.lake() + "/events/dt=2024-05-09";
  fs::create_directories(orphan_dir);
  fs::copy_file(fs::directory_iterator(home_.lake() + "/events/dt=2024-05-01")->path(), orphan);
  fs::copy_file(orphan, orphan_dir + "/part-dead-1.parquet");
  fs::create_directories(home_.staging() + "/dead/dt=2024-05-01");
  dir_.WriteFile("home/lake/_staging/dead/dt=2024-05-01/part-dead-0.parquet", "partial");
  dir_.WriteFile("home/lake/_quarantine/events/dead.jsonl", "{}\n");
  auto l = Open(true);
  EXPECT_EQ(l->recovery().orphan_files_removed, 2);
  EXPECT_EQ(l->recovery().staging_dirs_removed, 1);
  EXPECT_EQ(l->recovery().orphan_quarantine_removed, 1);
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_FALSE(fs::exists(orphan_dir));
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + LakeGlob("events") + "'"), "3");
}

TEST_F(LakeTest, UnsafeIngestIdIsRejected) {
  std::string f = dir_.WriteFile("events.csv", kGoodCsv);
  EXPECT_STATUS_CODE(IngestFiles("events", {f}, "../escape"), StatusCode::kInvalidArgument);
}

// F9: a .csv.gz cut in half must not ingest the half DuckDB manages to read.
TEST_F(LakeTest, TruncatedGzipFailsTheWholeIngestAndWritesNothing) {
  std::string gz = dir_.path() + "/events.csv.gz";
  Scalar(
      "COPY (SELECT i AS event_id, i % 97 AS customer_id, TIMESTAMP '2024-05-01' + INTERVAL (i) "
      "SECOND AS event_time, 'session' AS event_type, 'web' AS channel, NULL::DOUBLE AS amount, "
      "md5(i::VARCHAR) AS properties FROM range(20000) t(i)) TO '" +
      gz + "' (FORMAT csv, HEADER, COMPRESSION gzip)");
  std::string whole;
  {
    std::ifstream in(gz, std::ios::binary);
    whole.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(whole.size(), 1000u);
  std::string half = dir_.WriteFile("half.csv.gz", whole.substr(0, whole.size() / 2));
  // The same bytes with one flipped in the middle: a CRC mismatch (or a bad deflate block).
  std::string flipped_bytes = whole;
  flipped_bytes[whole.size() / 2] = static_cast<char>(flipped_bytes[whole.size() / 2] ^ 0x5a);
  std::string flipped = dir_.WriteFile("flipped.csv.gz", flipped_bytes);
  // Not gzip at all, though named so.
  std::string fake = dir_.WriteFile("fake.csv.gz", EventsHeader() + "1,10,2024-05-01,a,web,,\n");
  for (const std::string& f : {half, flipped, fake}) {
    SCOPED_TRACE(f);
    auto r = IngestFiles("events", {f});
    ASSERT_FALSE(r.ok()) << "ingested " << r->record.rows_accepted << " rows";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(f), std::string::npos) << r.status().message();
    EXPECT_EQ(CountFiles(home_.lake() + "/events"), 0);
    EXPECT_EQ(CountFiles(home_.quarantine()), 0);
    auto l = Open(false);
    EXPECT_TRUE(l->catalog().RecentIngests(10)->empty());
    EXPECT_TRUE(l->catalog().Files("events")->empty());
  }
  // A damaged file among good ones fails the whole call too.
  std::string good = dir_.WriteFile("good.csv", kGoodCsv);
  auto mixed = IngestFiles("events", {good, half});
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(CountFiles(home_.lake() + "/events"), 0);
  // The whole file still loads.
  auto r = IngestFiles("events", {gz});
  ASSERT_OK(r);
  EXPECT_EQ(r->record.rows_read, 20000);
  EXPECT_EQ(r->record.rows_accepted, 20000);
}

// F10: every physical record is a row in the lake or a quarantined line; a line longer than
// DuckDB's read buffer (32 MiB) used to vanish, counted nowhere.
void ExpectEveryRecordAccountedFor(const std::string& path, bool jsonl,
                                   const std::vector<int64_t>& sizes, const lake::IngestReport& r,
                                   int64_t records) {
  SCOPED_TRACE(path);
  EXPECT_EQ(r.record.rows_read, records);
  EXPECT_EQ(r.record.rows_read, r.record.rows_accepted + r.record.rows_rejected);
  // Good rows and the 1 KB value load; the rest (over properties' max_length of 64 KiB or over
  // max_line_bytes) are quarantined, each with its line.
  EXPECT_EQ(r.record.rows_accepted,
            static_cast<int64_t>(sizes.size()) + 1 +
                std::count_if(sizes.begin(), sizes.end(), [](int64_t s) { return s <= 65536; }));
  auto rows = ReadJsonl(r.quarantine_file);
  EXPECT_EQ(static_cast<int64_t>(rows.size()), r.record.rows_rejected);
  std::set<int64_t> lines;
  for (const auto& j : rows) {
    EXPECT_FALSE(j["reason"].get<std::string>().empty());
    lines.insert(j["line"].get<int64_t>());
  }
  EXPECT_EQ(static_cast<int64_t>(lines.size()), r.record.rows_rejected);
  // The rejected ones are the big rows: data record 2, 4, ... (line +1 for a CSV header).
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] <= 65536) continue;
    int64_t line = static_cast<int64_t>(2 * i + 2) + (jsonl ? 0 : 1);
    EXPECT_TRUE(lines.count(line)) << "line " << line << " (" << sizes[i] << " bytes) missing";
  }
}

TEST_F(LakeTest, EveryRecordIsAccountedForUpToLinesBeyondTheReaderBuffer) {
  const std::vector<int64_t> sizes = {1024, 1 << 20, 3 << 20, 40 << 20};
  int64_t total_accepted = 0;
  for (bool jsonl : {false, true}) {
    std::string path = dir_.path() + (jsonl ? "/sizes.jsonl" : "/sizes.csv");
    int64_t records = WriteEventsWithValuesOfSizes(path, jsonl, sizes, jsonl ? 1000 : 1);
    auto r = IngestFiles("events", {path});
    ASSERT_OK(r);
    ExpectEveryRecordAccountedFor(path, jsonl, sizes, *r, records);
    total_accepted += r->record.rows_accepted;
    fs::remove(path);
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + LakeGlob("events") + "'"),
            std::to_string(total_accepted));
}

}  // namespace
}  // namespace engage::testing
