#include "engage/ml/btyd.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <tuple>

#include "engage/core/clock.h"
#include "engage/core/config.h"
#include "engage/lake/duck.h"

namespace engage::ml {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Customers with the same (x, t_x, T) contribute the same likelihood term: summaries from daily
// data repeat a lot, so the likelihood is summed over distinct triples with their counts.
struct Weighted {
  double x, t_x, T, monetary, weight;
};

std::vector<Weighted> GroupBgNbd(const std::vector<CustomerSummary>& customers) {
  std::map<std::tuple<double, double, double>, double> counts;
  for (const CustomerSummary& c : customers) counts[{c.x, c.t_x, c.T}] += 1;
  std::vector<Weighted> out;
  out.reserve(counts.size());
  for (const auto& [k, n] : counts) {
    out.push_back(Weighted{std::get<0>(k), std::get<1>(k), std::get<2>(k), 0, n});
  }
  return out;
}

std::vector<Weighted> GroupGammaGamma(const std::vector<CustomerSummary>& customers) {
  std::map<std::pair<double, double>, double> counts;
  for (const CustomerSummary& c : customers) {
    if (c.x > 0 && c.monetary > 0) counts[{c.x, c.monetary}] += 1;
  }
  std::vector<Weighted> out;
  out.reserve(counts.size());
  for (const auto& [k, n] : counts) out.push_back(Weighted{k.first, 0, 0, k.second, n});
  return out;
}

double BgNbdTerm(const BgNbdParams& p, double x, double t_x, double T) {
  // ln of FHL (2005) eq. 6: the probability of x repeat transactions with the last at t_x,
  // observed over (0, T]. The second term is the customer dropping out after the last one.
  double common = std::lgamma(p.r + x) - std::lgamma(p.r) + p.r * std::log(p.alpha) +
                  std::lgamma(p.a + p.b) + std::lgamma(p.b + x) - std::lgamma(p.b) -
                  std::lgamma(p.a + p.b + x);
  double alive = -(p.r + x) * std::log(p.alpha + T);
  if (x <= 0) return common + alive;
  double dead = std::log(p.a) - std::log(p.b + x - 1) - (p.r + x) * std::log(p.alpha + t_x);
  double hi = std::max(alive, dead);
  return common + hi + std::log(std::exp(alive - hi) + std::exp(dead - hi));
}

double BgNbdLl(const BgNbdParams& p, const std::vector<Weighted>& data) {
  if (!(p.r > 0 && p.alpha > 0 && p.a > 0 && p.b > 0)) return -kInf;
  double ll = 0;
  for (const Weighted& w : data) ll += w.weight * BgNbdTerm(p, w.x, w.t_x, w.T);
  return ll;
}

double GammaGammaLl(const GammaGammaParams& g, const std::vector<Weighted>& data) {
  if (!(g.p > 0 && g.q > 0 && g.gamma > 0)) return -kInf;
  double ll = 0;
  for (const Weighted& w : data) {
    double px = g.p * w.x;
    ll += w.weight * (std::lgamma(px + g.q) - std::lgamma(px) - std::lgamma(g.q) +
                      g.q * std::log(g.gamma) + (px - 1) * std::log(w.monetary) +
                      px * std::log(w.x) - (px + g.q) * std::log(g.gamma + w.x * w.monetary));
  }
  return ll;
}

// Nelder-Mead simplex minimisation of `f` from `start`, restarted from the best point until a
// restart no longer improves it (a collapsed simplex can stall short of the minimum).
template <size_t N>
struct Minimum {
  std::array<double, N> x;
  double value;
  int64_t evaluations;
};

template <size_t N>
Minimum<N> NelderMead(const std::function<double(const std::array<double, N>&)>& f,
                      std::array<double, N> start) {
  using Point = std::array<double, N>;
  int64_t evaluations = 0;
  auto eval = [&](const Point& p) {
    ++evaluations;
    double v = f(p);
    return std::isfinite(v) ? v : kInf;
  };
  Point best = start;
  double best_value = eval(best);
  for (int restart = 0; restart < 20; ++restart) {
    std::array<Point, N + 1> pts;
    std::array<double, N + 1> vals;
    pts[0] = best;
    vals[0] = best_value;
    for (size_t i = 0; i < N; ++i) {
      pts[i + 1] = best;
      pts[i + 1][i] += restart == 0 ? 0.5 : 0.1;
      vals[i + 1] = eval(pts[i + 1]);
    }
    for (int iter = 0; iter < 20000; ++iter) {
      std::array<size_t, N + 1> order;
      for (size_t i = 0; i <= N; ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](size_t l, size_t r) { return vals[l] < vals[r]; });
      const size_t lo = order[0], hi = order[N], second = order[N - 1];
      double spread = std::abs(vals[hi] - vals[lo]);
      double size = 0;
      for (size_t i = 0; i <= N; ++i) {
        for (size_t d = 0; d < N; ++d) size = std::max(size, std::abs(pts[i][d] - pts[lo][d]));
      }
      if (spread <= 1e-12 * (1 + std::abs(vals[lo])) && size < 1e-9) break;
      Point centroid{};
      for (size_t i = 0; i <= N; ++i) {
        if (i == hi) continue;
        for (size_t d = 0; d < N; ++d) centroid[d] += pts[i][d] / N;
      }
      auto along = [&](double t) {
        Point p;
        for (size_t d = 0; d < N; ++d) p[d] = centroid[d] + t * (pts[hi][d] - centroid[d]);
        return p;
      };
      Point reflected = along(-1);
      double fr = eval(reflected);
      if (fr < vals[lo]) {
        Point expanded = along(-2);
        double fe = eval(expanded);
        if (fe < fr) {
          pts[hi] = expanded;
          vals[hi] = fe;
        } else {
          pts[hi] = reflected;
          vals[hi] = fr;
        }
        continue;
      }
      if (fr < vals[second]) {
        pts[hi] = reflected;
        vals[hi] = fr;
        continue;
      }
      bool outside = fr < vals[hi];
      Point contracted = along(outside ? -0.5 : 0.5);
      double fc = eval(contracted);
      if (fc < (outside ? fr : vals[hi])) {
        pts[hi] = contracted;
        vals[hi] = fc;
        continue;
      }
      for (size_t i = 0; i <= N; ++i) {  // shrink towards the best point
        if (i == lo) continue;
        for (size_t d = 0; d < N; ++d) pts[i][d] = pts[lo][d] + 0.5 * (pts[i][d] - pts[lo][d]);
        vals[i] = eval(pts[i]);
      }
    }
    size_t lo = 0;
    for (size_t i = 1; i <= N; ++i) {
      if (vals[i] < vals[lo]) lo = i;
    }
    bool improved = vals[lo] < best_value - 1e-10 * (1 + std::abs(best_value));
    if (vals[lo] < best_value) {
      best = pts[lo];
      best_value = vals[lo];
    }
    if (!improved && restart > 0) break;
  }
  return Minimum<N>{best, best_value, evaluations};
}

Status CheckSummaries(const std::vector<CustomerSummary>& customers) {
  if (customers.empty()) return InvalidArgumentError("no customers to fit the model on");
  for (const CustomerSummary& c : customers) {
    auto bad = [&](std::string_view why) {
      return InvalidArgumentError(fmt::format("customer '{}': {} (x={}, t_x={}, T={}, monetary={})",
                                              c.customer_id, why, c.x, c.t_x, c.T, c.monetary));
    };
    if (!std::isfinite(c.x) || !std::isfinite(c.t_x) || !std::isfinite(c.T) ||
        !std::isfinite(c.monetary)) {
      return bad("a value is not a finite number");
    }
    if (c.x < 0 || c.t_x < 0 || c.T < 0 || c.monetary < 0) return bad("a value is negative");
    if (c.t_x > c.T) return bad("the last transaction (t_x) is after the end of calibration (T)");
    if (c.x > 0 && c.t_x <= 0) return bad("repeat transactions but t_x is 0");
  }
  return Status::Ok();
}

}  // namespace

Json BgNbdParams::ToJson() const { return Json{{"r", r}, {"alpha", alpha}, {"a", a}, {"b", b}}; }

Json GammaGammaParams::ToJson() const { return Json{{"p", p}, {"q", q}, {"gamma", gamma}}; }

namespace {
void AddReport(Json& j, const FitReport& r) {
  j["log_likelihood"] = r.log_likelihood;
  j["customers"] = r.customers;
  j["excluded"] = r.excluded;
  j["evaluations"] = r.evaluations;
}
}  // namespace

Json BgNbdFit::ToJson() const {
  Json j = params.ToJson();
  AddReport(j, report);
  return j;
}

Json GammaGammaFit::ToJson() const {
  Json j = params.ToJson();
  AddReport(j, report);
  return j;
}

double BgNbdLogLikelihood(const BgNbdParams& params,
                          const std::vector<CustomerSummary>& customers) {
  return BgNbdLl(params, GroupBgNbd(customers));
}

double GammaGammaLogLikelihood(const GammaGammaParams& params,
                               const std::vector<CustomerSummary>& customers) {
  return GammaGammaLl(params, GroupGammaGamma(customers));
}

Result<BgNbdFit> FitBgNbd(const std::vector<CustomerSummary>& customers) {
  ENGAGE_RETURN_IF_ERROR(CheckSummaries(customers));
  std::vector<Weighted> data = GroupBgNbd(customers);
  double n = static_cast<double>(customers.size());
  // Optimised over the logs of the parameters, which keeps them positive; the objective is the
  // mean negative log-likelihood so tolerances do not depend on the number of customers.
  auto objective = [&](const std::array<double, 4>& v) {
    BgNbdParams p{std::exp(v[0]), std::exp(v[1]), std::exp(v[2]), std::exp(v[3])};
    return -BgNbdLl(p, data) / n;
  };
  // Start from r = α = a = b = 1, scaled so the start's rate matches the data's.
  double mean_T = 0, mean_x = 0;
  for (const CustomerSummary& c : customers) {
    mean_T += c.T / n;
    mean_x += c.x / n;
  }
  double alpha0 = mean_x > 0 && mean_T > 0 ? mean_T / std::max(mean_x, 1e-3) : 1.0;
  Minimum<4> m = NelderMead<4>(objective, {0.0, std::log(alpha0), 0.0, 0.0});
  BgNbdFit fit;
  fit.params = BgNbdParams{std::exp(m.x[0]), std::exp(m.x[1]), std::exp(m.x[2]), std::exp(m.x[3])};
  fit.report.log_likelihood = BgNbdLl(fit.params, data);
  fit.report.customers = static_cast<int64_t>(customers.size());
  fit.report.evaluations = m.evaluations;
  if (!std::isfinite(fit.report.log_likelihood) || !std::isfinite(fit.params.r) ||
      !std::isfinite(fit.params.alpha) || !std::isfinite(fit.params.a) ||
      !std::isfinite(fit.params.b)) {
    return FailedPreconditionError(
        "the BG/NBD fit did not converge to finite parameters (too few repeat transactions?)");
  }
  return fit;
}

Result<GammaGammaFit> FitGammaGamma(const std::vector<CustomerSummary>& customers) {
  ENGAGE_RETURN_IF_ERROR(CheckSummaries(customers));
  std::vector<Weighted> data = GroupGammaGamma(customers);
  int64_t used = 0;
  double mean_m = 0;
  for (const Weighted& w : data) used += static_cast<int64_t>(w.weight);
  if (used == 0) {
    return InvalidArgumentError(
        "no customer has repeat transactions with a positive spend: the Gamma-Gamma model needs "
        "some");
  }
  for (const Weighted& w : data) mean_m += w.monetary * w.weight / static_cast<double>(used);
  auto objective = [&](const std::array<double, 3>& v) {
    GammaGammaParams g{std::exp(v[0]), std::exp(v[1]), std::exp(v[2])};
    return -GammaGammaLl(g, data) / static_cast<double>(used);
  };
  // Start where the mean spend p·γ/(q−1) matches the data's: p = 1, q = 2, γ = mean.
  Minimum<3> m = NelderMead<3>(objective, {0.0, std::log(2.0), std::log(std::max(mean_m, 1e-6))});
  GammaGammaFit fit;
  fit.params = GammaGammaParams{std::exp(m.x[0]), std::exp(m.x[1]), std::exp(m.x[2])};
  fit.report.log_likelihood = GammaGammaLl(fit.params, data);
  fit.report.customers = used;
  fit.report.excluded = static_cast<int64_t>(customers.size()) - used;
  fit.report.evaluations = m.evaluations;
  if (!std::isfinite(fit.report.log_likelihood)) {
    return FailedPreconditionError("the Gamma-Gamma fit did not converge to finite parameters");
  }
  if (!(fit.params.q > 1)) {
    // The population's mean spend p·γ/(q−1) is then infinite or negative: every expected spend
    // and CLV would be meaningless.
    return InvalidArgumentError(fmt::format(
        "the Gamma-Gamma fit has q = {:.4f} <= 1, so the mean spend is not finite: these amounts "
        "do not follow the model (are they transactions' values? are many of them 0?)",
        fit.params.q));
  }
  return fit;
}

double Hyp2F1(double a, double b, double c, double z) {
  double sum = 1, term = 1;
  for (int k = 0; k < 1000000; ++k) {
    term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * z;
    sum += term;
    if (std::abs(term) <= 1e-15 * std::abs(sum)) break;
  }
  return sum;
}

double ProbabilityAlive(const BgNbdParams& p, const CustomerSummary& c) {
  if (c.x <= 0) return 1.0;
  double log_ratio = (p.r + c.x) * (std::log(p.alpha + c.T) - std::log(p.alpha + c.t_x));
  double odds = p.a / (p.b + c.x - 1) * std::exp(log_ratio);
  return 1.0 / (1.0 + odds);
}

double ExpectedTransactions(const BgNbdParams& p, const CustomerSummary& c, double t) {
  if (t <= 0) return 0;
  // FHL (2005) eq. 10.
  double x = c.x;
  double num = (p.a + p.b + x - 1) / (p.a - 1) *
               (1 - std::pow((p.alpha + c.T) / (p.alpha + c.T + t), p.r + x) *
                        Hyp2F1(p.r + x, p.b + x, p.a + p.b + x - 1, t / (p.alpha + c.T + t)));
  double den = 1;
  if (x > 0) {
    den += p.a / (p.b + x - 1) * std::pow((p.alpha + c.T) / (p.alpha + c.t_x), p.r + x);
  }
  return num / den;
}

double ExpectedTransactionsNew(const BgNbdParams& p, double t) {
  if (t <= 0) return 0;
  // FHL (2005) eq. 9.
  return (p.a + p.b - 1) / (p.a - 1) *
         (1 - std::pow(p.alpha / (p.alpha + t), p.r) *
                  Hyp2F1(p.r, p.b, p.a + p.b - 1, t / (p.alpha + t)));
}

double ExpectedSpend(const GammaGammaParams& g, const CustomerSummary& c) {
  if (c.x <= 0 || c.monetary <= 0) return g.p * g.gamma / (g.q - 1);
  return g.p * (g.gamma + c.x * c.monetary) / (g.p * c.x + g.q - 1);
}

double CustomerLifetimeValue(const BgNbdParams& bgnbd, const GammaGammaParams& gamma_gamma,
                             const CustomerSummary& c, const ClvOptions& o) {
  double spend = ExpectedSpend(gamma_gamma, c);
  double value = 0, before = 0;
  for (int i = 1; i <= o.periods; ++i) {
    double upto = ExpectedTransactions(bgnbd, c, o.period_length * i);
    value += (upto - before) * spend / std::pow(1 + o.discount_rate, i);
    before = upto;
  }
  return value;
}

Result<std::vector<CustomerSummary>> SummarizeEvents(sql::QueryEngine& engine,
                                                     const SummaryRequest& req) {
  using lake::SqlIdent;
  using lake::SqlQuote;
  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, engine.lake().config().Table(req.table));
  std::string time_column = req.time_column.empty() ? spec->time_column : req.time_column;
  if (time_column.empty()) {
    return InvalidArgumentError(fmt::format(
        "table '{}' has no time_column; name the column holding the event time", req.table));
  }
  if (!req.types.empty() && req.type_column.empty()) {
    return InvalidArgumentError("transaction types need the column holding them");
  }
  for (const std::string& col :
       {req.customer_column, time_column, req.amount_column, req.type_column}) {
    if (!col.empty() && spec->FindColumn(col) == nullptr) {
      return NotFoundError(fmt::format("table '{}' has no column '{}'", req.table, col));
    }
  }
  if (!(req.days_per_unit > 0)) {
    return InvalidArgumentError("days_per_unit must be positive");
  }
  std::string end = req.calibration_end;
  int64_t end_day = 0;
  if (!end.empty() && (!ParseDate(end, &end_day) || FormatDate(end_day) != end)) {
    return InvalidArgumentError(
        fmt::format("calibration end '{}' is not a date (YYYY-MM-DD)", end));
  }
  std::string end_sql = end.empty() ? fmt::format("(SELECT MAX(CAST({} AS DATE)) FROM {})",
                                                  SqlIdent(time_column), SqlIdent(req.table))
                                    : fmt::format("DATE {}", SqlQuote(end));
  std::string amount = req.amount_column.empty() ? "0.0"
                                                 : fmt::format("COALESCE(CAST({} AS DOUBLE), 0)",
                                                               SqlIdent(req.amount_column));
  std::string where = req.where.empty() ? "" : fmt::format(" AND ({})", req.where);
  if (!req.types.empty()) {
    std::string list;
    for (const auto& t : req.types) list += (list.empty() ? "" : ", ") + SqlQuote(t);
    where += fmt::format(" AND {} IN ({})", SqlIdent(req.type_column), list);
  }
  std::string sql = fmt::format(
      R"sql(WITH cal_end AS (SELECT {end} AS e),
days AS (
  SELECT CAST({cust} AS VARCHAR) AS c, CAST({time} AS DATE) AS d, SUM({amount}) AS v
  FROM {table}
  WHERE {cust} IS NOT NULL AND {time} IS NOT NULL AND CAST({time} AS DATE) <= (SELECT e FROM cal_end){where}
  GROUP BY 1, 2),
firsts AS (SELECT c, MIN(d) AS f FROM days GROUP BY c)
SELECT days.c, COUNT(*) - 1 AS x, date_diff('day', f, MAX(d)) AS tx_days,
       date_diff('day', f, (SELECT e FROM cal_end)) AS t_days,
       COALESCE(AVG(v) FILTER (WHERE d > f), 0) AS m
FROM days JOIN firsts ON days.c = firsts.c
GROUP BY days.c, f
ORDER BY TRY_CAST(days.c AS BIGINT) NULLS LAST, days.c)sql",
      fmt::arg("end", end_sql), fmt::arg("cust", SqlIdent(req.customer_column)),
      fmt::arg("time", SqlIdent(time_column)), fmt::arg("amount", amount),
      fmt::arg("table", SqlIdent(req.table)), fmt::arg("where", where));
  ENGAGE_ASSIGN_OR_RETURN(lake::DuckResult res, engine.RunTrusted(sql, "btyd"));
  std::vector<CustomerSummary> out;
  int64_t rows = res.RowCount();
  out.reserve(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    CustomerSummary c;
    c.customer_id = res.Str(0, i).value_or("");
    c.x = static_cast<double>(res.Int(1, i));
    c.t_x = static_cast<double>(res.Int(2, i)) / req.days_per_unit;
    c.T = static_cast<double>(res.Int(3, i)) / req.days_per_unit;
    c.monetary = res.Double(4, i);
    out.push_back(std::move(c));
  }
  return out;
}

Json BtydFits::ToJson() const {
  Json j = Json::object();
  j["bgnbd"] = bgnbd.ToJson();
  if (gamma_gamma) {
    j["gamma_gamma"] = gamma_gamma->ToJson();
  } else {
    j["gamma_gamma"] = nullptr;
    j["gamma_gamma_skipped"] = gamma_gamma_skipped;
  }
  return j;
}

std::string BtydFits::ToText() const {
  const auto& b = bgnbd;
  std::string out = fmt::format(
      "BG/NBD       r = {:.4f}  alpha = {:.4f}  a = {:.4f}  b = {:.4f}\n"
      "             log-likelihood {:.4f} over {} customers\n",
      b.params.r, b.params.alpha, b.params.a, b.params.b, b.report.log_likelihood,
      b.report.customers);
  if (!gamma_gamma) return out + fmt::format("Gamma-Gamma  not fitted: {}\n", gamma_gamma_skipped);
  const auto& g = *gamma_gamma;
  return out + fmt::format(
                   "Gamma-Gamma  p = {:.4f}  q = {:.4f}  gamma = {:.4f}\n"
                   "             log-likelihood {:.4f} over {} repeat customers ({} left out)\n",
                   g.params.p, g.params.q, g.params.gamma, g.report.log_likelihood,
                   g.report.customers, g.report.excluded);
}

Result<BtydFits> FitBtyd(const std::vector<CustomerSummary>& customers, bool with_amounts) {
  BtydFits f;
  ENGAGE_ASSIGN_OR_RETURN(f.bgnbd, FitBgNbd(customers));
  if (!with_amounts) {
    f.gamma_gamma_skipped = "no amount column";
    return f;
  }
  auto gg = FitGammaGamma(customers);
  if (gg.ok()) {
    f.gamma_gamma = *gg;
  } else if (gg.status().code() == StatusCode::kInvalidArgument) {
    f.gamma_gamma_skipped = gg.status().message();
  } else {
    return gg.status();
  }
  return f;
}

void ApplyEngagementTypes(const EngagementConfig& config, SummaryRequest* request) {
  const bool events = request->table == config.events_table;
  if (events && request->types.empty()) request->types = config.qualifying_types;
  if (!request->types.empty() && request->type_column.empty()) {
    request->type_column = config.type_column;
  }
}

Result<BtydAnalysis> AnalyzeBtyd(sql::QueryEngine& engine, const SummaryRequest& request,
                                 double horizon, const ClvOptions& clv) {
  BtydAnalysis a;
  a.request = request;
  ENGAGE_ASSIGN_OR_RETURN(a.customers, SummarizeEvents(engine, request));
  if (!request.calibration_end.empty()) {
    // SummarizeEvents checked the table, its columns and the date.
    ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, engine.lake().config().Table(request.table));
    std::string time =
        lake::SqlIdent(request.time_column.empty() ? spec->time_column : request.time_column);
    ENGAGE_ASSIGN_OR_RETURN(
        lake::DuckResult last,
        engine.RunTrusted(fmt::format("SELECT CAST(MAX(CAST({0} AS DATE)) AS VARCHAR), "
                                      "CASE WHEN MAX(CAST({0} AS DATE)) < DATE {1} THEN 1 ELSE 0 "
                                      "END FROM {2}",
                                      time, lake::SqlQuote(request.calibration_end),
                                      lake::SqlIdent(request.table)),
                          "btyd"));
    if (last.RowCount() == 1 && last.Int(1, 0) == 1) {
      return InvalidArgumentError(fmt::format(
          "calibration end {} is after the last event of '{}' ({}): every customer would look "
          "inactive since then; give a day on or before {} or leave --calibration-end out",
          request.calibration_end, request.table, last.Str(0, 0).value_or("?"),
          last.Str(0, 0).value_or("?")));
    }
  }
  if (a.customers.empty()) {
    return FailedPreconditionError(fmt::format(
        "table '{}' has no customer with a transaction on or before the calibration end",
        request.table));
  }
  if (std::all_of(a.customers.begin(), a.customers.end(),
                  [](const CustomerSummary& c) { return c.T <= 0; })) {
    return FailedPreconditionError(fmt::format(
        "no customer of '{}' has been observed for any time by the calibration end ({}): it is "
        "the first day of data; give a later day",
        request.table,
        request.calibration_end.empty() ? "the last event" : request.calibration_end));
  }
  ENGAGE_ASSIGN_OR_RETURN(a.fits, FitBtyd(a.customers, !request.amount_column.empty()));
  if (horizon > 0) {
    a.horizon = horizon;
    ClvOptions monthly = clv;
    monthly.period_length = 30.0 / request.days_per_unit;
    a.predictions = PredictBtyd(a.fits, a.customers, horizon, monthly);
  }
  return a;
}

Json BtydPrediction::ToJson() const {
  auto opt = [](const std::optional<double>& v) { return v ? Json(*v) : Json(); };
  return Json{{"customer_id", customer->customer_id},
              {"x", customer->x},
              {"t_x", customer->t_x},
              {"T", customer->T},
              {"monetary", customer->monetary},
              {"p_alive", p_alive},
              {"expected_transactions", expected_transactions},
              {"expected_spend", opt(expected_spend)},
              {"clv", opt(clv)}};
}

std::vector<BtydPrediction> PredictBtyd(const BtydFits& fits,
                                        const std::vector<CustomerSummary>& customers,
                                        double horizon, const ClvOptions& clv) {
  std::vector<BtydPrediction> out;
  out.reserve(customers.size());
  for (const auto& c : customers) {
    BtydPrediction p;
    p.customer = &c;
    p.p_alive = ProbabilityAlive(fits.bgnbd.params, c);
    p.expected_transactions = ExpectedTransactions(fits.bgnbd.params, c, horizon);
    if (fits.gamma_gamma) {
      p.expected_spend = ExpectedSpend(fits.gamma_gamma->params, c);
      p.clv = CustomerLifetimeValue(fits.bgnbd.params, fits.gamma_gamma->params, c, clv);
    }
    out.push_back(p);
  }
  return out;
}

std::string BtydPredictionsCsv(const std::vector<BtydPrediction>& predictions) {
  std::string csv =
      "customer_id,x,t_x,T,monetary,p_alive,expected_transactions,expected_spend,clv\n";
  auto opt = [](const std::optional<double>& v) {
    return v ? fmt::format("{:.6g}", *v) : std::string();
  };
  for (const auto& p : predictions) {
    const CustomerSummary& c = *p.customer;
    std::string id = c.customer_id;
    if (id.find_first_of(",\"\n\r") != std::string::npos) {
      std::string q = "\"";
      for (char ch : id) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      id = q + "\"";
    }
    csv += fmt::format("{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},{}\n", id, c.x, c.t_x, c.T,
                       c.monetary, p.p_alive, p.expected_transactions, opt(p.expected_spend),
                       opt(p.clv));
  }
  return csv;
}

}  // namespace engage::ml
