#include "engage/ml/forest.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/ml/xgb.h"
#include "testing/temp_dir.h"

namespace engage::ml {
namespace {

constexpr int kCols = 12;
constexpr float kInf = std::numeric_limits<float>::infinity();

// Bernoulli(sigmoid(2 x0 - 1.5 x1 + x2 x3)) labels on standard normal features, 10% of columns
// 4..7 missing.
TrainData MakeData(int rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  TrainData d;
  d.x = DenseMatrix(rows, kCols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < kCols; ++c) {
      d.x.at(r, c) = (c >= 4 && c < 8 && unif(rng) < 0.1) ? std::nanf("") : normal(rng);
    }
    double z = 2.0 * d.x.at(r, 0) - 1.5 * d.x.at(r, 1) + d.x.at(r, 2) * d.x.at(r, 3);
    d.labels.push_back(unif(rng) < 1.0 / (1.0 + std::exp(-z)) ? 1.0f : 0.0f);
  }
  return d;
}

// Rows to score: fresh normal values, a quarter of all values missing, values equal to the
// model's own split thresholds (to pin down x < threshold vs <=) and, if `infinities`, some
// infinite values (Model rejects them, Forest and XGBoost send them along the comparison).
DenseMatrix MakeScoringRows(const Model& m, int rows, uint32_t seed, bool infinities = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<std::pair<int64_t, float>> splits;
  auto text = m.ToJsonText();
  EXPECT_TRUE(text.ok());
  Json j = Json::parse(*text);
  for (const Json& t : j["learner"]["gradient_booster"]["model"]["trees"]) {
    for (size_t i = 0; i < t["left_children"].size(); ++i) {
      if (t["left_children"][i].get<int>() != -1) {
        splits.emplace_back(t["split_indices"][i].get<int64_t>(),
                            t["split_conditions"][i].get<float>());
      }
    }
  }
  DenseMatrix x(rows, kCols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < kCols; ++c) {
      double u = unif(rng);
      if (u < 0.25) {
        x.at(r, c) = std::nanf("");
      } else if (infinities && u < 0.27) {
        x.at(r, c) = u < 0.26 ? kInf : -kInf;
      } else {
        x.at(r, c) = normal(rng);
      }
    }
    if (!splits.empty() && r % 2 == 0) {
      for (int k = 0; k < 3; ++k) {
        auto [f, thr] = splits[static_cast<size_t>(rng() % splits.size())];
        x.at(r, f) = thr;
      }
    }
  }
  return x;
}

// XGBoost's own in-place prediction (type 0: the objective's output, 1: margin).
std::vector<float> XgbPredict(BoosterHandle h, const DenseMatrix& x, int type) {
  std::string ai =
      fmt::format(R"({{"data": [{}, true], "shape": [{}, {}], "typestr": "<f4", "version": 3}})",
                  reinterpret_cast<uintptr_t>(x.values.data()), x.rows, x.cols);
  std::string config =
      fmt::format(R"({{"type": {}, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
                  R"("strict_shape": false, "missing": NaN, "cache_id": 0}})",
                  type);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  int rc = XGBoosterPredictFromDense(h, ai.c_str(), config.c_str(), nullptr, &shape, &dim, &out);
  EXPECT_EQ(rc, 0) << XGBGetLastError();
  if (rc != 0) return {};
  return std::vector<float>(out, out + x.rows);
}

// Counts values whose bits differ (so -0 vs 0 or a last-bit rounding difference counts).
void ExpectSameBits(const std::vector<float>& got, const std::vector<float>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t differ = 0;
  double max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      if (differ == 0) {
        ADD_FAILURE() << what << ": row " << i << " got " << got[i] << " want " << want[i];
      }
      ++differ;
      max_diff = std::max(max_diff, std::abs(static_cast<double>(got[i]) - want[i]));
    }
  }
  EXPECT_EQ(differ, 0) << what << ": max abs diff " << max_diff;
}

// Compares the compiled forest (through Model and directly) with XGBoost on fresh rows.
void ExpectMatchesXgboost(const Model& m, const std::string& what, int rows = 3000) {
  ASSERT_OK(m.ForestStatusForTesting());
  DenseMatrix x = MakeScoringRows(m, rows, 99);
  auto prob = m.Predict(x);
  auto margin = m.PredictMargin(x);
  ASSERT_OK(prob);
  ASSERT_OK(margin);
  ExpectSameBits(*prob, XgbPredict(m.raw(), x, 0), what + " (prediction)");
  ExpectSameBits(*margin, XgbPredict(m.raw(), x, 1), what + " (margin)");
}

TrainParams Params(int depth, int rounds) {
  TrainParams p;
  p.nthread = 2;
  p.seed = 3;
  p.max_depth = depth;
  p.num_boost_round = rounds;
  p.eval_metric = "logloss";
  return p;
}

class ForestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = new TrainData(MakeData(4000, 1));
    valid_ = new TrainData(MakeData(1000, 2));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete valid_;
  }
  static TrainData* train_;
  static TrainData* valid_;
};
TrainData* ForestTest::train_ = nullptr;
TrainData* ForestTest::valid_ = nullptr;

TEST_F(ForestTest, MatchesXgboostBitForBitAtSeveralDepths) {
  for (int depth : {1, 2, 3, 6, 10}) {
    auto m = Train(*train_, valid_, Params(depth, 40));
    ASSERT_OK(m);
    auto text = m->ToJsonText();
    ASSERT_OK(text);
    auto f = Forest::FromModelJson(*text);
    ASSERT_OK(f);
    EXPECT_LE(f->MaxDepth(), depth);
    EXPECT_TRUE(f->complete());  // evaluated as complete trees
    ExpectMatchesXgboost(*m, fmt::format("max_depth {}", depth));
  }
}

TEST_F(ForestTest, MatchesXgboostOnUnbalancedLossguideTrees) {
  TrainParams p = Params(0, 30);
  p.extra = {{"grow_policy", "lossguide"}, {"max_leaves", "256"}};
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  auto text = m->ToJsonText();
  ASSERT_OK(text);
  auto f = Forest::FromModelJson(*text);
  ASSERT_OK(f);
  // Deep, uneven trees: too deep to pad, so walked node by node.
  EXPECT_GT(f->MaxDepth(), Forest::kMaxCompleteDepth);
  EXPECT_FALSE(f->complete());
  ExpectMatchesXgboost(*m, "lossguide");
}

TEST_F(ForestTest, MatchesXgboostForEachSupportedObjective) {
  struct Case {
    std::string objective, base_score;
  };
  for (const Case& c : {Case{"binary:logistic", "0.3"}, Case{"reg:logistic", "0.5"},
                        Case{"binary:logitraw", "0.7"}, Case{"reg:squarederror", "0.25"}}) {
    TrainParams p = Params(4, 25);
    p.objective = c.objective;
    p.eval_metric = "rmse";
    p.extra = {{"base_score", c.base_score}};
    auto m = Train(*train_, valid_, p);
    ASSERT_OK(m);
    ExpectMatchesXgboost(*m, c.objective);
  }
}

TEST_F(ForestTest, ExtremeMarginsMatchXgboostsSigmoid) {
  auto m = Train(*train_, valid_, Params(3, 5));
  ASSERT_OK(m);
  auto text = m->ToJsonText();
  ASSERT_OK(text);
  // Scale the leaves so margins reach well beyond +-88.7, where XGBoost clamps exp's argument.
  Json j = Json::parse(*text);
  for (Json& t : j["learner"]["gradient_booster"]["model"]["trees"]) {
    for (size_t i = 0; i < t["left_children"].size(); ++i) {
      if (t["left_children"][i].get<int>() == -1) {
        t["split_conditions"][i] = t["split_conditions"][i].get<float>() * 400.0f;
      }
    }
  }
  auto scaled = Model::FromJsonText(j.dump(), 2);
  ASSERT_OK(scaled);
  ExpectMatchesXgboost(*scaled, "scaled leaves");
  auto margin = scaled->PredictMargin(MakeScoringRows(*scaled, 3000, 99));
  ASSERT_OK(margin);
  EXPECT_GT(*std::max_element(margin->begin(), margin->end()), 88.7f);
  EXPECT_LT(*std::min_element(margin->begin(), margin->end()), -88.7f);
}

TEST_F(ForestTest, KeepsOnlyTheTreesUpToTheBestIteration) {
  TrainParams p = Params(6, 300);
  p.eta = 0.5;  // overfits quickly, so early stopping cuts the model well before round 300
  p.early_stopping_rounds = 5;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  ASSERT_TRUE(m->summary().stopped_early);
  ASSERT_LT(m->BestIteration() + 1, m->summary().rounds_run);
  auto text = m->ToJsonText();
  ASSERT_OK(text);
  auto f = Forest::FromModelJson(*text);
  ASSERT_OK(f);
  EXPECT_EQ(f->NumTrees(), m->BestIteration() + 1);
  ExpectMatchesXgboost(*m, "early stopped");
}

TEST_F(ForestTest, ThreadCountDoesNotChangeResults) {
  auto m = Train(*train_, valid_, Params(6, 30));
  ASSERT_OK(m);
  auto text = m->ToJsonText();
  ASSERT_OK(text);
  auto f = Forest::FromModelJson(*text);
  ASSERT_OK(f);
  // Not a multiple of the block size, and large enough for several threads.
  DenseMatrix x = MakeScoringRows(*m, 3 * 4096 + 77, 5, /*infinities=*/true);
  auto one = f->Predict(x.values, x.cols, 1);
  ASSERT_OK(one);
  for (int nthread : {0, 2, 3, 7}) {
    auto many = f->Predict(x.values, x.cols, nthread);
    ASSERT_OK(many);
    ExpectSameBits(*many, *one, fmt::format("{} threads", nthread));
  }
  ExpectSameBits(*one, XgbPredict(m->raw(), x, 0), "one thread vs XGBoost");
}

TEST_F(ForestTest, LoadedModelPredictsWithTheForest) {
  auto m = Train(*train_, valid_, Params(5, 20));
  ASSERT_OK(m);
  testing::TempDir dir;
  std::string path = dir.path() + "/m.json";
  ASSERT_OK(m->Save(path));
  auto loaded = Model::Load(path, 1);
  ASSERT_OK(loaded);
  ExpectMatchesXgboost(*loaded, "loaded");
}

TEST_F(ForestTest, ShapeErrorsAndEmptyInput) {
  auto m = Train(*train_, valid_, Params(3, 5));
  ASSERT_OK(m);
  auto text = m->ToJsonText();
  ASSERT_OK(text);
  auto f = Forest::FromModelJson(*text);
  ASSERT_OK(f);
  EXPECT_EQ(f->NumFeatures(), kCols);
  EXPECT_EQ(f->Objective(), "binary:logistic");
  std::vector<float> v(kCols * 2, 0.0f);
  EXPECT_STATUS_CODE(f->Predict(v, kCols - 1), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(f->Predict(std::span<const float>(v).first(kCols + 1), kCols),
                     StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(f->Predict(v, kCols, -1), StatusCode::kInvalidArgument);
  auto none = f->Predict({}, kCols);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
  auto two = f->Predict(v, kCols);
  ASSERT_OK(two);
  EXPECT_EQ(two->size(), 2u);
  EXPECT_STATUS_CODE(m->Predict(DenseMatrix(3, kCols - 1)), StatusCode::kInvalidArgument);
}

// The JSON of a small trained model, for the malformed-model cases below.
Json SmallModelJson() {
  auto m = Train(MakeData(500, 4), nullptr, Params(2, 3));
  EXPECT_TRUE(m.ok());
  auto text = m->ToJsonText();
  EXPECT_TRUE(text.ok());
  return Json::parse(*text);
}

TEST(ForestErrorTest, RejectsTextThatIsNotAModel) {
  EXPECT_STATUS_CODE(Forest::FromModelJson(""), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(Forest::FromModelJson("{\"learner\": 42"), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(Forest::FromModelJson("[1, 2]"), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(Forest::FromModelJson("{}"), StatusCode::kInvalidArgument);
}

TEST(ForestErrorTest, RejectsMalformedTrees) {
  const Json good = SmallModelJson();
  ASSERT_OK(Forest::FromModelJson(good.dump()));
  auto tree0 = [](Json& j) -> Json& {
    return j["learner"]["gradient_booster"]["model"]["trees"][0];
  };
  {
    Json j = good;
    tree0(j)["left_children"][0] = 1000;  // out of range
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kInvalidArgument);
  }
  {
    Json j = good;
    tree0(j)["left_children"][0] = 0;  // a cycle back to the root
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kInvalidArgument);
  }
  {
    Json j = good;
    tree0(j)["split_indices"][0] = kCols;  // feature out of range
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kInvalidArgument);
  }
  {
    Json j = good;
    tree0(j)["split_conditions"].erase(0);  // arrays of different lengths
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kInvalidArgument);
  }
  {
    Json j = good;
    tree0(j)["split_conditions"][0] = "x";
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kInvalidArgument);
  }
  {
    Json j = good;
    j["learner"]["learner_model_param"]["base_score"] = "half";
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kInvalidArgument);
  }
  {
    Json j = good;
    j["learner"]["gradient_booster"]["model"].erase("trees");
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kInvalidArgument);
  }
}

TEST(ForestErrorTest, UnsupportedModelsAreUnimplemented) {
  const Json good = SmallModelJson();
  {
    Json j = good;
    j["learner"]["objective"]["name"] = "count:poisson";
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kUnimplemented);
  }
  {
    Json j = good;
    j["learner"]["learner_model_param"]["num_class"] = "3";
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kUnimplemented);
  }
  {
    Json j = good;
    j["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"][0] = 1;
    auto f = Forest::FromModelJson(j.dump());
    EXPECT_STATUS_CODE(f, StatusCode::kUnimplemented);
    EXPECT_NE(f.status().message().find("categorical"), std::string::npos);
  }
  {
    Json j = good;
    j["learner"]["gradient_booster"]["name"] = "gblinear";
    EXPECT_STATUS_CODE(Forest::FromModelJson(j.dump()), StatusCode::kUnimplemented);
  }
}

// (gblinear is not covered: XGBoost 1.7 has no in-place prediction for it either.)
TEST_F(ForestTest, DartFallsBackToXgboost) {
  TrainParams p = Params(3, 10);
  p.extra = {{"booster", "dart"}, {"rate_drop", "0.1"}};
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  EXPECT_STATUS_CODE(m->ForestStatusForTesting(), StatusCode::kUnimplemented);
  DenseMatrix x = MakeScoringRows(*m, 500, 8);
  auto prob = m->Predict(x);
  ASSERT_OK(prob);
  ExpectSameBits(*prob, XgbPredict(m->raw(), x, 0), "dart");
}

}  // namespace
}  // namespace engage::ml
