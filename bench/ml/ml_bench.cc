// ML benchmark: Engage's XGBoost wrapper (engage/ml/xgb.h) against hand-written calls to the
// XGBoost C API, in one process.
//
//   ml_bench [--rows N] [--features F] [--rounds R] [--score-rows S] [--reps K]
//
// Data: a synthetic dense matrix of N rows x F standard normal features (fixed seed), the label
// drawn from a logistic function of a few features plus noise; a validation matrix of N / 5 rows
// from the same generator.
// Scenarios:
//  - training: ml::Train(train, &valid, params) against a raw loop (XGDMatrixCreateFromMat_omp and
//    labels for both matrices, XGBoosterCreate, XGBoosterSetParam, then per round
//    XGBoosterUpdateOneIter + XGBoosterEvalOneIter on the validation matrix). The same parameters
//    (binary:logistic, hist, eta 0.1, max_depth 6, nthread = all cores, R rounds, auc, no early
//    stopping); building the matrices is timed on both sides.
//  - scoring: Model::Predict (which runs the compiled Forest of engage/ml/forest.h; the forest is
//    built from the model's JSON by the first, untimed, call) against XGBoosterPredictFromDense
//    on a raw booster loaded from the model's JSON text, on the N training rows and on S rows
//    (the training matrix repeated).
// Checked, untimed: the validation AUC of every round agrees within 1e-6 (training is
// deterministic for a fixed seed and nthread), and so do the predictions of both models on the
// validation set (the raw booster limited to the rounds Engage keeps: Train cuts the model at the
// best validation round even without early stopping), and Engage's and the raw predictions on
// the scoring matrices. Exits 1 if not.
// Each timing is the median of K repetitions. Prints a table, then one JSON object as the last
// line.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "engage/ml/xgb.h"

namespace {

namespace ml = engage::ml;

using engage::bench::Median;
using engage::bench::Seconds;

[[noreturn]] void Die(const std::string& what) { engage::bench::Die("ml_bench", what); }

void Xgb(int rc, const char* what) {
  if (rc != 0) Die(fmt::format("{}: {}", what, XGBGetLastError()));
}

template <typename T>
T Value(engage::Result<T> r, const char* what) {
  if (!r.ok()) Die(fmt::format("{}: {}", what, r.status().ToString()));
  return std::move(*r);
}

// `rows` rows of standard normal features; p(label = 1) is a logistic function of features 0-4
// (with an interaction) plus Gaussian noise.
ml::TrainData MakeData(int64_t rows, int64_t features, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  ml::TrainData d;
  d.x = ml::DenseMatrix(rows, features);
  d.labels.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < features; ++c) d.x.at(r, c) = normal(rng);
    auto f = [&](int64_t c) { return c < features ? static_cast<double>(d.x.at(r, c)) : 0.0; };
    double logit = 1.5 * f(0) - 2.0 * f(1) + f(2) * f(3) + 0.5 * f(4) - 0.3 +
                   0.5 * static_cast<double>(normal(rng));
    d.labels[static_cast<size_t>(r)] = uniform(rng) < 1.0 / (1.0 + std::exp(-logit)) ? 1.0f : 0.0f;
  }
  return d;
}

// ---- the raw side ------------------------------------------------------------------------

struct RawDMatrix {
  DMatrixHandle h = nullptr;
  RawDMatrix(const ml::TrainData& d, int nthread) {
    Xgb(XGDMatrixCreateFromMat_omp(d.x.values.data(), static_cast<bst_ulong>(d.x.rows),
                                   static_cast<bst_ulong>(d.x.cols), std::nanf(""), &h, nthread),
        "XGDMatrixCreateFromMat_omp");
    Xgb(XGDMatrixSetFloatInfo(h, "label", d.labels.data(), d.labels.size()),
        "XGDMatrixSetFloatInfo");
  }
  ~RawDMatrix() { XGDMatrixFree(h); }
  RawDMatrix(const RawDMatrix&) = delete;
  RawDMatrix& operator=(const RawDMatrix&) = delete;
};

struct RawBooster {
  BoosterHandle h = nullptr;
  RawBooster() = default;
  ~RawBooster() {
    if (h != nullptr) XGBoosterFree(h);
  }
  RawBooster(RawBooster&& o) noexcept : h(std::exchange(o.h, nullptr)) {}
  RawBooster& operator=(RawBooster&& o) noexcept {
    std::swap(h, o.h);
    return *this;
  }
};

// The training loop written directly on the C API; `aucs` gets the validation AUC of each round.
RawBooster RawTrain(const ml::TrainData& train, const ml::TrainData& valid, int rounds, int nthread,
                    std::vector<double>* aucs) {
  RawDMatrix dtrain(train, nthread), dvalid(valid, nthread);
  DMatrixHandle cache[] = {dtrain.h, dvalid.h};
  RawBooster b;
  Xgb(XGBoosterCreate(cache, 2, &b.h), "XGBoosterCreate");
  std::string threads = std::to_string(nthread);
  const char* params[][2] = {{"objective", "binary:logistic"},
                             {"tree_method", "hist"},
                             {"eta", "0.1"},
                             {"max_depth", "6"},
                             {"nthread", threads.c_str()},
                             {"seed", "0"},
                             {"eval_metric", "auc"}};
  for (const auto& kv : params) Xgb(XGBoosterSetParam(b.h, kv[0], kv[1]), "XGBoosterSetParam");
  aucs->clear();
  for (int round = 0; round < rounds; ++round) {
    Xgb(XGBoosterUpdateOneIter(b.h, round, dtrain.h), "XGBoosterUpdateOneIter");
    DMatrixHandle dm[] = {dvalid.h};
    const char* names[] = {"valid"};
    const char* out = nullptr;
    Xgb(XGBoosterEvalOneIter(b.h, round, dm, names, 1, &out), "XGBoosterEvalOneIter");
    // "[<round>]\tvalid-auc:<value>"
    const char* colon = std::strrchr(out, ':');
    if (colon == nullptr) Die(fmt::format("unexpected evaluation text '{}'", out));
    aucs->push_back(std::strtod(colon + 1, nullptr));
  }
  return b;
}

std::string ArrayInterface(const ml::DenseMatrix& x) {
  return fmt::format(R"({{"data": [{}, true], "shape": [{}, {}], "typestr": "<f4", "version": 3}})",
                     reinterpret_cast<uintptr_t>(x.values.data()), x.rows, x.cols);
}

// In-place prediction of probabilities with the trees of rounds [0, iteration_end) (0: all); the
// result points into the booster's buffer.
const float* RawPredict(BoosterHandle h, const ml::DenseMatrix& x, int iteration_end = 0) {
  std::string ai = ArrayInterface(x);
  std::string config =
      fmt::format(R"({{"type": 0, "training": false, "iteration_begin": 0, "iteration_end": {}, )"
                  R"("strict_shape": false, "missing": NaN, "cache_id": 0}})",
                  iteration_end);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  Xgb(XGBoosterPredictFromDense(h, ai.c_str(), config.c_str(), nullptr, &shape, &dim, &out),
      "XGBoosterPredictFromDense");
  if (dim < 1 || static_cast<int64_t>(shape[0]) != x.rows) Die("raw prediction has a bad shape");
  return out;
}

// ---- checks ------------------------------------------------------------------------------

double MaxAbsDiff(const std::vector<float>& a, const float* b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return m;
}

// Area under the ROC curve (ties get half credit).
double Auc(const std::vector<float>& score, const std::vector<float>& label) {
  std::vector<size_t> idx(score.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double pos = 0, neg = 0, area = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    double p = 0, n = 0;
    while (j < idx.size() && score[idx[j]] == score[idx[i]]) {
      (label[idx[j]] > 0.5f ? p : n) += 1;
      ++j;
    }
    area += p * (neg + n / 2);
    pos += p;
    neg += n;
    i = j;
  }
  return area / (pos * neg);
}

ml::DenseMatrix Repeat(const ml::DenseMatrix& x, int64_t rows) {
  ml::DenseMatrix out;
  out.rows = rows;
  out.cols = x.cols;
  out.values.resize(static_cast<size_t>(rows * x.cols));
  for (int64_t r = 0; r < rows; ++r) {
    auto src = x.Row(r % x.rows);
    std::copy(src.begin(), src.end(), out.values.begin() + r * x.cols);
  }
  return out;
}

struct Scoring {
  int64_t rows = 0;
  double engage_s = 0, raw_s = 0, max_diff = 0;
  double Engage() const { return static_cast<double>(rows) / engage_s; }
  double Raw() const { return static_cast<double>(rows) / raw_s; }
};

Scoring Score(const ml::Model& model, BoosterHandle raw, const ml::DenseMatrix& x, int reps) {
  Scoring s;
  s.rows = x.rows;
  // The figure is meant to measure the compiled forest, not a fallback to XGBoost.
  if (engage::Status st = model.ForestStatusForTesting(); !st.ok()) {
    Die(fmt::format("the model does not compile to a forest: {}", st.ToString()));
  }
  // Untimed check (also warms both sides up).
  std::vector<float> e = Value(model.Predict(x), "Predict");
  s.max_diff = MaxAbsDiff(e, RawPredict(raw, x));
  if (s.max_diff > 1e-6) {
    Die(fmt::format("scoring {} rows: Engage and raw predictions differ by {}", x.rows,
                    s.max_diff));
  }
  std::vector<double> te, tr;
  float sink = 0;
  for (int rep = 0; rep < reps; ++rep) {
    te.push_back(Seconds([&] { sink += Value(model.Predict(x), "Predict")[0]; }));
    tr.push_back(Seconds([&] { sink += RawPredict(raw, x)[0]; }));
  }
  if (std::isnan(sink)) Die("NaN prediction");
  s.engage_s = Median(te);
  s.raw_s = Median(tr);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 200000, features = 40, score_rows = 1000000;
  int rounds = 100, reps = 3;
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (i + 1 >= argc) Die(fmt::format("{} needs a value", a));
    if (a == "--rows")
      rows = std::stoll(argv[i + 1]);
    else if (a == "--features")
      features = std::stoll(argv[i + 1]);
    else if (a == "--rounds")
      rounds = std::stoi(argv[i + 1]);
    else if (a == "--score-rows")
      score_rows = std::stoll(argv[i + 1]);
    else if (a == "--reps")
      reps = std::stoi(argv[i + 1]);
    else
      Die(fmt::format("unknown option {}", a));
  }
  if (rows < 10 || features < 1 || rounds < 1 || score_rows < 1 || reps < 1) Die("bad options");
  int nthread = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  std::mt19937_64 rng(20240601);
  ml::TrainData train = MakeData(rows, features, rng);
  ml::TrainData valid = MakeData(std::max<int64_t>(rows / 5, 10), features, rng);

  ml::TrainParams params;  // binary:logistic, hist, eta 0.1, max_depth 6, auc, seed 0
  params.nthread = nthread;
  params.num_boost_round = rounds;
  params.early_stopping_rounds = 0;

  // ---- training
  std::vector<double> te, tr;
  std::vector<double> raw_aucs;
  std::optional<ml::Model> model;
  RawBooster raw_trained;
  // Untimed warm-up of both sides (thread pool, first allocations): two rounds each.
  {
    ml::TrainParams warm = params;
    warm.num_boost_round = 2;
    Value(ml::Train(train, &valid, warm), "Train");
    RawTrain(train, valid, 2, nthread, &raw_aucs);
  }
  // Alternate which side goes first so warm-up and drift do not favour one.
  for (int rep = 0; rep < reps; ++rep) {
    auto engage = [&] {
      te.push_back(Seconds([&] { model = Value(ml::Train(train, &valid, params), "Train"); }));
    };
    auto raw = [&] {
      tr.push_back(
          Seconds([&] { raw_trained = RawTrain(train, valid, rounds, nthread, &raw_aucs); }));
    };
    if (rep % 2 == 0) {
      engage();
      raw();
    } else {
      raw();
      engage();
    }
  }
  const std::vector<double>& engage_aucs = model->summary().valid_curve;
  if (engage_aucs.size() != raw_aucs.size()) Die("Engage and raw ran different numbers of rounds");
  double auc_diff = 0;
  for (size_t i = 0; i < raw_aucs.size(); ++i) {
    auc_diff = std::max(auc_diff, std::abs(engage_aucs[i] - raw_aucs[i]));
  }
  // Engage keeps the trees up to the best validation round (even without early stopping), so the
  // raw booster predicts with the same rounds.
  int kept = model->BestIteration() + 1;
  std::vector<float> pe = Value(model->Predict(valid.x), "Predict");
  const float* raw_valid = RawPredict(raw_trained.h, valid.x, kept);
  std::vector<float> pr(raw_valid, raw_valid + valid.x.rows);
  double train_pred_diff = MaxAbsDiff(pe, pr.data());
  double auc_engage = Auc(pe, valid.labels);
  double auc_raw = Auc(pr, valid.labels);
  auc_diff = std::max(auc_diff, std::abs(auc_engage - auc_raw));
  if (auc_diff > 1e-6 || train_pred_diff > 1e-6) {
    Die(fmt::format("training: Engage and raw models differ (AUC by {}, predictions by {})",
                    auc_diff, train_pred_diff));
  }
  double train_engage_s = Median(te), train_raw_s = Median(tr);
  double train_ratio = train_engage_s / train_raw_s;

  // ---- scoring: a raw booster loaded from the saved model's JSON
  std::string text = Value(model->ToJsonText(), "ToJsonText");
  RawBooster loaded;
  Xgb(XGBoosterCreate(nullptr, 0, &loaded.h), "XGBoosterCreate");
  Xgb(XGBoosterLoadModelFromBuffer(loaded.h, text.data(), text.size()),
      "XGBoosterLoadModelFromBuffer");
  Xgb(XGBoosterSetParam(loaded.h, "nthread", std::to_string(nthread).c_str()), "XGBoosterSetParam");
  std::vector<Scoring> scoring = {Score(*model, loaded.h, train.x, reps)};
  if (score_rows != rows) {
    ml::DenseMatrix big = Repeat(train.x, score_rows);
    scoring.push_back(Score(*model, loaded.h, big, reps));
  }

  constexpr double kTrainGoal = 1.1, kScoreGoal = 1e6;
  std::printf(
      "ml: %ld x %ld features, %d rounds (model keeps %d: best validation round), %d threads, "
      "median of %d (XGBoost %s)\n",
      static_cast<long>(rows), static_cast<long>(features), rounds, kept, nthread, reps,
      ml::XgboostVersion().c_str());
  std::printf("%-22s %14s %14s %9s\n", "scenario", "engage", "raw", "ratio");
  std::printf("%-22s %13.3fs %13.3fs %9.3f   (engage/raw time; valid AUC %.6f, diff %.1e)\n",
              "training", train_engage_s, train_raw_s, train_ratio, engage_aucs.back(), auc_diff);
  for (const Scoring& s : scoring) {
    std::printf("%-22s %12.0f/s %12.0f/s %9.3f   (customers/s; ratio engage/raw time)\n",
                fmt::format("scoring {} rows", s.rows).c_str(), s.Engage(), s.Raw(),
                s.engage_s / s.raw_s);
  }
  double min_cps = 1e300;
  for (const Scoring& s : scoring) min_cps = std::min(min_cps, s.Engage());
  bool train_met = train_ratio <= kTrainGoal, score_met = min_cps >= kScoreGoal;
  std::printf("goal: training ratio <= %.1f: %.3f (%s); scoring >= %.0f customers/s: %.0f (%s)\n",
              kTrainGoal, train_ratio, train_met ? "met" : "not met", kScoreGoal, min_cps,
              score_met ? "met" : "not met");

  std::string json = fmt::format(
      "{{\"reps\": {}, \"rows\": {}, \"features\": {}, \"rounds\": {}, \"trees_kept\": {}, "
      "\"nthread\": {}, "
      "\"xgboost\": \"{}\", \"training\": {{\"engage_s\": {:.4f}, \"raw_s\": {:.4f}, "
      "\"ratio\": {:.4f}, \"valid_auc\": {:.6f}, \"auc_diff\": {:.3g}, "
      "\"engage_reps_s\": [{:.3f}], \"raw_reps_s\": [{:.3f}]}}, \"scoring\": [",
      reps, rows, features, rounds, kept, nthread, ml::XgboostVersion(), train_engage_s,
      train_raw_s, train_ratio, engage_aucs.back(), auc_diff, fmt::join(te, ", "),
      fmt::join(tr, ", "));
  for (size_t i = 0; i < scoring.size(); ++i) {
    const Scoring& s = scoring[i];
    json += fmt::format(
        "{}{{\"rows\": {}, \"engage_cps\": {:.0f}, \"raw_cps\": {:.0f}, \"ratio\": {:.4f}, "
        "\"max_diff\": {:.3g}}}",
        i == 0 ? "" : ", ", s.rows, s.Engage(), s.Raw(), s.engage_s / s.raw_s, s.max_diff);
  }
  json += fmt::format(
      "], \"goal_train_ratio\": {}, \"goal_score_cps\": {:.0f}, \"train_goal_met\": {}, "
      "\"score_goal_met\": {}}}",
      kTrainGoal, kScoreGoal, train_met ? "true" : "false", score_met ? "true" : "false");
  std::printf("%s\n", json.c_str());
  return 0;
}
