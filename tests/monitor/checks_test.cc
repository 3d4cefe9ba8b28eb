// Declared data-quality checks: each kind finds exactly the failing rows, shows a few, runs on one
// ingest's rows, keeps going past a broken check, and every run is stored.
#include "engage/monitor/checks.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

class ChecksTest : public LakeTest {
 protected:
  // Without the default checks engage init declares on events: each test declares its own.
  void SetUp() override {
    LakeTest::SetUp();
    std::ifstream in(home_.config());
    std::stringstream ss;
    ss << in.rdbuf();
    std::string toml = ss.str();
    size_t from = toml.find("# Data-quality checks");
    size_t to = toml.find("# A snapshot table");
    ASSERT_NE(from, std::string::npos);
    ASSERT_NE(to, std::string::npos);
    std::ofstream(home_.config()) << toml.erase(from, to - from);
  }

  // Events on 2024-05-30 and 31 (the fixture's clock is 2024-06-01 00:00 UTC): `n` rows, ids from
  // `first`, amount = id, channel web except every 5th (NULL), properties "p<id>".
  std::string Events(const std::string& name, int first, int n, bool duplicate_last = false) {
    std::string csv = EventsHeader();
    for (int i = first; i < first + n; ++i) {
      csv += fmt::format("{},{},2024-05-{} 12:00:00,purchase,{},{},p{}\n", i, i % 7,
                         i % 2 ? 30 : 31, i % 5 == 0 ? "" : "web", i, i);
    }
    if (duplicate_last) {
      int i = first + n - 1;
      csv += fmt::format("{},{},2024-05-31 13:00:00,purchase,web,{},p{}\n", i, i % 7, i, i);
    }
    return dir_.WriteFile(name, csv);
  }

  Result<monitor::CheckRun> Run(monitor::CheckRequest request = {}) {
    auto l = Open(false);
    lake_ = std::move(l);
    auto engine = sql::QueryEngine::Open(*lake_, 1);
    if (!engine.ok()) return engine.status();
    engine_ = std::move(*engine);
    return monitor::RunChecks(*lake_, *engine_, request);
  }

  static const monitor::CheckResult& Find(const monitor::CheckRun& run, const std::string& name) {
    for (const auto& c : run.checks) {
      if (c.check == name) return c;
    }
    static monitor::CheckResult none;
    ADD_FAILURE() << "no check " << name;
    return none;
  }

  std::unique_ptr<lake::Lake> lake_;
  std::unique_ptr<sql::QueryEngine> engine_;
};

TEST_F(ChecksTest, EachKindCountsExactlyItsFailingRowsAndShowsSome) {
  AppendConfig(R"(
[[tables.events.checks]]
type = "not_null"
column = "channel"

[[tables.events.checks]]
type = "unique"
columns = ["event_id"]

[[tables.events.checks]]
type = "range"
column = "amount"
max = 15
severity = "warning"

[[tables.events.checks]]
type = "allowed"
column = "properties"
values = ["p1", "p2", "p3"]
name = "few_properties"

[[tables.events.checks]]
type = "regex"
column = "properties"
pattern = "p[0-9]+"

[[tables.events.checks]]
type = "freshness"
max_age_hours = 48

[[tables.events.checks]]
type = "sql"
name = "big_amounts"
sql = "SELECT event_id FROM events WHERE amount > 18"
)");
  ASSERT_OK(IngestFiles("events", {Events("a.csv", 1, 20, /*duplicate_last=*/true)}));
  auto run = Run();
  ASSERT_OK(run);
  EXPECT_EQ(run->checks.size(), 7u);
  EXPECT_FALSE(run->passed);
  const auto& nulls = Find(*run, "not_null_channel");
  EXPECT_FALSE(nulls.ok);
  EXPECT_EQ(nulls.failing_rows, 4);  // ids 5, 10, 15, 20
  ASSERT_FALSE(nulls.examples.empty());
  EXPECT_TRUE(nulls.examples[0]["channel"].is_null());
  const auto& unique = Find(*run, "unique_event_id");
  EXPECT_FALSE(unique.ok);
  EXPECT_EQ(unique.failing_rows, 2);  // id 20, twice
  EXPECT_EQ(unique.examples[0]["event_id"], 20);
  const auto& range = Find(*run, "range_amount");
  EXPECT_FALSE(range.ok);
  EXPECT_FALSE(range.error);         // a warning
  EXPECT_EQ(range.failing_rows, 6);  // 16..20 and the duplicate 20
  EXPECT_EQ(Find(*run, "few_properties").failing_rows, 18);
  EXPECT_TRUE(Find(*run, "regex_properties").ok);
  const auto& fresh = Find(*run, "freshness");
  EXPECT_TRUE(fresh.ok) << fresh.detail;  // 2024-05-31 13:00 is 11 h before the clock
  const auto& big = Find(*run, "big_amounts");
  EXPECT_EQ(big.failing_rows, 3);  // 19, 20, 20
  EXPECT_EQ(big.examples.size(), 3u);
  Json j = run->ToJson();
  EXPECT_EQ(j["passed"], false);
  for (const char* k : {"table", "check", "severity", "ok", "failing_rows", "examples"}) {
    EXPECT_TRUE(j["checks"][0].contains(k)) << k;
  }
  EXPECT_NE(run->ToText().find("FAILED"), std::string::npos);
}

TEST_F(ChecksTest, WarningsAloneDoNotFailTheRunAndStaleDataFailsFreshness) {
  AppendConfig(R"(
[[tables.events.checks]]
type = "range"
column = "amount"
max = 5
severity = "warning"

[[tables.events.checks]]
type = "freshness"
max_age_hours = 6
)");
  ASSERT_OK(IngestFiles("events", {Events("a.csv", 1, 10)}));
  auto run = Run();
  ASSERT_OK(run);
  EXPECT_FALSE(Find(*run, "range_amount").ok);
  const auto& fresh = Find(*run, "freshness");
  EXPECT_FALSE(fresh.ok);
  EXPECT_NE(fresh.detail.find("at most 6 h"), std::string::npos) << fresh.detail;
  EXPECT_FALSE(run->passed);  // freshness is an error
}

TEST_F(ChecksTest, AnIngestsRowsAloneAndTheRowCountChangeAgainstThePreviousIngest) {
  AppendConfig(R"(
[[tables.events.checks]]
type = "not_null"
column = "channel"

[[tables.events.checks]]
type = "row_count_change"
max_change_percent = 50
)");
  ASSERT_OK(IngestFiles("events", {Events("a.csv", 1, 4)}));  // no NULL channel (ids 1..4)
  clock_.AdvanceMicros(60LL * 1000000);
  auto second = IngestFiles("events", {Events("b.csv", 100, 10)});  // ids 100..109: 100, 105
  ASSERT_OK(second);
  auto whole = Run();
  ASSERT_OK(whole);
  EXPECT_EQ(Find(*whole, "not_null_channel").failing_rows, 2);
  const auto& change = Find(*whole, "row_count_change");
  EXPECT_FALSE(change.ok);  // 4 -> 10 rows: +150%
  EXPECT_NE(change.detail.find("+150.0%"), std::string::npos) << change.detail;
  monitor::CheckRequest first_only;
  auto reports = Open(false)->catalog().RecentIngests(10);
  ASSERT_OK(reports);
  first_only.ingest_id = reports->back().id;  // the oldest
  auto one = Run(first_only);
  ASSERT_OK(one);
  EXPECT_TRUE(Find(*one, "not_null_channel").ok);
  EXPECT_EQ(one->ingest_id, first_only.ingest_id);
  // Unknown ingest, ingest of another table.
  EXPECT_STATUS_CODE(Run({.table = "", .ingest_id = "nope"}), StatusCode::kNotFound);
  EXPECT_STATUS_CODE(Run({.table = "customers", .ingest_id = first_only.ingest_id}),
                     StatusCode::kInvalidArgument);
}

TEST_F(ChecksTest, ABrokenCheckFailsNamingItsErrorAndTheOthersStillRun) {
  AppendConfig(R"(
[[tables.events.checks]]
type = "regex"
column = "properties"
pattern = "(unclosed"

[[tables.events.checks]]
type = "sql"
name = "writes"
sql = "DELETE FROM events"

[[tables.events.checks]]
type = "not_null"
column = "channel"
)");
  ASSERT_OK(IngestFiles("events", {Events("a.csv", 1, 4)}));
  auto run = Run();
  ASSERT_OK(run);
  ASSERT_EQ(run->checks.size(), 3u);
  EXPECT_FALSE(run->checks[0].ok);
  EXPECT_NE(run->checks[0].detail.find("could not run"), std::string::npos);
  EXPECT_FALSE(run->checks[1].ok);
  EXPECT_NE(run->checks[1].detail.find("could not run"), std::string::npos);
  EXPECT_TRUE(run->checks[2].ok);
  EXPECT_FALSE(run->passed);
}

TEST_F(ChecksTest, RunsAreStoredAndListedNewestFirst) {
  AppendConfig(R"(
[[tables.events.checks]]
type = "not_null"
column = "channel"
)");
  ASSERT_OK(IngestFiles("events", {Events("a.csv", 1, 6)}));
  auto store = monitor::CheckStore::Open(home_.meta_db());
  ASSERT_OK(store);
  auto first = Run();
  ASSERT_OK(first);
  ASSERT_OK((*store)->Record(*first));
  clock_.AdvanceMicros(1000000);
  auto second = Run({.table = "events"});
  ASSERT_OK(second);
  ASSERT_OK((*store)->Record(*second));
  auto history = (*store)->History(10);
  ASSERT_OK(history);
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].id, second->id);
  EXPECT_EQ((*history)[0].table, "events");
  EXPECT_EQ((*history)[1].checks[0].failing_rows, 1);  // id 5
  EXPECT_NE(monitor::CheckHistoryTable(*history).find("FAILED"), std::string::npos);
}

}  // namespace
}  // namespace engage::testing
