// "Buy 'til you die" models of repeat buying, fitted by maximum likelihood:
//  - BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"): while alive a
//    customer buys at a Poisson rate λ ~ Gamma(r, α); after each purchase they drop out with
//    probability p ~ Beta(a, b). Gives the probability a customer is alive and the expected
//    number of transactions in any horizon.
//  - Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value"): spend per
//    transaction varies around a customer's mean ν ~ Gamma(q, γ) with Gamma(p, ν) noise. Gives
//    the expected spend per transaction; with BG/NBD, the customer lifetime value (CLV).
//
//   ENGAGE_ASSIGN_OR_RETURN(auto customers, SummarizeEvents(engine, request));
//   ENGAGE_ASSIGN_OR_RETURN(BgNbdFit bg, FitBgNbd(customers));
//   ENGAGE_ASSIGN_OR_RETURN(GammaGammaFit gg, FitGammaGamma(customers));
//   double alive = ProbabilityAlive(bg.params, customers[0]);
//
// Inputs are per-customer summaries of the calibration period (see CustomerSummary), in a time
// unit the caller chooses (weeks in the literature); the fitted α (BG/NBD) is in that unit.
//
// Thread-safety: every function is pure; call them from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/sql/query.h"

namespace engage::ml {

// One customer's calibration-period summary. Purchases on the same day are one transaction.
struct CustomerSummary {
  std::string customer_id;
  double x = 0;         // repeat transactions (transaction days after the first)
  double t_x = 0;       // time from the first transaction to the last one
  double T = 0;         // time from the first transaction to the end of calibration
  double monetary = 0;  // mean value of the repeat transactions (0 when x == 0)
};

struct BgNbdParams {
  double r = 0, alpha = 0, a = 0, b = 0;
  Json ToJson() const;
};

struct GammaGammaParams {
  double p = 0, q = 0, gamma = 0;
  Json ToJson() const;
};

struct FitReport {
  double log_likelihood = 0;
  int64_t customers = 0;    // customers the likelihood covers
  int64_t excluded = 0;     // customers left out (Gamma-Gamma: x == 0 or no positive spend)
  int64_t evaluations = 0;  // likelihood evaluations the optimiser made
};

struct BgNbdFit {
  BgNbdParams params;
  FitReport report;
  Json ToJson() const;  // {"r", "alpha", "a", "b", "log_likelihood", "customers", ...}
};

struct GammaGammaFit {
  GammaGammaParams params;
  FitReport report;
  Json ToJson() const;  // {"p", "q", "gamma", "log_likelihood", "customers", ...}
};

// The BG/NBD log-likelihood of `customers` (sum over customers); -inf when a parameter is not
// positive.
double BgNbdLogLikelihood(const BgNbdParams& params, const std::vector<CustomerSummary>& customers);
// Maximum-likelihood fit. kInvalidArgument for no customers, negative or non-finite values,
// t_x > T, or x > 0 with t_x == 0 on a customer (named in the message); kFailedPrecondition
// when the optimiser does not converge to finite parameters.
Result<BgNbdFit> FitBgNbd(const std::vector<CustomerSummary>& customers);

// The Gamma-Gamma log-likelihood over customers with x > 0 and monetary > 0.
double GammaGammaLogLikelihood(const GammaGammaParams& params,
                               const std::vector<CustomerSummary>& customers);
// Maximum-likelihood fit on the customers with x > 0 and monetary > 0 (the others are counted
// in report.excluded). kInvalidArgument when no customer qualifies.
Result<GammaGammaFit> FitGammaGamma(const std::vector<CustomerSummary>& customers);

// P(alive at T | x, t_x, T).
double ProbabilityAlive(const BgNbdParams& params, const CustomerSummary& c);
// E[transactions in (T, T + t] | x, t_x, T].
double ExpectedTransactions(const BgNbdParams& params, const CustomerSummary& c, double t);
// E[transactions in (0, t]] for a customer just acquired (the model's population curve).
double ExpectedTransactionsNew(const BgNbdParams& params, double t);
// E[spend per transaction | x, monetary]: the population mean when x == 0.
double ExpectedSpend(const GammaGammaParams& params, const CustomerSummary& c);

struct ClvOptions {
  int periods = 12;                 // horizon in periods
  double period_length = 30.0 / 7;  // one period in the summaries' time unit (a month in weeks)
  double discount_rate = 0.01;      // per period
};
// Customer lifetime value over the horizon: expected transactions per period (BG/NBD) times
// the expected spend (Gamma-Gamma), discounted per period.
double CustomerLifetimeValue(const BgNbdParams& bgnbd, const GammaGammaParams& gamma_gamma,
                             const CustomerSummary& c, const ClvOptions& options);

// BG/NBD and, with amounts, Gamma-Gamma fitted on the same customers (`engage btyd fit`).
struct BtydFits {
  BgNbdFit bgnbd;
  std::optional<GammaGammaFit> gamma_gamma;  // none without amounts or repeat spend
  std::string gamma_gamma_skipped;           // why there is none
  // {"bgnbd", "gamma_gamma" (null when skipped), "gamma_gamma_skipped" (when skipped)}
  Json ToJson() const;
  // The parameters and log-likelihoods, a few aligned lines.
  std::string ToText() const;
};

// Errors of FitBgNbd; Gamma-Gamma's kInvalidArgument (no customer with repeat spend) is a
// skipped fit, not an error.
Result<BtydFits> FitBtyd(const std::vector<CustomerSummary>& customers, bool with_amounts);

// One customer's outputs (`engage btyd predict`).
struct BtydPrediction {
  const CustomerSummary* customer = nullptr;
  double p_alive = 0;
  double expected_transactions = 0;      // over the horizon
  std::optional<double> expected_spend;  // with Gamma-Gamma only
  std::optional<double> clv;
  // {"customer_id", "x", "t_x", "T", "monetary", "p_alive", "expected_transactions",
  //  "expected_spend", "clv"} (null without Gamma-Gamma)
  Json ToJson() const;
};

// Every customer's outputs over `horizon` time units (the pointers refer into `customers`).
std::vector<BtydPrediction> PredictBtyd(const BtydFits& fits,
                                        const std::vector<CustomerSummary>& customers,
                                        double horizon, const ClvOptions& clv);

// The outputs as CSV, a header line then one line per customer (ids quoted when needed,
// missing values empty).
std::string BtydPredictionsCsv(const std::vector<BtydPrediction>& predictions);

// The Gauss hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1 (by its power series).
double Hyp2F1(double a, double b, double c, double z);

// How to summarise an events table of the lake for the models.
struct SummaryRequest {
  std::string table;  // lake table of events
  std::string customer_column = "customer_id";
  std::string time_column;               // empty: the table's time_column
  std::string amount_column = "amount";  // empty: no monetary value
  std::string calibration_end;           // YYYY-MM-DD, inclusive; empty: the last event's day
  double days_per_unit = 7;              // 7: time in weeks
  std::string where;                     // optional SQL filter on the events (trusted: config)
  // Only rows whose `type_column` is one of `types` are transactions (none: every row is).
  std::string type_column;
  std::vector<std::string> types;
};
// One summary per customer whose first transaction is on or before the calibration end, in
// customer order (numeric ids as numbers, then the rest as text). Same-day transactions are merged
// (their amounts summed); monetary is the mean of the repeat days' totals. The query is metered
// like any other (source "btyd"). kNotFound for an unknown table or column; kInvalidArgument for a
// bad date (strict YYYY-MM-DD).
Result<std::vector<CustomerSummary>> SummarizeEvents(sql::QueryEngine& engine,
                                                     const SummaryRequest& request);

// The transactions of [engagement]'s events table are its qualifying types: when `request` reads
// that table and names no types, they become its types. Types without a column are of
// [engagement] type_column.
void ApplyEngagementTypes(const EngagementConfig& config, SummaryRequest* request);

// What `engage btyd fit|predict` runs on a lake table: the customers' summaries, the fits and,
// with a horizon, every customer's outputs.
struct BtydAnalysis {
  SummaryRequest request;
  std::vector<CustomerSummary> customers;
  BtydFits fits;
  double horizon = 0;                       // in time units; 0: no predictions
  std::vector<BtydPrediction> predictions;  // point into `customers` (kept when moved)

  const char* time_unit() const { return request.days_per_unit == 1 ? "day" : "week"; }
  // The fits' JSON with "table", "calibration_end", "time_unit", "customers" and, with
  // predictions, "horizon" and the first `shown` of them under "predictions".
  Json ToJson(size_t shown) const;
  // The fits (no predictions), or the parameters line and the first `shown` predictions as a
  // table, with how many there are in all.
  std::string ToText(size_t shown) const;
};

// Summarises `request`, fits both models (Gamma-Gamma with an amount column) and, when
// horizon > 0, predicts every customer (a CLV period of 30 days, whatever `clv` says).
// kFailedPrecondition when no customer has a transaction on or before the calibration end, or
// none has been observed for any time (a calibration end on the first day of data);
// kInvalidArgument when the calibration end is after the table's last event (the recency of every
// customer would be made up); SummarizeEvents' errors.
Result<BtydAnalysis> AnalyzeBtyd(sql::QueryEngine& engine, const SummaryRequest& request,
                                 double horizon = 0, const ClvOptions& clv = {});

}  // namespace engage::ml
