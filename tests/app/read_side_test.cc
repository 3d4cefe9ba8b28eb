// The process's one long-lived query engine: shared by every thread, its views built once per
// catalog change, reopened when engage.toml changes, and used by the pipeline steps.
#include "engage/app/read_side.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "engage/app/executions.h"
#include "engage/flow/definition.h"
#include "lake/lake_fixture.h"

namespace engage::app {
namespace {

class ReadSidesTest : public engage::testing::LakeTest {
 protected:
  void SetUp() override {
    LakeTest::SetUp();
    std::string csv = engage::testing::EventsHeader();
    for (int d = 1; d <= 3; ++d) {
      for (int i = 0; i < 2; ++i) {
        csv += fmt::format("{},1,2024-05-{:02d} 12:00:00,session,web,,\n", d * 10 + i, d);
      }
    }
    auto report = IngestFiles("events", {dir_.WriteFile("events.csv", csv)});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
  }

  static int64_t Count(ReadSide& side, const std::string& sql) {
    sql::QueryRequest req;
    req.sql = sql;
    auto r = side.query().Run(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && !r->rows.empty() ? r->rows[0][0].get<int64_t>() : -1;
  }

  std::string ReadConfig() const {
    std::ifstream in(home_.config());
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::shared_ptr<ReadSides> OpenReads() {
    auto reads = ReadSides::Open(home_, clock_, 1);
    EXPECT_TRUE(reads.ok()) << reads.status().ToString();
    return reads.ok() ? *reads : nullptr;
  }
};

TEST_F(ReadSidesTest, OneEngineAnswersEveryQueryAndBuildsItsViewsOnce) {
  auto reads = OpenReads();
  ASSERT_NE(reads, nullptr);
  auto first = reads->Current();
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 5; ++i) {
    auto side = reads->Current();
    ASSERT_TRUE(side.ok());
    EXPECT_EQ(side->get(), first->get());
    EXPECT_EQ(Count(**side, "SELECT count(*) FROM events"), 6);
  }
  EXPECT_EQ((*first)->query().ViewBuildsForTesting(), 1);
  EXPECT_EQ(reads->opens(), 1);
}

TEST_F(ReadSidesTest, AnIngestIsSeenWithoutReopening) {
  auto reads = OpenReads();
  ASSERT_NE(reads, nullptr);
  auto side = reads->Current();
  ASSERT_TRUE(side.ok());
  EXPECT_EQ(Count(**side, "SELECT count(*) FROM events"), 6);
  std::string csv = engage::testing::EventsHeader() + "100,2,2024-05-04 12:00:00,session,web,,\n";
  ASSERT_TRUE(IngestFiles("events", {dir_.WriteFile("more.csv", csv)}).ok());
  auto again = reads->Current();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), side->get());
  EXPECT_EQ(Count(**again, "SELECT count(*) FROM events"), 7);
  EXPECT_EQ((*again)->query().ViewBuildsForTesting(), 2);  // once per catalog change
}

TEST_F(ReadSidesTest, AnEditedConfigOpensANewReadSideAndTheOldOneKeepsWorking) {
  auto reads = OpenReads();
  ASSERT_NE(reads, nullptr);
  auto old_side = reads->Current();
  ASSERT_TRUE(old_side.ok());
  std::string toml = ReadConfig();
  size_t at = toml.find("max_result_rows = 100000");
  ASSERT_NE(at, std::string::npos);
  toml.replace(at, std::string("max_result_rows = 100000").size(), "max_result_rows = 7");
  dir_.WriteFile("home/engage.toml", toml);
  auto fresh = reads->Current();
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_NE(fresh->get(), old_side->get());
  EXPECT_EQ((*fresh)->config().query.max_result_rows, 7);
  EXPECT_EQ(reads->opens(), 2);
  // Whoever still holds the previous one can finish with it.
  EXPECT_EQ(Count(**old_side, "SELECT count(*) FROM events"), 6);
  // Unchanged since: the same one again.
  auto same = reads->Current();
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->get(), fresh->get());
}

TEST_F(ReadSidesTest, AConfigEditThatDoesNotLoadKeepsThePreviousReadSide) {
  auto reads = OpenReads();
  ASSERT_NE(reads, nullptr);
  auto before = reads->Current();
  ASSERT_TRUE(before.ok());
  AppendConfig("[[[ this is not TOML");
  auto after = reads->Current();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->get(), before->get());
  EXPECT_EQ(reads->opens(), 1);
}

TEST_F(ReadSidesTest, WithoutAHomeItDoesNotOpen) {
  HomePaths nowhere;
  nowhere.root = dir_.path() + "/no-home";
  auto reads = ReadSides::Open(nowhere, clock_, 1);
  ASSERT_FALSE(reads.ok());
  EXPECT_NE(reads.status().message().find("engage init"), std::string::npos)
      << reads.status().ToString();
}

TEST_F(ReadSidesTest, ThreadsShareOneEngine) {
  auto reads = OpenReads();
  ASSERT_NE(reads, nullptr);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&reads, &wrong, t] {
      for (int i = 0; i < 10; ++i) {
        auto side = reads->Current();
        if (!side.ok()) {
          ++wrong;
          continue;
        }
        sql::QueryRequest req;
        req.sql = fmt::format("SELECT count(*) FROM events WHERE dt = DATE '2024-05-0{}'",
                              1 + (t + i) % 3);
        auto r = (*side)->query().Run(req);
        if (!r.ok() || r->rows.empty() || r->rows[0][0].get<int64_t>() != 2) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(reads->opens(), 1);
  auto side = reads->Current();
  ASSERT_TRUE(side.ok());
  EXPECT_EQ((*side)->query().ViewBuildsForTesting(), 1);
}

TEST_F(ReadSidesTest, PipelineStepsQueryThroughTheSharedEngine) {
  auto reads = OpenReads();
  ASSERT_NE(reads, nullptr);
  auto side = reads->Current();
  ASSERT_TRUE(side.ok());
  const int64_t run_views = (*side)->query().RunViewBuildsForTesting();
  Json def = Json::parse(R"({"StartAt": "Q", "States": {"Q": {"Type": "Task",
      "Resource": "engage:query",
      "Parameters": {"sql": "SELECT count(*) AS n FROM events WHERE dt = DATE '2024-05-02'"},
      "End": true}}})");
  std::vector<flow::Diagnostic> problems;
  ExecutionRequest req;
  req.machine = flow::ParseDefinition(def, &problems);
  ASSERT_NE(req.machine, nullptr);
  req.state_machine = "count";
  req.definition = def.dump();
  ExecutionRunner runner(home_, reads);
  auto rec = runner.Start(std::move(req));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  auto out = runner.Wait(rec->id);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->result.status, flow::ExecutionStatus::kSucceeded)
      << out->result.error.value_or("") << " " << out->result.cause.value_or("");
  EXPECT_EQ(out->result.output["rows"][0][0], 2);
  // The step's pruned query defined a run view on the shared engine, not on one of its own.
  EXPECT_EQ((*side)->query().RunViewBuildsForTesting(), run_views + 1);
  EXPECT_EQ(reads->opens(), 1);
}

}  // namespace
}  // namespace engage::app
