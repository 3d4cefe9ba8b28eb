#include "engage/ml/engagement.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engage/gen/generator.h"
#include "engage/ml/scoring.h"
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

TEST_F(EngagementTest, ScoresEveryCustomerIntoThePredictionsTable) {
  ml::EngagementTrainer trainer(*engine_, *registry_, Config());
  ml::EngagementTrainOptions o;
  o.params.nthread = 2;
  o.params.num_boost_round = 100;
  auto trained = trainer.Train(o);
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  // No champion yet: scoring the alias is a clear error.
  auto writer = Open(true);
  auto qe = sql::QueryEngine::Open(*writer, 2);
  ASSERT_TRUE(qe.ok());
  ml::ScoreOptions so;
  so.nthread = 2;
  EXPECT_EQ(ml::ScoreAll(*writer, **qe, *registry_, so).status().code(), StatusCode::kNotFound);
  ml::PromotionGate gate;
  gate.min_value = 0.5;
  ASSERT_TRUE(registry_->Promote("engagement", 1, gate)->promoted);
  auto r = ml::ScoreAll(*writer, **qe, *registry_, so);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, 1);
  EXPECT_GT(r->customers, 1000);
  int64_t in_segments = 0;
  for (const auto& [name, n] : r->segments) in_segments += n;
  EXPECT_EQ(in_segments, r->customers);
  // The predictions table holds one row per customer, with reasons and the model version.
  auto reader = Open(false);
  auto check = sql::QueryEngine::Open(*reader, 1);
  ASSERT_TRUE(check.ok());
  sql::QueryRequest q;
  q.sql =
      "SELECT count(*), count(DISTINCT customer_id), min(model_version), count(reasons), "
      "min(score) >= 0 AND max(score) <= 1, count(p_alive) FROM predictions";
  auto rows = (*check)->Run(q);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->rows[0][0], r->customers);
  EXPECT_EQ(rows->rows[0][1], r->customers);
  EXPECT_EQ(rows->rows[0][2], 1);
  EXPECT_EQ(rows->rows[0][3], r->customers);
  EXPECT_EQ(rows->rows[0][4], true);
  EXPECT_GT(rows->rows[0][5].get<int64_t>(), 0);
  q.sql = "SELECT reasons FROM predictions LIMIT 1";
  auto one = (*check)->Run(q);
  Json reasons = Json::parse(one->rows[0][0].get<std::string>());
  ASSERT_EQ(reasons.size(), 3u);
  EXPECT_TRUE(reasons[0].contains("feature"));

  // Against the generator's truth: the scores rank the customers who went on to buy nearly as
  // well as the best any model of the events can (p_engage_bayes; the oracle also knows who has
  // silently dropped out). ROC-AUC by the rank-sum formula, ties at their mean rank.
  auto auc = [&](const std::string& score) {
    return std::stod(Scalar(
        "WITH j AS (SELECT t.engaged_next_30d::INT AS y, " + score + " AS s FROM '" + dir_.path() +
        "/data/truth.parquet' t LEFT JOIN read_parquet('" + LakeGlob("predictions") +
        "') p ON CAST(p.customer_id AS BIGINT) = t.customer_id), "
        "r AS (SELECT y, rank() OVER (ORDER BY s) + (count(*) OVER (PARTITION BY s) - 1) / 2.0 "
        "AS rk FROM j) SELECT (sum(rk) FILTER (WHERE y = 1) - sum(y) * (sum(y) + 1) / 2) / "
        "(sum(y) * (count(*) - sum(y))) FROM r"));
  };
  double model_auc = auc("coalesce(p.score, 0)");
  double bayes_auc = auc("t.p_engage_bayes");
  double oracle_auc = auc("t.p_engage_30d");
  EXPECT_GT(model_auc, bayes_auc - 0.03) << "bayes " << bayes_auc << ", model " << model_auc;
  EXPECT_LT(bayes_auc, oracle_auc);
}

}  // namespace
}  // namespace engage::testing
