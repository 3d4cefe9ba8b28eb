#include "engage/lake/maintenance.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

namespace fs = std::filesystem;

// One event per day from `first` for `days` days, as CSV.
std::string DailyEvents(int64_t first_id, const std::string& first_day, int days) {
  std::string csv = EventsHeader();
  int64_t d0 = 0;
  ParseDate(first_day, &d0);
  for (int i = 0; i < days; ++i) {
    csv += fmt::format("{},1,{} 12:00:00,session,web,,\n", first_id + i, FormatDate(d0 + i));
  }
  return csv;
}

TEST_F(LakeTest, RetentionDropsOnlyPartitionsPastTheTablesRetention) {
  // Today is 2024-06-01; events keep 400 days by default: set 30 for this test.
  AppendConfig("");
  {
    std::string cfg;
    std::ifstream in(home_.config());
    std::stringstream ss;
    ss << in.rdbuf();
    cfg = ss.str();
    cfg.replace(cfg.find("retention_days = 400"), 20, "retention_days = 30");
    std::ofstream out(home_.config());
    out << cfg;
  }
  std::string f = dir_.WriteFile("e.csv", DailyEvents(1, "2024-04-20", 20));  // to 2024-05-09
  ASSERT_OK(IngestFiles("events", {f}));
  auto l = Open(true);
  auto dry = lake::ApplyRetention(*l, "", /*dry_run=*/true);
  ASSERT_OK(dry);
  // Cutoff is 2024-05-02: 2024-04-20 .. 2024-05-01 (12 partitions) go.
  EXPECT_EQ(dry->dropped.size(), 12u);
  EXPECT_TRUE(dry->emptied.empty());  // 8 partitions stay
  EXPECT_EQ(dry->ToText().find("warning"), std::string::npos);
  EXPECT_EQ(l->catalog().Files("events")->size(), 20u);
  auto r = lake::ApplyRetention(*l, "", /*dry_run=*/false);
  ASSERT_OK(r);
  EXPECT_EQ(r->dropped.size(), 12u);
  auto files = l->catalog().Files("events");
  ASSERT_EQ(files->size(), 8u);
  EXPECT_EQ(files->front().dt, "2024-05-02");
  auto log = l->catalog().Log("retention", 10);
  ASSERT_OK(log);
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0]["details"]["cutoff"], "2024-05-02");
  // A second run finds nothing more to drop; customers (retention 0) are never touched.
  EXPECT_TRUE(lake::ApplyRetention(*l, "", false)->dropped.empty());
}

TEST_F(LakeTest, DroppedFilesStayReadableUntilTheGracePeriodEnds) {
  std::string f = dir_.WriteFile("e.csv", DailyEvents(1, "2023-01-01", 3));
  ASSERT_OK(IngestFiles("events", {f}));
  std::string any;
  for (const auto& e : fs::recursive_directory_iterator(home_.lake() + "/events")) {
    if (e.is_regular_file()) any = e.path();
  }
  {
    auto l = Open(true);
    auto r = lake::ApplyRetention(*l, "events", false);
    ASSERT_EQ(r->dropped.size(), 3u);
    // Every partition went: the report says so.
    EXPECT_EQ(r->emptied, std::vector<std::string>{"events"});
    EXPECT_NE(r->ToText().find("warning: dropped every partition of 'events'"), std::string::npos)
        << r->ToText();
    EXPECT_EQ(r->ToJson()["emptied_tables"], Json::array({"events"}));
  }
  EXPECT_TRUE(fs::exists(any));  // in the trash, still on disk for queries in flight
  clock_.AdvanceMicros(601LL * 1000000);
  auto l = Open(true);
  EXPECT_EQ(l->recovery().trash_files_removed, 3);
  EXPECT_FALSE(fs::exists(any));
}

TEST_F(LakeTest, CompactionMergesSmallFilesAndKeepsEveryRow) {
  for (int i = 0; i < 4; ++i) {
    std::string f =
        dir_.WriteFile(fmt::format("e{}.csv", i), DailyEvents(100 * i, "2024-05-01", 2));
    ASSERT_OK(IngestFiles("events", {f}));
  }
  std::string glob = LakeGlob("events");
  std::string before = Scalar("SELECT sum(hash(event_id)) FROM '" + glob + "'");
  auto l = Open(true);
  EXPECT_EQ(l->catalog().Files("events")->size(), 8u);
  auto r = lake::Compact(*l, "events");
  ASSERT_OK(r);
  EXPECT_EQ(r->partitions_compacted, 2);
  EXPECT_EQ(r->files_before, 8);
  EXPECT_EQ(r->files_after, 2);
  EXPECT_EQ(r->rows, 8);
  auto files = l->catalog().Files("events");
  ASSERT_EQ(files->size(), 2u);
  std::vector<std::string> paths;
  for (const auto& f : *files) paths.push_back("'" + l->AbsPath(f.path) + "'");
  EXPECT_EQ(Scalar(fmt::format("SELECT sum(hash(event_id)) FROM read_parquet([{}])",
                               fmt::join(paths, ","))),
            before);
  // Nothing left to compact.
  EXPECT_EQ(lake::Compact(*l, "events")->partitions_compacted, 0);
  EXPECT_STATUS_CODE(lake::Compact(*l, "nope"), StatusCode::kNotFound);
}

TEST_F(LakeTest, CatalogGenerationChangesWithTheFileSetOnly) {
  auto reader = Open(false);  // another connection to meta.db, as another process would hold
  auto gen = [&] {
    auto g = reader->catalog().Generation();
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return g.ok() ? *g : -1;
  };
  const int64_t g0 = gen();
  // An ingest commit changes it.
  // Two days past the 400-day retention (today is 2024-06-01).
  ASSERT_OK(IngestFiles("events", {dir_.WriteFile("a.csv", DailyEvents(1, "2023-01-01", 2))}));
  const int64_t g1 = gen();
  EXPECT_GT(g1, g0);
  // Writes that leave the file set alone do not: a no-op re-ingest, the query history, the log.
  ASSERT_OK(IngestFiles("events", {dir_.path() + "/a.csv"}));
  ASSERT_OK(reader->catalog().RecordQuery({.at = "x", .sql = "SELECT 1", .status = "ok"}));
  ASSERT_OK(reader->catalog().LogEvent("note", "events", Json::object(), "x"));
  EXPECT_EQ(gen(), g1);
  ASSERT_OK(IngestFiles("events", {dir_.WriteFile("b.csv", DailyEvents(10, "2023-01-01", 2)),
                                   dir_.WriteFile("c.csv", DailyEvents(20, "2024-05-01", 2))}));
  const int64_t g2 = gen();
  EXPECT_GT(g2, g1);
  // Compaction and retention change it.
  {
    auto l = Open(true);
    ASSERT_OK(lake::Compact(*l, "events"));
  }
  const int64_t g3 = gen();
  EXPECT_GT(g3, g2);
  {
    auto l = Open(true);
    auto dropped = lake::ApplyRetention(*l, "events", false);
    ASSERT_OK(dropped);
    ASSERT_FALSE(dropped->dropped.empty());
  }
  const int64_t g4 = gen();
  EXPECT_GT(g4, g3);
  // So does any other change to the catalogued files, whoever makes it.
  ASSERT_OK(reader->catalog().db().Exec("DELETE FROM lake_files WHERE dt = '2024-05-02'"));
  EXPECT_GT(gen(), g4);
  // It is persisted: a new connection reads the same value.
  const int64_t last = gen();
  auto again = lake::Catalog::Open(home_.meta_db());
  ASSERT_OK(again);
  EXPECT_EQ(*again->Generation(), last);
  // A snapshot's files and generation agree.
  auto snap = again->Snapshot();
  ASSERT_OK(snap);
  EXPECT_EQ(snap->generation, last);
  EXPECT_EQ(snap->files.size(), again->Files("events")->size());
}

}  // namespace
}  // namespace engage::testing
