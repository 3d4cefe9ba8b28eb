#include "engage/ml/xgb.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "engage/ml/metrics.h"
#include "testing/temp_dir.h"

namespace engage::ml {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr int kCols = 8;

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// `rows` rows of kCols standard normal features (about 5% of column 5 missing); the label is
// Bernoulli(sigmoid(2 x0 - 1.5 x1 + x2)), so features 3..7 are noise. `signal` = 0 makes the
// label independent of the features.
TrainData MakeData(int rows, uint32_t seed, double signal = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  TrainData d;
  d.x = DenseMatrix(rows, kCols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < kCols; ++c) d.x.at(r, c) = normal(rng);
    if (unif(rng) < 0.05) d.x.at(r, 5) = std::nanf("");
    double z = signal * (2.0 * d.x.at(r, 0) - 1.5 * d.x.at(r, 1) + d.x.at(r, 2));
    d.labels.push_back(unif(rng) < Sigmoid(z) ? 1.0f : 0.0f);
  }
  return d;
}

// Rows [begin, end) of `d`.
TrainData Slice(const TrainData& d, int64_t begin, int64_t end) {
  TrainData out;
  out.x = DenseMatrix(end - begin, d.x.cols);
  std::copy(d.x.values.begin() + begin * d.x.cols, d.x.values.begin() + end * d.x.cols,
            out.x.values.begin());
  out.labels.assign(d.labels.begin() + begin, d.labels.begin() + end);
  out.feature_names = d.feature_names;
  return out;
}

TrainParams FastParams() {
  TrainParams p;
  p.nthread = 2;
  p.seed = 7;
  p.eta = 0.1;
  p.max_depth = 4;
  p.num_boost_round = 60;
  return p;
}

double Auc(const TrainData& d, const std::vector<float>& scores) {
  auto auc = RocAuc(d.labels, scores);
  EXPECT_TRUE(auc.ok()) << auc.status().ToString();
  return auc.ok() ? *auc : 0.0;
}

class XgbTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new TrainData(MakeData(5000, 42));
    train_ = new TrainData(Slice(*data_, 0, 4000));
    valid_ = new TrainData(Slice(*data_, 4000, 5000));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete train_;
    delete valid_;
  }
  static TrainData* data_;
  static TrainData* train_;
  static TrainData* valid_;
};
TrainData* XgbTest::data_ = nullptr;
TrainData* XgbTest::train_ = nullptr;
TrainData* XgbTest::valid_ = nullptr;

TEST_F(XgbTest, LearnsSyntheticSignalBetterThanRandom) {
  TrainParams p = FastParams();
  p.early_stopping_rounds = 20;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  auto pred = m->Predict(valid_->x);
  ASSERT_OK(pred);
  ASSERT_EQ(pred->size(), 1000u);
  for (float v : *pred) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
  double auc = Auc(*valid_, *pred);

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> unif(0.0f, 1.0f);
  std::vector<float> random(valid_->labels.size());
  for (float& v : random) v = unif(rng);
  double random_auc = Auc(*valid_, random);

  RecordProperty("valid_auc", std::to_string(auc));
  RecordProperty("random_auc", std::to_string(random_auc));
  RecordProperty("rounds_run", m->summary().rounds_run);
  RecordProperty("best_iteration", m->BestIteration());
  EXPECT_GT(auc, 0.8);
  EXPECT_GT(auc, random_auc + 0.2);
  EXPECT_EQ(m->NumFeatures(), kCols);
  EXPECT_EQ(m->summary().metric, "auc");
  EXPECT_TRUE(m->summary().higher_is_better);
}

TEST_F(XgbTest, PredictionsUseOnlyTreesUpToBestIteration) {
  // Noisy labels and a high learning rate: validation AUC peaks early, then drifts.
  TrainData noisy = MakeData(1500, 3, 0.3);
  TrainData tr = Slice(noisy, 0, 1000), va = Slice(noisy, 1000, 1500);
  TrainParams p = FastParams();
  p.eta = 0.8;
  p.max_depth = 6;
  p.num_boost_round = 200;
  p.early_stopping_rounds = 10;
  auto m = Train(tr, &va, p);
  ASSERT_OK(m);
  const TrainSummary& s = m->summary();
  ASSERT_LT(s.best_iteration + 1, s.rounds_run);
  EXPECT_NE(s.valid_curve.back(), s.best_score);

  int trees = 0;
  ASSERT_EQ(XGBoosterBoostedRounds(m->raw(), &trees), 0);
  EXPECT_EQ(trees, s.best_iteration + 1);
  // XGBoost's own AUC at the best round equals ours on the kept trees' predictions.
  auto pred = m->Predict(va.x);
  ASSERT_OK(pred);
  EXPECT_NEAR(Auc(va, *pred), s.best_score, 1e-5);
}

TEST_F(XgbTest, EarlyStoppingStopsWhenValidationStopsImproving) {
  TrainData noise = MakeData(1500, 11, 0.0);  // labels independent of the features
  TrainData tr = Slice(noise, 0, 1000), va = Slice(noise, 1000, 1500);
  TrainParams p = FastParams();
  p.eta = 0.9;
  p.max_depth = 8;
  p.num_boost_round = 200;
  p.early_stopping_rounds = 5;
  auto m = Train(tr, &va, p);
  ASSERT_OK(m);
  const TrainSummary& s = m->summary();
  RecordProperty("rounds_run", s.rounds_run);
  RecordProperty("best_iteration", s.best_iteration);
  EXPECT_LT(s.rounds_run, 200);
  EXPECT_TRUE(s.stopped_early);
  EXPECT_LT(s.best_iteration, s.rounds_run);
  EXPECT_EQ(s.rounds_run, s.best_iteration + 1 + p.early_stopping_rounds);
  EXPECT_EQ(static_cast<int>(s.valid_curve.size()), s.rounds_run);
}

TEST_F(XgbTest, BestScoreIsTheBestOfTheCurveInTheMetricsDirection) {
  TrainData noisy = MakeData(1500, 5, 0.3);
  TrainData tr = Slice(noisy, 0, 1000), va = Slice(noisy, 1000, 1500);
  TrainParams p = FastParams();
  p.eta = 0.8;
  p.num_boost_round = 40;
  for (const char* metric : {"auc", "logloss"}) {
    p.eval_metric = metric;
    auto m = Train(tr, &va, p);
    ASSERT_OK(m);
    const TrainSummary& s = m->summary();
    EXPECT_EQ(s.metric, metric);
    ASSERT_EQ(static_cast<int>(s.valid_curve.size()), s.rounds_run);
    const auto& c = s.valid_curve;
    if (s.higher_is_better) {
      EXPECT_EQ(s.best_score, *std::max_element(c.begin(), c.end())) << metric;
    } else {
      EXPECT_EQ(s.best_score, *std::min_element(c.begin(), c.end())) << metric;
    }
    EXPECT_EQ(c[static_cast<size_t>(s.best_iteration)], s.best_score);
  }
  p.eval_metric = "logloss";
  EXPECT_FALSE(Train(tr, &va, p)->summary().higher_is_better);
}

TEST_F(XgbTest, ProgressCallbackSeesEveryRound) {
  TrainParams p = FastParams();
  p.num_boost_round = 12;
  std::vector<std::pair<int, double>> seen;
  auto m =
      Train(*train_, valid_, p, [&](int round, double score) { seen.emplace_back(round, score); });
  ASSERT_OK(m);
  ASSERT_EQ(seen.size(), 12u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].first, static_cast<int>(i));
    EXPECT_EQ(seen[i].second, m->summary().valid_curve[i]);
  }
}

TEST_F(XgbTest, TrainsWithoutValidationSet) {
  TrainParams p = FastParams();
  p.num_boost_round = 10;
  int calls = 0;
  auto m = Train(*train_, nullptr, p, [&](int, double score) {
    EXPECT_TRUE(std::isnan(score));
    ++calls;
  });
  ASSERT_OK(m);
  EXPECT_EQ(calls, 10);
  EXPECT_EQ(m->BestIteration(), 9);
  EXPECT_TRUE(m->summary().valid_curve.empty());
  EXPECT_GT(Auc(*valid_, *m->Predict(valid_->x)), 0.8);
}

TEST_F(XgbTest, SaveThenLoadGivesIdenticalPredictions) {
  TempDir dir;
  TrainParams p = FastParams();
  p.num_boost_round = 30;
  p.early_stopping_rounds = 5;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  std::string path = dir.path() + "/model.json";
  ASSERT_OK(m->Save(path));
  // Only the model is left behind: no temporary file.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1);

  auto loaded = Model::Load(path, 2);
  ASSERT_OK(loaded);
  auto a = m->Predict(valid_->x);
  auto b = loaded->Predict(valid_->x);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(loaded->BestIteration(), m->BestIteration());
  EXPECT_EQ(loaded->summary().valid_curve, m->summary().valid_curve);
  EXPECT_EQ(loaded->summary().rounds_run, m->summary().rounds_run);
  EXPECT_EQ(loaded->params().eta, p.eta);
  EXPECT_EQ(loaded->params().early_stopping_rounds, 5);
  EXPECT_EQ(loaded->NumFeatures(), kCols);
}

TEST_F(XgbTest, SavedFileIsXgboostJson) {
  TempDir dir;
  TrainParams p = FastParams();
  p.num_boost_round = 5;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  std::string path = dir.path() + "/m.json";
  ASSERT_OK(m->Save(path));
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = ParseJson(ss.str(), path);
  ASSERT_OK(j);
  EXPECT_TRUE((*j)["learner"].contains("gradient_booster"));
  EXPECT_EQ((*j)["learner"]["attributes"]["best_iteration"], "4");
}

TEST_F(XgbTest, FeatureNamesRoundTrip) {
  TempDir dir;
  TrainData tr = *train_;
  tr.feature_names = {"recency_days", "frequency_90d",   "monetary_90d", "tenure_days",
                      "sessions_7d",  "support_tickets", "email_opens",  "discount_rate"};
  TrainParams p = FastParams();
  p.num_boost_round = 5;
  auto m = Train(tr, valid_, p);
  ASSERT_OK(m);
  EXPECT_EQ(m->FeatureNames(), tr.feature_names);
  std::string path = dir.path() + "/named.json";
  ASSERT_OK(m->Save(path));
  auto loaded = Model::Load(path);
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->FeatureNames(), tr.feature_names);
  Json card = loaded->Params();
  EXPECT_EQ(card["feature_names"][1], "frequency_90d");
  EXPECT_EQ(card["num_features"], kCols);
}

TEST_F(XgbTest, UnnamedFeaturesGetDefaultNames) {
  TrainParams p = FastParams();
  p.num_boost_round = 3;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  ASSERT_EQ(m->FeatureNames().size(), static_cast<size_t>(kCols));
  EXPECT_EQ(m->FeatureNames()[0], "f0");
  EXPECT_EQ(m->FeatureNames()[7], "f7");
}

TEST_F(XgbTest, ContributionsSumToTheMargin) {
  TrainParams p = FastParams();
  p.num_boost_round = 30;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  DenseMatrix x = Slice(*valid_, 0, 200).x;
  auto contribs = m->Contributions(x);
  auto margin = m->PredictMargin(x);
  auto prob = m->Predict(x);
  ASSERT_OK(contribs);
  ASSERT_OK(margin);
  ASSERT_OK(prob);
  ASSERT_EQ(contribs->rows, 200);
  ASSERT_EQ(contribs->cols, kCols + 1);
  for (int64_t r = 0; r < x.rows; ++r) {
    double sum = 0;
    for (float v : contribs->Row(r)) sum += v;
    EXPECT_NEAR(sum, (*margin)[r], 1e-4) << "row " << r;
    EXPECT_NEAR(Sigmoid(sum), (*prob)[r], 1e-5) << "row " << r;
  }
}

TEST_F(XgbTest, TopReasonsPickTheInformativeFeature) {
  TrainParams p = FastParams();
  p.num_boost_round = 40;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  // One customer far out on feature 0 (the strongest effect, 2 x0), the others at 0.
  DenseMatrix x(2, kCols);
  std::fill(x.values.begin(), x.values.end(), 0.0f);
  x.at(0, 0) = 2.5f;
  x.at(1, 0) = -2.5f;
  auto contribs = m->Contributions(x);
  ASSERT_OK(contribs);
  auto up = TopReasons(contribs->Row(0), m->FeatureNames());
  auto down = TopReasons(contribs->Row(1), m->FeatureNames());
  ASSERT_OK(up);
  ASSERT_OK(down);
  ASSERT_FALSE(up->empty());
  ASSERT_FALSE(down->empty());
  EXPECT_EQ((*up)[0].feature, "f0");
  EXPECT_EQ((*up)[0].index, 0);
  EXPECT_GT((*up)[0].contribution, 0.0f);
  EXPECT_EQ((*down)[0].feature, "f0");
  EXPECT_LT((*down)[0].contribution, 0.0f);
  EXPECT_LE(up->size(), 3u);
}

TEST(TopReasonsTest, OrdersByAbsoluteValueAndSkipsBias) {
  std::vector<float> row = {0.1f, -0.5f, 0.3f, 0.0f, 2.0f};  // last is the bias
  auto r = TopReasons(row, {"a", "b", "c", "d"}, 2);
  ASSERT_OK(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].feature, "b");
  EXPECT_FLOAT_EQ((*r)[0].contribution, -0.5f);
  EXPECT_EQ((*r)[1].feature, "c");
  // Zero contributions are never reasons.
  auto all = TopReasons(row, {"a", "b", "c", "d"}, 10);
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 3u);
  EXPECT_STATUS_CODE(TopReasons(row, {"a", "b"}), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(TopReasons(row, {"a", "b", "c", "d"}, -1), StatusCode::kInvalidArgument);
}

TEST_F(XgbTest, ConcurrentPredictMatchesOneThread) {
  TrainParams p = FastParams();
  p.num_boost_round = 20;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  auto expected = m->Predict(valid_->x);
  ASSERT_OK(expected);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto got = m->Predict(valid_->x);
        if (!got.ok() || *got != *expected) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(XgbTest, SameSeedGivesTheSameModel) {
  TrainParams p = FastParams();
  p.num_boost_round = 15;
  p.subsample = 0.7;
  p.colsample_bytree = 0.7;
  auto a = Train(*train_, valid_, p);
  auto b = Train(*train_, valid_, p);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(*a->Predict(valid_->x), *b->Predict(valid_->x));
}

TEST_F(XgbTest, ParamsDescribeTheModel) {
  TrainParams p = FastParams();
  p.num_boost_round = 8;
  p.extra = {{"scale_pos_weight", "2"}};
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  Json card = m->Params();
  EXPECT_EQ(card["params"]["objective"], "binary:logistic");
  EXPECT_EQ(card["params"]["tree_method"], "hist");
  EXPECT_DOUBLE_EQ(card["params"]["eta"].get<double>(), 0.1);
  EXPECT_EQ(card["params"]["extra"][0][0], "scale_pos_weight");
  EXPECT_EQ(card["training"]["rounds_run"], 8);
  EXPECT_EQ(card["training"]["metric"], "auc");
  EXPECT_EQ(card["xgboost_version"], XgboostVersion());
  auto back = TrainParams::FromJson(card["params"]);
  ASSERT_OK(back);
  EXPECT_EQ(back->extra, p.extra);
  EXPECT_EQ(back->max_depth, p.max_depth);
}

// ---------------------------------------------------------------------------------------------
// Bad input: clear errors, never a crash.

TEST_F(XgbTest, RowsTimesColsMismatchIsRejected) {
  TrainData bad = Slice(*train_, 0, 10);
  bad.x.values.pop_back();
  auto m = Train(bad, nullptr, FastParams());
  EXPECT_STATUS_CODE(m, StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("79 values but rows * cols = 10 * 8"), std::string::npos)
      << m.status().message();
}

TEST_F(XgbTest, NaNLabelIsRejected) {
  TrainData bad = Slice(*train_, 0, 10);
  bad.labels[3] = std::nanf("");
  auto m = Train(bad, nullptr, FastParams());
  EXPECT_STATUS_CODE(m, StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("label of row 3"), std::string::npos) << m.status().message();
}

TEST_F(XgbTest, EmptyMatrixIsRejected) {
  TrainData empty;
  empty.x.cols = kCols;
  auto m = Train(empty, nullptr, FastParams());
  EXPECT_STATUS_CODE(m, StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("empty"), std::string::npos) << m.status().message();
}

TEST_F(XgbTest, UnknownObjectiveIsRejectedWithXgboostsMessage) {
  TrainParams p = FastParams();
  p.objective = "binary:nope";
  auto m = Train(Slice(*train_, 0, 100), nullptr, p);
  EXPECT_STATUS_CODE(m, StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("binary:nope"), std::string::npos) << m.status().message();
  EXPECT_EQ(m.status().message().find("Stack trace"), std::string::npos) << m.status().message();
}

TEST_F(XgbTest, LabelOutsideZeroOneIsRejectedForLogistic) {
  TrainData bad = Slice(*train_, 0, 100);
  bad.labels[0] = 2.0f;
  auto m = Train(bad, nullptr, FastParams());
  EXPECT_STATUS_CODE(m, StatusCode::kInvalidArgument);
}

TEST_F(XgbTest, UnknownEvalMetricIsRejected) {
  TrainParams p = FastParams();
  p.eval_metric = "nonsense";
  EXPECT_STATUS_CODE(Train(Slice(*train_, 0, 100), valid_, p), StatusCode::kInvalidArgument);
}

TEST_F(XgbTest, BadShapesAndSettingsAreRejected) {
  TrainParams p = FastParams();
  p.early_stopping_rounds = 5;
  auto no_valid = Train(*train_, nullptr, p);
  EXPECT_STATUS_CODE(no_valid, StatusCode::kInvalidArgument);
  EXPECT_NE(no_valid.status().message().find("validation set"), std::string::npos);

  TrainData narrow;
  narrow.x = DenseMatrix(10, 3);
  narrow.labels.assign(10, 0.0f);
  EXPECT_STATUS_CODE(Train(*train_, &narrow, FastParams()), StatusCode::kInvalidArgument);

  TrainData dup = Slice(*train_, 0, 100);
  dup.feature_names = {"a", "b", "c", "d", "e", "f", "g", "a"};
  EXPECT_STATUS_CODE(Train(dup, nullptr, FastParams()), StatusCode::kInvalidArgument);

  TrainParams zero = FastParams();
  zero.num_boost_round = 0;
  EXPECT_STATUS_CODE(Train(*train_, nullptr, zero), StatusCode::kInvalidArgument);
}

TEST_F(XgbTest, SingleClassValidationSetIsAnError) {
  TrainData one = Slice(*valid_, 0, 100);
  std::fill(one.labels.begin(), one.labels.end(), 0.0f);
  auto m = Train(Slice(*train_, 0, 500), &one, FastParams());
  EXPECT_STATUS_CODE(m, StatusCode::kInvalidArgument);
}

TEST_F(XgbTest, PredictRejectsWrongWidthAndAcceptsNoRows) {
  TrainParams p = FastParams();
  p.num_boost_round = 3;
  auto m = Train(*train_, valid_, p);
  ASSERT_OK(m);
  DenseMatrix wide(5, kCols + 1);
  auto r = m->Predict(wide);
  EXPECT_STATUS_CODE(r, StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("9 columns"), std::string::npos) << r.status().message();
  EXPECT_STATUS_CODE(m->Contributions(wide), StatusCode::kInvalidArgument);
  DenseMatrix short_values(5, kCols);
  short_values.values.resize(3);
  EXPECT_STATUS_CODE(m->Predict(short_values), StatusCode::kInvalidArgument);
  DenseMatrix none(0, kCols);
  auto empty = m->Predict(none);
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->empty());
  // Missing values are fine.
  DenseMatrix missing(2, kCols);
  auto miss = m->Predict(missing);
  ASSERT_OK(miss);
  EXPECT_EQ(miss->size(), 2u);
}

TEST(XgbLoadTest, MissingOrCorruptFileIsAnError) {
  TempDir dir;
  EXPECT_STATUS_CODE(Model::Load(dir.path() + "/absent.json"), StatusCode::kNotFound);
  std::string garbage = dir.WriteFile("garbage.json", "{\"learner\": 42");
  auto g = Model::Load(garbage);
  EXPECT_STATUS_CODE(g, StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("garbage.json"), std::string::npos) << g.status().message();
  std::string text = dir.WriteFile("text.json", "not a model");
  EXPECT_STATUS_CODE(Model::Load(text), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(Model::FromJsonText(""), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// External memory

// Serves `d` in batches of `batch_rows`, counting resets.
BatchSource BatchesOf(const TrainData& d, int64_t batch_rows, int64_t* pos, int* resets) {
  BatchSource src;
  src.cols = d.x.cols;
  src.reset = [pos, resets] {
    *pos = 0;
    ++*resets;
    return Status::Ok();
  };
  src.next = [&d, batch_rows, pos]() -> Result<std::optional<TrainData>> {
    if (*pos >= d.x.rows) return std::optional<TrainData>();
    int64_t end = std::min(d.x.rows, *pos + batch_rows);
    TrainData b = Slice(d, *pos, end);
    *pos = end;
    return std::optional<TrainData>(std::move(b));
  };
  return src;
}

TEST_F(XgbTest, ExternalMemoryTrainingMatchesInMemoryAuc) {
  TempDir dir;
  TrainParams p = FastParams();
  p.num_boost_round = 40;
  int64_t pos = 0;
  int resets = 0;
  std::string cache = dir.path() + "/cache";
  auto ext = TrainExternal(BatchesOf(*train_, 500, &pos, &resets), valid_, p, cache);
  ASSERT_OK(ext);
  auto mem = Train(*train_, valid_, p);
  ASSERT_OK(mem);
  double ext_auc = Auc(*valid_, *ext->Predict(valid_->x));
  double mem_auc = Auc(*valid_, *mem->Predict(valid_->x));
  RecordProperty("external_auc", std::to_string(ext_auc));
  RecordProperty("in_memory_auc", std::to_string(mem_auc));
  RecordProperty("resets", resets);
  EXPECT_GT(ext_auc, 0.8);
  EXPECT_NEAR(ext_auc, mem_auc, 0.02);
  EXPECT_GE(resets, 1);
  EXPECT_EQ(ext->NumFeatures(), kCols);
  // The page cache is gone once training is done.
  ASSERT_TRUE(fs::exists(cache));
  EXPECT_TRUE(fs::is_empty(cache));
}

TEST_F(XgbTest, ExternalMemoryBatchErrorsAreReturned) {
  TempDir dir;
  TrainParams p = FastParams();
  p.num_boost_round = 3;
  int64_t pos = 0;
  int resets = 0;
  BatchSource src = BatchesOf(*train_, 500, &pos, &resets);
  auto inner = src.next;
  int calls = 0;
  src.next = [&]() -> Result<std::optional<TrainData>> {
    if (++calls == 3) return UnavailableError("lake file part-3.parquet is gone");
    return inner();
  };
  auto m = TrainExternal(src, valid_, p, dir.path());
  EXPECT_STATUS_CODE(m, StatusCode::kUnavailable);
  EXPECT_NE(m.status().message().find("batch 2"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("part-3.parquet"), std::string::npos);

  pos = 0;
  BatchSource wrong = BatchesOf(*train_, 500, &pos, &resets);
  wrong.cols = kCols + 1;
  auto w = TrainExternal(wrong, valid_, p, dir.path());
  EXPECT_STATUS_CODE(w, StatusCode::kInvalidArgument);
  EXPECT_NE(w.status().message().find("columns"), std::string::npos) << w.status().message();
}

// ---------------------------------------------------------------------------------------------
// Real data: UCI Online Shoppers Purchasing Intention (12,330 sessions, 15.5% buy).

// Numeric columns as they are, Month and VisitorType one-hot, Weekend 0/1; Revenue is the label.
// Returns false if the file is missing or malformed.
bool ReadShoppers(const std::string& path, TrainData* out) {
  std::ifstream in(path);
  if (!in) return false;
  const std::vector<std::string> months = {"Feb", "Mar", "May", "June", "Jul",
                                           "Aug", "Sep", "Oct", "Nov",  "Dec"};
  const std::vector<std::string> visitors = {"Returning_Visitor", "New_Visitor", "Other"};
  std::vector<float> values;
  std::string line;
  std::getline(in, line);  // header
  int64_t rows = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) f.push_back(cell);
    if (f.size() != 18) return false;
    for (int c = 0; c < 10; ++c) values.push_back(std::stof(f[c]));
    for (const auto& m : months) values.push_back(f[10] == m ? 1.0f : 0.0f);
    for (int c = 11; c < 15; ++c) values.push_back(std::stof(f[c]));
    for (const auto& v : visitors) values.push_back(f[15] == v ? 1.0f : 0.0f);
    values.push_back(f[16] == "TRUE" ? 1.0f : 0.0f);
    out->labels.push_back(f[17] == "TRUE" ? 1.0f : 0.0f);
    ++rows;
  }
  out->x.rows = rows;
  out->x.cols =
      10 + static_cast<int64_t>(months.size()) + 4 + static_cast<int64_t>(visitors.size()) + 1;
  out->x.values = std::move(values);
  return rows > 0;
}

TEST(XgbRealDataTest, OnlineShoppersHoldoutAucAbovePublishedFloor) {
  std::string data_dir = testing::SharedDataDir();
  std::string path = data_dir + "/online_shoppers_intention/online_shoppers_intention.csv";
  if (data_dir.empty() || !fs::exists(path)) GTEST_SKIP() << "no " << path;
  TrainData all;
  ASSERT_TRUE(ReadShoppers(path, &all));
  ASSERT_EQ(all.x.rows, 12330);

  std::vector<int64_t> order(static_cast<size_t>(all.x.rows));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(2024));
  int64_t n_test = all.x.rows / 5;
  auto take = [&](int64_t begin, int64_t end) {
    TrainData d;
    d.x = DenseMatrix(end - begin, all.x.cols);
    for (int64_t i = begin; i < end; ++i) {
      auto row = all.x.Row(order[static_cast<size_t>(i)]);
      std::copy(row.begin(), row.end(), d.x.values.begin() + (i - begin) * all.x.cols);
      d.labels.push_back(all.labels[static_cast<size_t>(order[static_cast<size_t>(i)])]);
    }
    return d;
  };
  TrainData test = take(0, n_test);
  TrainData train = take(n_test, all.x.rows);

  TrainParams p = FastParams();
  p.num_boost_round = 200;
  p.max_depth = 4;
  p.eta = 0.05;
  p.subsample = 0.8;
  p.colsample_bytree = 0.8;
  auto m = Train(train, nullptr, p);
  ASSERT_OK(m);
  auto pred = m->Predict(test.x);
  ASSERT_OK(pred);
  double auc = Auc(test, *pred);
  auto ap = AveragePrecision(test.labels, *pred);
  ASSERT_OK(ap);
  RecordProperty("holdout_auc", std::to_string(auc));
  RecordProperty("holdout_pr_auc", std::to_string(*ap));
  EXPECT_GT(auc, 0.85);
}

}  // namespace
}  // namespace engage::ml
