#include "engage/serve/store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

class StoreTest : public LakeTest {
 protected:
  // A home whose customer ids are text ("c0003"): predictions keep the events' id type.
  void SetUp() override {
    LakeTest::SetUp();
    std::ifstream in(home_.config());
    std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string from = "name = \"customer_id\"\ntype = \"int64\"\nrequired = true\nmin = 0\n";
    const std::string to = "name = \"customer_id\"\ntype = \"string\"\nrequired = true\n";
    for (size_t at = cfg.find(from); at != std::string::npos; at = cfg.find(from, at)) {
      cfg.replace(at, from.size(), to);
    }
    std::ofstream(home_.config()) << cfg;
  }

  // One scoring run of `version`: `n` customers "c0000".."c<n-1>", scored at `at`.
  void Score(int64_t version, int n, const std::string& at, double base = 0.0) {
    std::string pq = dir_.path() + "/pred-" + std::to_string(version) + "-" + at.substr(0, 10) +
                     "-" + std::to_string(n) + ".parquet";
    Scalar(fmt::format(
        "COPY (SELECT printf('c%04d', i) AS customer_id, TIMESTAMP '{}' AS scored_at, DATE "
        "'2024-05-01' AS cutoff, {} + i / 10000.0 AS score, CASE WHEN i % 2 = 0 THEN 'high' ELSE "
        "'low' END AS segment, CASE WHEN i % 3 = 0 THEN NULL ELSE 0.5 END AS p_alive, 1.25 AS "
        "expected_transactions, 80.5 AS clv, '[{{\"feature\":\"recency_days\",\"contribution\":"
        "-0.25}},{{\"feature\":\"orders_90d\",\"contribution\":0.125}}]' AS reasons, 'engagement' "
        "AS model, {}::BIGINT AS model_version FROM range({}) t(i)) TO '{}' (FORMAT parquet)",
        at, base, version, n, pq));
    ASSERT_OK(IngestFiles("predictions", {pq}));
  }

  Result<serve::PublishReport> Publish(std::vector<int64_t> versions = {}) {
    auto lake = Open(false);
    serve::PublishOptions o;
    o.versions = std::move(versions);
    clock_.AdvanceMicros(1000000);
    return serve::Publish(*lake, o, clock_);
  }

  std::string Lookup(const serve::Snapshot& s, const std::string& id, int64_t version = 0) {
    std::string out;
    auto found = s.AppendJson(id, version, &out);
    EXPECT_OK(found);
    return found.ok() && *found ? out : "";
  }
};

TEST_F(StoreTest, NothingPublishedIsAClearNotFound) {
  auto store = serve::PredictionStore::Open(home_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_NE(store.status().message().find("engage publish"), std::string::npos);
  auto r = Publish();
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, PublishesTheLatestRunAndRendersEachRecordAsJson) {
  Score(1, 50, "2024-05-01 10:00:00", 0.5);  // an older run of the same version
  Score(1, 100, "2024-05-02 10:00:00");
  auto r = Publish();
  ASSERT_OK(r);
  EXPECT_EQ(r->snapshot.default_version, 1);
  ASSERT_EQ(r->snapshot.versions.size(), 1u);
  EXPECT_EQ(r->snapshot.versions[0].customers, 100);
  EXPECT_EQ(r->snapshot.versions[0].scored_at, "2024-05-02T10:00:00.000000Z");
  EXPECT_GT(r->bytes_per_customer, 0);
  auto store = serve::PredictionStore::Open(home_);
  ASSERT_OK(store);
  auto snap = (*store)->Current();
  Json j = Json::parse(Lookup(*snap, "c0003"));
  EXPECT_EQ(j["customer_id"], "c0003");
  EXPECT_EQ(j["model"], "engagement");
  EXPECT_EQ(j["model_version"], 1);
  EXPECT_NEAR(j["score"].get<double>(), 0.0003, 1e-7);
  EXPECT_EQ(j["segment"], "low");
  EXPECT_TRUE(j["p_alive"].is_null());
  EXPECT_EQ(j["expected_transactions"], 1.25);
  EXPECT_EQ(j["clv"], 80.5);
  ASSERT_EQ(j["reasons"].size(), 2u);
  EXPECT_EQ(j["reasons"][0]["feature"], "recency_days");
  EXPECT_EQ(j["reasons"][0]["contribution"], -0.25);
  EXPECT_EQ(j["cutoff"], "2024-05-01");
  EXPECT_EQ(j["scored_at"], "2024-05-02T10:00:00.000000Z");
  EXPECT_EQ(Json::parse(Lookup(*snap, "c0004"))["p_alive"], 0.5);
  EXPECT_EQ(Lookup(*snap, "nobody"), "");
  std::string out;
  EXPECT_EQ(snap->AppendJson("c0001", 7, &out).status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, SeveralVersionsAndTheFirstIsTheDefault) {
  Score(1, 20, "2024-05-02 10:00:00");
  Score(2, 10, "2024-05-03 10:00:00", 0.5);
  auto r = Publish({2, 1});
  ASSERT_OK(r);
  auto store = serve::PredictionStore::Open(home_);
  ASSERT_OK(store);
  auto snap = (*store)->Current();
  EXPECT_EQ(Json::parse(Lookup(*snap, "c0001"))["model_version"], 2);
  EXPECT_EQ(Json::parse(Lookup(*snap, "c0001", 1))["model_version"], 1);
  EXPECT_EQ(Lookup(*snap, "c0015", 2), "");  // version 2 scored only 10 customers
  EXPECT_NE(Lookup(*snap, "c0015", 1), "");
  EXPECT_EQ(Publish({3}).status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, RefreshSwitchesWhileHeldSnapshotsKeepAnswering) {
  Score(1, 30, "2024-05-02 10:00:00");
  ASSERT_OK(Publish());
  auto store = serve::PredictionStore::Open(home_);
  ASSERT_OK(store);
  auto old = (*store)->Current();
  auto same = (*store)->Refresh();
  ASSERT_OK(same);
  EXPECT_FALSE(*same);
  Score(2, 30, "2024-05-03 10:00:00");
  // Publish more snapshots than are kept: the one still held is deleted from disk but stays
  // readable through its mapping.
  for (int i = 0; i < 4; ++i) ASSERT_OK(Publish({2}));
  auto switched = (*store)->Refresh();
  ASSERT_OK(switched);
  EXPECT_TRUE(*switched);
  EXPECT_EQ(Json::parse(Lookup(*(*store)->Current(), "c0001"))["model_version"], 2);
  EXPECT_EQ(Json::parse(Lookup(*old, "c0001"))["model_version"], 1);
  int dirs = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(serve::ServingDir(home_) + "/snapshots")) {
    dirs += e.is_directory() ? 1 : 0;
  }
  EXPECT_EQ(dirs, 3);
}

TEST_F(StoreTest, ReadersDuringAPublishSeeTheOldOrTheNewSnapshotNeverAMix) {
  Score(1, 200, "2024-05-02 10:00:00");
  Score(2, 200, "2024-05-03 10:00:00");
  ASSERT_OK(Publish({1}));
  auto store = serve::PredictionStore::Open(home_);
  ASSERT_OK(store);
  std::atomic<bool> done{false};
  std::atomic<int64_t> lookups{0}, mixed{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!done) {
        auto snap = (*store)->Current();
        // Within one snapshot every customer comes from the same version.
        int64_t first = -1;
        for (int i = 0; i < 200; i += 37) {
          std::string out;
          auto found = snap->AppendJson(fmt::format("c{:04d}", i), 0, &out);
          if (!found.ok() || !*found) {
            ++mixed;
            continue;
          }
          int64_t v = Json::parse(out)["model_version"].get<int64_t>();
          if (first >= 0 && v != first) ++mixed;
          first = v;
        }
        ++lookups;
        auto s = (*store)->Refresh();
        if (!s.ok()) ++mixed;
      }
    });
  }
  for (int i = 0; i < 3; ++i) ASSERT_OK(Publish({i % 2 == 0 ? 2 : 1}));
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(lookups.load(), 0);
  EXPECT_EQ(mixed.load(), 0);
}

// A publish killed mid-way leaves its `<id>.tmp` staging directory; the next publish removes it
// (it holds the publish lock, so no other publish can be staging).
TEST_F(StoreTest, PublishRemovesStagingLeftByAKilledPublish) {
  Score(1, 20, "2024-05-02 10:00:00");
  std::string snapshots = serve::ServingDir(home_) + "/snapshots";
  std::filesystem::create_directories(snapshots + "/01STALE.tmp");
  { std::ofstream(snapshots + "/01STALE.tmp/data.mdb") << std::string(4096, 'x'); }
  std::filesystem::create_directories(snapshots + "/01OTHER.tmp");
  auto r = Publish();
  ASSERT_OK(r);
  EXPECT_EQ(r->removed_staging, 2);
  EXPECT_FALSE(std::filesystem::exists(snapshots + "/01STALE.tmp"));
  EXPECT_FALSE(std::filesystem::exists(snapshots + "/01OTHER.tmp"));
  for (const auto& e : std::filesystem::directory_iterator(snapshots)) {
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }
  auto store = serve::PredictionStore::Open(home_);
  ASSERT_OK(store);
}

// Concurrent publishes wait for each other instead of removing each other's staging.
TEST_F(StoreTest, ConcurrentPublishesAllSucceed) {
  Score(1, 200, "2024-05-02 10:00:00");
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      auto lake = Open(false);
      serve::PublishOptions o;
      if (!serve::Publish(*lake, o, clock_).ok()) ++failed;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  auto store = serve::PredictionStore::Open(home_);
  ASSERT_OK(store);
}

}  // namespace
}  // namespace engage::testing
