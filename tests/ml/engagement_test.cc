#include "engage/ml/engagement.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engage/gen/generator.h"
#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

// Generated customers (a known latent process) ingested into a fresh home.
class EngagementTest : public LakeTest {
 protected:
  void SetUp() override {
    LakeTest::SetUp();
    clock_.AdvanceMicros(220LL * 86400 * 1000000);  // 2025-01-07: the generated window is past
    gen::GenOptions g;
    g.customers = 3000;
    g.days = 240;
    g.seed = 11;
    g.threads = 1;
    g.out_dir = dir_.path() + "/data";
    auto report = gen::Generate(g);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_TRUE(IngestFiles("customers", {g.out_dir + "/customers.parquet"}).ok());
    std::vector<std::string> parts;
    for (const auto& e : std::filesystem::directory_iterator(g.out_dir + "/events")) {
      parts.push_back(e.path().string());
    }
    auto ev = IngestFiles("events", parts);
    ASSERT_TRUE(ev.ok()) << ev.status().ToString();
    lake_ = Open(false);
    auto qe = sql::QueryEngine::Open(*lake_, 2);
    ASSERT_TRUE(qe.ok());
    engine_ = std::move(*qe);
    auto reg = ml::ModelRegistry::Open(home_, clock_);
    ASSERT_TRUE(reg.ok());
    registry_ = std::move(*reg);
  }

  EngagementConfig Config() const {
    EngagementConfig c = lake_->config().engagement;
    c.training_cutoffs = 3;
    c.cutoff_step_days = 30;
    return c;
  }

  std::unique_ptr<lake::Lake> lake_;
  std::unique_ptr<sql::QueryEngine> engine_;
  std::unique_ptr<ml::ModelRegistry> registry_;
};

TEST_F(EngagementTest, TrainsOnATimeSplitBeatsTheBaselineAndRegisters) {
  ml::EngagementTrainer trainer(*engine_, *registry_, Config());
  ml::EngagementTrainOptions o;
  o.params.nthread = 2;
  o.params.num_boost_round = 200;
  auto r = trainer.Train(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->rows_train, 1000);
  EXPECT_GT(r->rows_valid, 500);
  EXPECT_GT(r->valid.roc_auc, 0.7);
  EXPECT_GE(r->valid.roc_auc, r->baseline_auc - 0.01);
  // The card records the time split, the features and the BG/NBD fit per cutoff.
  const Json& card = r->version.card;
  EXPECT_EQ(card["data"]["cutoffs"].size(), 3u);
  EXPECT_EQ(card["data"]["validation_cutoff"], card["data"]["cutoffs"][2]);
  EXPECT_NE(std::find(card["features"].begin(), card["features"].end(), "btyd_p_alive"),
            card["features"].end());
  EXPECT_TRUE(card["btyd"][card["data"]["cutoffs"][0].get<std::string>()].contains("bgnbd"));
  EXPECT_FALSE(card["ingest_ids"].empty());
  EXPECT_TRUE(std::filesystem::exists(r->version.model_path()));
  EXPECT_EQ(r->version.version, 1);
  // The registered model loads and scores the validation features the same way.
  auto model = ml::Model::Load(r->version.model_path(), 2);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->FeatureNames(), card["features"].get<std::vector<std::string>>());
}

TEST_F(EngagementTest, BtydFeaturesUseOnlyHistoryBeforeTheCutoff) {
  ml::EngagementTrainer trainer(*engine_, *registry_, Config());
  Json params = Json::object();
  auto f = trainer.BuildFeatures({"2024-10-01"}, true, &params);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  int alive = f->Find("btyd_p_alive");
  ASSERT_GE(alive, 0);
  int64_t present = 0;
  for (float v : f->columns[alive]) {
    if (!std::isnan(v)) {
      ++present;
      EXPECT_GE(v, 0);
      EXPECT_LE(v, 1);
    }
  }
  EXPECT_GT(present, 100);
  ASSERT_TRUE(params["2024-10-01"].contains("bgnbd"));
  EXPECT_GT(params["2024-10-01"]["bgnbd"]["r"].get<double>(), 0);
}

}  // namespace
}  // namespace engage::testing
