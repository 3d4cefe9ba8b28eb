#include "engage/ml/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace engage::ml {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kClip = 1e-15;

// Labels are 0/1, scores are not NaN, lengths agree and are non-zero.
Status CheckInput(std::span<const float> labels, std::span<const float> scores,
                  std::string_view metric) {
  if (labels.empty()) return InvalidArgumentError(fmt::format("{}: no rows", metric));
  if (labels.size() != scores.size()) {
    return InvalidArgumentError(
        fmt::format("{}: {} labels but {} scores", metric, labels.size(), scores.size()));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0.0f && labels[i] != 1.0f) {
      return InvalidArgumentError(
          fmt::format("{}: label of row {} is {}; labels must be 0 or 1", metric, i, labels[i]));
    }
    if (std::isnan(scores[i])) {
      return InvalidArgumentError(fmt::format("{}: score of row {} is NaN", metric, i));
    }
  }
  return Status::Ok();
}

// CheckInput plus scores in [0, 1].
Status CheckProbabilities(std::span<const float> labels, std::span<const float> scores,
                          std::string_view metric) {
  ENGAGE_RETURN_IF_ERROR(CheckInput(labels, scores, metric));
  for (size_t i = 0; i < scores.size(); ++i) {
    if (scores[i] < 0.0f || scores[i] > 1.0f) {
      return InvalidArgumentError(fmt::format(
          "{}: score of row {} is {}; probabilities must be in [0, 1]", metric, i, scores[i]));
    }
  }
  return Status::Ok();
}

int64_t CountPositives(std::span<const float> labels) {
  return std::count(labels.begin(), labels.end(), 1.0f);
}

// Row indices sorted by score, highest first; ties keep their original order.
std::vector<size_t> OrderDescending(std::span<const float> scores) {
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return idx;
}

// Unchecked implementations, shared by the public functions and Evaluate.
double RocAucImpl(std::span<const float> labels, std::span<const float> scores, int64_t pos) {
  int64_t neg = static_cast<int64_t>(labels.size()) - pos;
  std::vector<size_t> idx = OrderDescending(scores);
  // Walk groups of tied scores from the top: each positive outranks the negatives below its
  // group and ties with the negatives in it (counted as half).
  double u = 0;
  int64_t neg_above = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    int64_t gp = 0, gn = 0;
    for (; j < idx.size() && scores[idx[j]] == scores[idx[i]]; ++j) {
      (labels[idx[j]] == 1.0f ? gp : gn)++;
    }
    int64_t neg_below = neg - neg_above - gn;
    u += static_cast<double>(gp) * (static_cast<double>(neg_below) + 0.5 * static_cast<double>(gn));
    neg_above += gn;
    i = j;
  }
  return u / (static_cast<double>(pos) * static_cast<double>(neg));
}

double AveragePrecisionImpl(std::span<const float> labels, std::span<const float> scores,
                            int64_t pos) {
  std::vector<size_t> idx = OrderDescending(scores);
  double ap = 0, prev_recall = 0;
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    for (; j < idx.size() && scores[idx[j]] == scores[idx[i]]; ++j) {
      (labels[idx[j]] == 1.0f ? tp : fp)++;
    }
    double recall = static_cast<double>(tp) / static_cast<double>(pos);
    double precision = static_cast<double>(tp) / static_cast<double>(tp + fp);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
    i = j;
  }
  return ap;
}

double LogLossImpl(std::span<const float> labels, std::span<const float> scores) {
  double sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    double p = std::clamp(static_cast<double>(scores[i]), kClip, 1.0 - kClip);
    sum -= labels[i] == 1.0f ? std::log(p) : std::log1p(-p);
  }
  return sum / static_cast<double>(labels.size());
}

double BrierImpl(std::span<const float> labels, std::span<const float> scores) {
  double sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    double d = static_cast<double>(scores[i]) - static_cast<double>(labels[i]);
    sum += d * d;
  }
  return sum / static_cast<double>(labels.size());
}

std::vector<CalibrationBin> CalibrationImpl(std::span<const float> labels,
                                            std::span<const float> scores, int bins,
                                            BinStrategy strategy) {
  std::vector<CalibrationBin> out(static_cast<size_t>(bins));
  std::vector<double> score_sum(out.size(), 0.0);
  auto add = [&](size_t b, size_t row) {
    out[b].count++;
    out[b].positives += labels[row] == 1.0f ? 1 : 0;
    score_sum[b] += scores[row];
  };
  if (strategy == BinStrategy::kUniform) {
    for (int b = 0; b < bins; ++b) {
      out[b].lower = static_cast<double>(b) / bins;
      out[b].upper = static_cast<double>(b + 1) / bins;
    }
    for (size_t i = 0; i < scores.size(); ++i) {
      auto b = static_cast<int>(static_cast<double>(scores[i]) * bins);
      add(static_cast<size_t>(std::clamp(b, 0, bins - 1)), i);
    }
  } else {
    std::vector<size_t> idx = OrderDescending(scores);
    std::reverse(idx.begin(), idx.end());  // ascending, so bin 0 holds the lowest scores
    size_t n = idx.size();
    for (size_t b = 0; b < out.size(); ++b) {
      size_t lo = n * b / out.size(), hi = n * (b + 1) / out.size();
      if (lo == hi) continue;
      out[b].lower = scores[idx[lo]];
      out[b].upper = scores[idx[hi - 1]];
      for (size_t k = lo; k < hi; ++k) add(b, idx[k]);
    }
  }
  for (size_t b = 0; b < out.size(); ++b) {
    if (out[b].count == 0) continue;
    out[b].mean_predicted = score_sum[b] / static_cast<double>(out[b].count);
    out[b].observed_rate =
        static_cast<double>(out[b].positives) / static_cast<double>(out[b].count);
  }
  return out;
}

std::vector<LiftRow> LiftImpl(std::span<const float> labels, std::span<const float> scores,
                              int groups, int64_t pos) {
  std::vector<size_t> idx = OrderDescending(scores);
  size_t n = idx.size();
  double base = static_cast<double>(pos) / static_cast<double>(n);
  std::vector<LiftRow> out;
  int64_t cum_pos = 0, cum_rows = 0;
  for (int g = 0; g < groups; ++g) {
    size_t lo = n * static_cast<size_t>(g) / static_cast<size_t>(groups);
    size_t hi = n * static_cast<size_t>(g + 1) / static_cast<size_t>(groups);
    LiftRow r;
    r.group = g + 1;
    r.count = static_cast<int64_t>(hi - lo);
    for (size_t k = lo; k < hi; ++k) r.positives += labels[idx[k]] == 1.0f ? 1 : 0;
    r.rate = static_cast<double>(r.positives) / static_cast<double>(r.count);
    r.lift = r.rate / base;
    cum_pos += r.positives;
    cum_rows += r.count;
    r.cumulative_gain = static_cast<double>(cum_pos) / static_cast<double>(pos);
    r.cumulative_lift = (static_cast<double>(cum_pos) / static_cast<double>(cum_rows)) / base;
    r.max_score = scores[idx[lo]];
    r.min_score = scores[idx[hi - 1]];
    out.push_back(r);
  }
  return out;
}

Json NumOrNull(double v) { return std::isnan(v) ? Json(nullptr) : Json(v); }

}  // namespace

Result<double> BaseRate(std::span<const float> labels) {
  if (labels.empty()) return InvalidArgumentError("base rate: no rows");
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0.0f && labels[i] != 1.0f) {
      return InvalidArgumentError(
          fmt::format("base rate: label of row {} is {}; labels must be 0 or 1", i, labels[i]));
    }
  }
  return static_cast<double>(CountPositives(labels)) / static_cast<double>(labels.size());
}

Result<double> RocAuc(std::span<const float> labels, std::span<const float> scores) {
  ENGAGE_RETURN_IF_ERROR(CheckInput(labels, scores, "ROC-AUC"));
  int64_t pos = CountPositives(labels);
  if (pos == 0 || pos == static_cast<int64_t>(labels.size())) {
    return InvalidArgumentError(
        fmt::format("ROC-AUC is undefined with only one class: all {} labels are {}", labels.size(),
                    pos == 0 ? 0 : 1));
  }
  return RocAucImpl(labels, scores, pos);
}

Result<double> AveragePrecision(std::span<const float> labels, std::span<const float> scores) {
  ENGAGE_RETURN_IF_ERROR(CheckInput(labels, scores, "average precision"));
  int64_t pos = CountPositives(labels);
  if (pos == 0) {
    return InvalidArgumentError(fmt::format(
        "average precision is undefined without positives: all {} labels are 0", labels.size()));
  }
  return AveragePrecisionImpl(labels, scores, pos);
}

Result<double> LogLoss(std::span<const float> labels, std::span<const float> scores) {
  ENGAGE_RETURN_IF_ERROR(CheckProbabilities(labels, scores, "log-loss"));
  return LogLossImpl(labels, scores);
}

Result<double> BrierScore(std::span<const float> labels, std::span<const float> scores) {
  ENGAGE_RETURN_IF_ERROR(CheckProbabilities(labels, scores, "Brier score"));
  return BrierImpl(labels, scores);
}

Result<std::vector<CalibrationBin>> Calibration(std::span<const float> labels,
                                                std::span<const float> scores, int bins,
                                                BinStrategy strategy) {
  ENGAGE_RETURN_IF_ERROR(CheckProbabilities(labels, scores, "calibration"));
  if (bins < 1) {
    return InvalidArgumentError(fmt::format("calibration: bins must be >= 1, got {}", bins));
  }
  return CalibrationImpl(labels, scores, bins, strategy);
}

double ExpectedCalibrationError(const std::vector<CalibrationBin>& bins) {
  double sum = 0;
  int64_t n = 0;
  for (const auto& b : bins) {
    if (b.count == 0) continue;
    sum += static_cast<double>(b.count) * std::fabs(b.mean_predicted - b.observed_rate);
    n += b.count;
  }
  return n == 0 ? 0.0 : sum / static_cast<double>(n);
}

Result<std::vector<LiftRow>> LiftTable(std::span<const float> labels, std::span<const float> scores,
                                       int groups) {
  ENGAGE_RETURN_IF_ERROR(CheckInput(labels, scores, "lift"));
  if (groups < 1) {
    return InvalidArgumentError(fmt::format("lift: groups must be >= 1, got {}", groups));
  }
  if (labels.size() < static_cast<size_t>(groups)) {
    return InvalidArgumentError(
        fmt::format("lift: {} rows cannot fill {} groups", labels.size(), groups));
  }
  int64_t pos = CountPositives(labels);
  if (pos == 0) {
    return InvalidArgumentError(
        fmt::format("lift is undefined without positives: all {} labels are 0", labels.size()));
  }
  return LiftImpl(labels, scores, groups, pos);
}

Result<EvalReport> Evaluate(std::span<const float> labels, std::span<const float> scores,
                            const EvalOptions& opts) {
  ENGAGE_RETURN_IF_ERROR(CheckProbabilities(labels, scores, "evaluation"));
  if (opts.calibration_bins < 1 || opts.lift_groups < 1) {
    return InvalidArgumentError(
        fmt::format("evaluation: calibration_bins ({}) and lift_groups ({}) must be >= 1",
                    opts.calibration_bins, opts.lift_groups));
  }
  EvalReport r;
  r.count = static_cast<int64_t>(labels.size());
  r.positives = CountPositives(labels);
  r.base_rate = static_cast<double>(r.positives) / static_cast<double>(r.count);
  bool one_class = r.positives == 0 || r.positives == r.count;
  if (one_class) {
    r.notes.push_back(fmt::format("roc_auc: undefined with only one class (all {} labels are {})",
                                  r.count, r.positives == 0 ? 0 : 1));
  } else {
    r.roc_auc = RocAucImpl(labels, scores, r.positives);
  }
  if (r.positives == 0) {
    r.notes.push_back("pr_auc: undefined without positives");
    r.notes.push_back("lift: undefined without positives");
  } else {
    r.pr_auc = AveragePrecisionImpl(labels, scores, r.positives);
    if (r.count < opts.lift_groups) {
      r.notes.push_back(
          fmt::format("lift: {} rows cannot fill {} groups", r.count, opts.lift_groups));
    } else {
      r.lift = LiftImpl(labels, scores, opts.lift_groups, r.positives);
    }
  }
  r.log_loss = LogLossImpl(labels, scores);
  r.brier = BrierImpl(labels, scores);
  r.calibration = CalibrationImpl(labels, scores, opts.calibration_bins, opts.calibration_strategy);
  r.expected_calibration_error = ExpectedCalibrationError(r.calibration);
  return r;
}

Json EvalReport::ToJson() const {
  Json cal = Json::array();
  for (const auto& b : calibration) {
    cal.push_back({{"lower", b.lower},
                   {"upper", b.upper},
                   {"count", b.count},
                   {"positives", b.positives},
                   {"mean_predicted", NumOrNull(b.mean_predicted)},
                   {"observed_rate", NumOrNull(b.observed_rate)}});
  }
  Json lt = Json::array();
  for (const auto& l : lift) {
    lt.push_back({{"group", l.group},
                  {"count", l.count},
                  {"positives", l.positives},
                  {"rate", l.rate},
                  {"lift", l.lift},
                  {"cumulative_gain", l.cumulative_gain},
                  {"cumulative_lift", l.cumulative_lift},
                  {"min_score", l.min_score},
                  {"max_score", l.max_score}});
  }
  return Json{{"count", count},
              {"positives", positives},
              {"base_rate", base_rate},
              {"roc_auc", NumOrNull(roc_auc)},
              {"pr_auc", NumOrNull(pr_auc)},
              {"log_loss", log_loss},
              {"brier", brier},
              {"expected_calibration_error", expected_calibration_error},
              {"calibration", std::move(cal)},
              {"lift", std::move(lt)},
              {"notes", notes}};
}

}  // namespace engage::ml
