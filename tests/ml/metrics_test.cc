#include "engage/ml/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "testing/temp_dir.h"

namespace engage::ml {
namespace {

using V = std::vector<float>;

// The example used throughout: one positive (0.8) above both negatives, one (0.35) between them.
const V kLabels = {0, 0, 1, 1};
const V kScores = {0.1f, 0.4f, 0.35f, 0.8f};

TEST(RocAucTest, KnownValueWithOneMisorderedPair) {
  auto auc = RocAuc(kLabels, kScores);
  ASSERT_OK(auc);
  EXPECT_DOUBLE_EQ(*auc, 0.75);
}

TEST(RocAucTest, PerfectRankingIsOne) {
  auto auc = RocAuc(V{0, 0, 1, 1}, V{0.1f, 0.2f, 0.3f, 0.9f});
  ASSERT_OK(auc);
  EXPECT_DOUBLE_EQ(*auc, 1.0);
}

TEST(RocAucTest, InvertedRankingIsZero) {
  auto auc = RocAuc(V{1, 1, 0, 0}, V{0.1f, 0.2f, 0.3f, 0.9f});
  ASSERT_OK(auc);
  EXPECT_DOUBLE_EQ(*auc, 0.0);
}

TEST(RocAucTest, AllTiedScoresGiveOneHalf) {
  auto auc = RocAuc(V{0, 1, 0, 1, 1}, V{0.5f, 0.5f, 0.5f, 0.5f, 0.5f});
  ASSERT_OK(auc);
  EXPECT_DOUBLE_EQ(*auc, 0.5);
}

TEST(RocAucTest, PartialTiesCountAsHalf) {
  // Pairs (pos, neg): (0.6, 0.2) win, (0.6, 0.6) tie, (0.2, 0.2) tie, (0.2, 0.6) loss
  // -> (1 + 0.5 + 0.5 + 0) / 4.
  auto auc = RocAuc(V{1, 0, 1, 0}, V{0.6f, 0.2f, 0.2f, 0.6f});
  ASSERT_OK(auc);
  EXPECT_DOUBLE_EQ(*auc, 0.5);
  auc = RocAuc(V{1, 0, 1, 0, 0}, V{0.9f, 0.5f, 0.5f, 0.1f, 0.5f});
  // pos 0.9 beats 3 negs; pos 0.5 beats 0.1, ties two 0.5s -> (3 + 1 + 1) / 6.
  ASSERT_OK(auc);
  EXPECT_DOUBLE_EQ(*auc, 5.0 / 6.0);
}

TEST(RocAucTest, SingleClassIsAnErrorThatSaysSo) {
  auto auc = RocAuc(V{1, 1, 1}, V{0.1f, 0.5f, 0.9f});
  EXPECT_STATUS_CODE(auc, StatusCode::kInvalidArgument);
  EXPECT_NE(auc.status().message().find("one class"), std::string::npos) << auc.status().message();
}

TEST(RocAucTest, IgnoresScaleOfScores) {
  auto auc = RocAuc(kLabels, V{-10.f, 40.f, 35.f, 80.f});
  ASSERT_OK(auc);
  EXPECT_DOUBLE_EQ(*auc, 0.75);
}

TEST(AveragePrecisionTest, KnownValue) {
  // Thresholds 0.8: P=1, R=1/2; 0.4: R unchanged; 0.35: P=2/3, R=1 -> 1/2 + 1/2 * 2/3.
  auto ap = AveragePrecision(kLabels, kScores);
  ASSERT_OK(ap);
  EXPECT_NEAR(*ap, 0.5 + 1.0 / 3.0, 1e-12);
}

TEST(AveragePrecisionTest, PerfectRankingIsOne) {
  auto ap = AveragePrecision(V{0, 1, 0, 1}, V{0.1f, 0.9f, 0.2f, 0.8f});
  ASSERT_OK(ap);
  EXPECT_DOUBLE_EQ(*ap, 1.0);
}

TEST(AveragePrecisionTest, TiesFormOneThreshold) {
  // All tied: one threshold with P = 2/4, R = 1 -> AP = base rate (as sklearn).
  auto ap = AveragePrecision(V{1, 0, 1, 0}, V{0.5f, 0.5f, 0.5f, 0.5f});
  ASSERT_OK(ap);
  EXPECT_DOUBLE_EQ(*ap, 0.5);
}

TEST(AveragePrecisionTest, NoPositivesIsAnError) {
  EXPECT_STATUS_CODE(AveragePrecision(V{0, 0}, V{0.1f, 0.2f}), StatusCode::kInvalidArgument);
}

TEST(LogLossTest, KnownValue) {
  // -(ln 0.9 + ln(1 - 0.2) + ln 0.6) / 3
  auto ll = LogLoss(V{1, 0, 1}, V{0.9f, 0.2f, 0.6f});
  ASSERT_OK(ll);
  double expect = -(std::log(0.9) + std::log(0.8) + std::log(0.6)) / 3.0;
  EXPECT_NEAR(*ll, expect, 1e-6);
}

TEST(LogLossTest, ClipsCertainWrongPredictions) {
  // p = 0 for a positive would be infinite; clipped to 1e-15 -> -ln(1e-15) / 2.
  auto ll = LogLoss(V{1, 0}, V{0.0f, 0.0f});
  ASSERT_OK(ll);
  EXPECT_NEAR(*ll, -std::log(1e-15) / 2.0, 1e-9);
  EXPECT_TRUE(std::isfinite(*ll));
}

TEST(BrierScoreTest, KnownValue) {
  // ((0.9-1)^2 + (0.2-0)^2 + (0.6-1)^2 + (0.5-0)^2) / 4 = (0.01 + 0.04 + 0.16 + 0.25) / 4
  auto b = BrierScore(V{1, 0, 1, 0}, V{0.9f, 0.2f, 0.6f, 0.5f});
  ASSERT_OK(b);
  EXPECT_NEAR(*b, 0.115, 1e-7);
}

TEST(BrierScoreTest, ScoresOutsideUnitIntervalAreRejected) {
  EXPECT_STATUS_CODE(BrierScore(V{1, 0}, V{1.5f, 0.2f}), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(LogLoss(V{1, 0}, V{-0.1f, 0.2f}), StatusCode::kInvalidArgument);
}

TEST(BaseRateTest, ShareOfPositives) {
  auto r = BaseRate(V{1, 0, 0, 0});
  ASSERT_OK(r);
  EXPECT_DOUBLE_EQ(*r, 0.25);
}

TEST(MetricsInputTest, EmptyInputIsRejected) {
  EXPECT_STATUS_CODE(RocAuc(V{}, V{}), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(LogLoss(V{}, V{}), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(BaseRate(V{}), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(Evaluate(V{}, V{}), StatusCode::kInvalidArgument);
}

TEST(MetricsInputTest, MismatchedLengthsAreRejected) {
  auto r = RocAuc(V{0, 1, 1}, V{0.1f, 0.2f});
  EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("3 labels but 2 scores"), std::string::npos);
}

TEST(MetricsInputTest, LabelsOtherThanZeroOrOneAreRejected) {
  auto r = RocAuc(V{0, 2, 1}, V{0.1f, 0.2f, 0.3f});
  EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("row 1"), std::string::npos) << r.status().message();
  EXPECT_STATUS_CODE(BrierScore(V{0, 0.5f}, V{0.1f, 0.2f}), StatusCode::kInvalidArgument);
}

TEST(MetricsInputTest, NaNScoresAreRejected) {
  auto r = AveragePrecision(V{0, 1}, V{0.1f, std::nanf("")});
  EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("NaN"), std::string::npos);
  EXPECT_STATUS_CODE(Evaluate(V{0, 1}, V{std::nanf(""), 0.5f}), StatusCode::kInvalidArgument);
}

TEST(CalibrationTest, UniformBinsCountMeanAndRate) {
  V labels = {0, 0, 1, 1, 1, 0};
  V scores = {0.05f, 0.15f, 0.12f, 0.95f, 1.0f, 0.55f};
  auto bins = Calibration(labels, scores, 10, BinStrategy::kUniform);
  ASSERT_OK(bins);
  ASSERT_EQ(bins->size(), 10u);
  EXPECT_EQ((*bins)[0].count, 1);
  EXPECT_NEAR((*bins)[0].mean_predicted, 0.05, 1e-6);
  EXPECT_DOUBLE_EQ((*bins)[0].observed_rate, 0.0);
  EXPECT_EQ((*bins)[1].count, 2);  // 0.15 and 0.12
  EXPECT_NEAR((*bins)[1].mean_predicted, 0.135, 1e-6);
  EXPECT_DOUBLE_EQ((*bins)[1].observed_rate, 0.5);
  EXPECT_EQ((*bins)[5].count, 1);
  EXPECT_EQ((*bins)[9].count, 2);  // 1.0 falls in the last bin
  EXPECT_DOUBLE_EQ((*bins)[9].observed_rate, 1.0);
  EXPECT_EQ((*bins)[3].count, 0);
  EXPECT_TRUE(std::isnan((*bins)[3].mean_predicted));
  EXPECT_DOUBLE_EQ((*bins)[3].lower, 0.3);
  EXPECT_DOUBLE_EQ((*bins)[3].upper, 0.4);
}

TEST(CalibrationTest, QuantileBinsHaveEqualCounts) {
  V labels, scores;
  for (int i = 0; i < 100; ++i) {
    scores.push_back(static_cast<float>(i) / 100.0f);
    labels.push_back(i % 4 == 0 ? 1.0f : 0.0f);
  }
  auto bins = Calibration(labels, scores, 10, BinStrategy::kQuantile);
  ASSERT_OK(bins);
  for (const auto& b : *bins) EXPECT_EQ(b.count, 10);
  EXPECT_NEAR((*bins)[0].mean_predicted, 0.045, 1e-6);  // 0.00 .. 0.09
  EXPECT_NEAR((*bins)[0].lower, 0.0, 1e-7);
  EXPECT_NEAR((*bins)[0].upper, 0.09, 1e-7);
}

TEST(CalibrationTest, PerfectlyCalibratedBinsHaveZeroError) {
  V labels = {1, 0, 0, 0, 1, 1, 1, 0};
  V scores = {0.25f, 0.25f, 0.25f, 0.25f, 0.75f, 0.75f, 0.75f, 0.75f};
  auto bins = Calibration(labels, scores, 2);
  ASSERT_OK(bins);
  EXPECT_NEAR(ExpectedCalibrationError(*bins), 0.0, 1e-12);
}

TEST(LiftTableTest, DecilesOfAPerfectRanking) {
  // 100 rows, the 10 highest scores are the positives: all of them in decile 1.
  V labels, scores;
  for (int i = 0; i < 100; ++i) {
    scores.push_back(static_cast<float>(i) / 100.0f);
    labels.push_back(i >= 90 ? 1.0f : 0.0f);
  }
  auto lift = LiftTable(labels, scores);
  ASSERT_OK(lift);
  ASSERT_EQ(lift->size(), 10u);
  const LiftRow& top = (*lift)[0];
  EXPECT_EQ(top.group, 1);
  EXPECT_EQ(top.count, 10);
  EXPECT_EQ(top.positives, 10);
  EXPECT_DOUBLE_EQ(top.rate, 1.0);
  EXPECT_DOUBLE_EQ(top.lift, 10.0);  // base rate 0.1
  EXPECT_DOUBLE_EQ(top.cumulative_gain, 1.0);
  EXPECT_NEAR(top.max_score, 0.99, 1e-6);
  EXPECT_NEAR(top.min_score, 0.90, 1e-6);
  EXPECT_EQ((*lift)[1].positives, 0);
  EXPECT_DOUBLE_EQ((*lift)[4].cumulative_gain, 1.0);
  EXPECT_DOUBLE_EQ((*lift)[4].cumulative_lift, 2.0);  // (10 / 50) / 0.1
  EXPECT_DOUBLE_EQ((*lift)[9].cumulative_lift, 1.0);
}

TEST(LiftTableTest, GroupsDifferBySizeAtMostOne) {
  V labels(23, 0.0f), scores(23, 0.0f);
  labels[0] = 1;
  for (int i = 0; i < 23; ++i) scores[i] = static_cast<float>(i) / 23.0f;
  auto lift = LiftTable(labels, scores);
  ASSERT_OK(lift);
  int64_t total = 0;
  for (const auto& r : *lift) {
    EXPECT_GE(r.count, 2);
    EXPECT_LE(r.count, 3);
    total += r.count;
  }
  EXPECT_EQ(total, 23);
  EXPECT_DOUBLE_EQ(lift->back().cumulative_gain, 1.0);
}

TEST(LiftTableTest, FewerRowsThanGroupsOrNoPositivesIsAnError) {
  EXPECT_STATUS_CODE(LiftTable(kLabels, kScores), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(LiftTable(V(20, 0.0f), V(20, 0.5f)), StatusCode::kInvalidArgument);
}

TEST(EvaluateTest, ReportMatchesTheSingleMetrics) {
  V labels, scores;
  for (int i = 0; i < 200; ++i) {
    float s = static_cast<float>((i * 37) % 200) / 200.0f;
    scores.push_back(s);
    labels.push_back((i * 37) % 200 > 120 || i % 17 == 0 ? 1.0f : 0.0f);
  }
  auto r = Evaluate(labels, scores);
  ASSERT_OK(r);
  EXPECT_EQ(r->count, 200);
  EXPECT_DOUBLE_EQ(r->roc_auc, *RocAuc(labels, scores));
  EXPECT_DOUBLE_EQ(r->pr_auc, *AveragePrecision(labels, scores));
  EXPECT_DOUBLE_EQ(r->log_loss, *LogLoss(labels, scores));
  EXPECT_DOUBLE_EQ(r->brier, *BrierScore(labels, scores));
  EXPECT_DOUBLE_EQ(r->base_rate, *BaseRate(labels));
  EXPECT_EQ(r->calibration.size(), 10u);
  EXPECT_EQ(r->lift.size(), 10u);
  EXPECT_TRUE(r->notes.empty());
}

TEST(EvaluateTest, SingleClassLeavesAucNullWithANote) {
  auto r = Evaluate(V{0, 0, 0}, V{0.1f, 0.2f, 0.3f});
  ASSERT_OK(r);
  EXPECT_TRUE(std::isnan(r->roc_auc));
  EXPECT_TRUE(std::isnan(r->pr_auc));
  EXPECT_TRUE(r->lift.empty());
  ASSERT_FALSE(r->notes.empty());
  EXPECT_NE(r->notes[0].find("one class"), std::string::npos);
  Json j = r->ToJson();
  EXPECT_TRUE(j["roc_auc"].is_null());
  EXPECT_GT(j["log_loss"].get<double>(), 0.0);
}

TEST(EvaluateTest, ToJsonHasEveryField) {
  auto r = Evaluate(kLabels, kScores, {.calibration_bins = 2, .lift_groups = 2});
  ASSERT_OK(r);
  Json j = r->ToJson();
  for (const char* key : {"count", "positives", "base_rate", "roc_auc", "pr_auc", "log_loss",
                          "brier", "expected_calibration_error", "calibration", "lift", "notes"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(j["roc_auc"].get<double>(), 0.75);
  EXPECT_EQ(j["calibration"].size(), 2u);
  EXPECT_EQ(j["lift"].size(), 2u);
  EXPECT_EQ(j["lift"][0]["positives"].get<int64_t>(), 1);  // 0.8 and 0.4: one positive
}

}  // namespace
}  // namespace engage::ml
