// The app's serving store: nothing before a publish, the snapshot once published, the next one
// after a Refresh, and lookups from several threads while it switches.
#include "engage/app/serving.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "lake/lake_fixture.h"

namespace engage::app {
namespace {

class ServingTest : public engage::testing::LakeTest {
 protected:
  // One scoring run of engagement `version` over customers 1..3, then a publish of it.
  void ScoreAndPublish(int64_t version) {
    std::string pq = dir_.path() + fmt::format("/pred-{}.parquet", version);
    Scalar(fmt::format(
        "COPY (SELECT i::BIGINT AS customer_id, TIMESTAMP '2024-05-0{} 10:00:00' AS scored_at, "
        "DATE '2024-05-01' AS cutoff, i / 10.0 AS score, 'low' AS segment, NULL::DOUBLE AS "
        "p_alive, NULL::DOUBLE AS expected_transactions, NULL::DOUBLE AS clv, '[]' AS reasons, "
        "'engagement' AS model, {}::BIGINT AS model_version FROM range(1, 4) t(i)) TO '{}' "
        "(FORMAT parquet)",
        version, version, pq));
    ASSERT_TRUE(IngestFiles("predictions", {pq}).ok());
    auto lake = Open(false);
    serve::PublishOptions o;
    o.versions = {version};
    clock_.AdvanceMicros(1000000);
    ASSERT_TRUE(serve::Publish(*lake, o, clock_).ok());
  }
};

TEST_F(ServingTest, NothingPublishedIsNoSnapshotThenRefreshFindsTheFirstAndTheNext) {
  Serving serving(home_);
  ASSERT_TRUE(serving.Open().ok());  // nothing published: not an error
  EXPECT_EQ(serving.LookupSnapshot(), nullptr);
  EXPECT_EQ(serving.CurrentSnapshot(), nullptr);
  ScoreAndPublish(1);
  serving.Refresh();
  auto first = serving.CurrentSnapshot();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(serving.LookupSnapshot(), nullptr);
  EXPECT_EQ(first->info().default_version, 1);
  ScoreAndPublish(2);
  serving.Refresh();
  auto second = serving.CurrentSnapshot();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->info().default_version, 2);
  EXPECT_EQ(first->info().default_version, 1);  // still held, still readable
}

TEST_F(ServingTest, LookupsFromManyThreadsWhileRefreshing) {
  ScoreAndPublish(1);
  Serving serving(home_);
  ASSERT_TRUE(serving.Open().ok());
  std::atomic<bool> stop{false};
  std::atomic<int64_t> found{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (serving.LookupSnapshot() != nullptr) ++found;
      }
    });
  }
  ScoreAndPublish(2);
  for (int i = 0; i < 20; ++i) serving.Refresh();
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_GT(found.load(), 0);
  EXPECT_EQ(serving.CurrentSnapshot()->info().default_version, 2);
}

}  // namespace
}  // namespace engage::app
