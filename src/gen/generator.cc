#include "engage/gen/generator.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/text.h"
#include "engage/lake/duck.h"

namespace engage::gen {
namespace {

using lake::ChunkWriter;
using lake::DuckConn;
using lake::DuckDb;
using lake::SqlQuote;

constexpr int64_t kMicrosPerDay = 86400LL * 1000000;
constexpr int kHorizonDays = 30;
// Day-of-week activity (Mon..Sun), mean 1: weekends are busier.
constexpr std::array<double, 7> kWeekly = {0.92, 0.94, 0.96, 0.98, 1.02, 1.13, 1.05};
constexpr double kWeeklyMax = 1.13;
constexpr int kAucBins = 100000;

// The population the traits are drawn from (see DrawTraits); the Bayes posterior uses it too.
constexpr double kRateShape = 0.8;             // session rate ~ Gamma(shape, rate = shape / mean)
constexpr double kRateMean = 0.14;             // sessions per day
constexpr double kBuyA = 1.5, kBuyB = 9.0;     // purchase probability ~ Beta, mean ~0.14
constexpr double kDropA = 1.2, kDropB = 14.0;  // dropout probability ~ Beta, mean ~0.08

enum EventType { kSession, kPageView, kAddToCart, kPurchase, kEmailOpen, kSupport };
constexpr const char* kEventNames[] = {"session",  "page_view",  "add_to_cart",
                                       "purchase", "email_open", "support_contact"};
constexpr const char* kChannels[] = {"web", "app", "email", "store"};
constexpr const char* kCountries[] = {"US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "BR"};
constexpr double kCountryWeights[] = {0.34, 0.16, 0.12, 0.09, 0.07, 0.06, 0.05, 0.04, 0.04, 0.03};
constexpr const char* kPlans[] = {"free", "basic", "premium"};

// splitmix64: small, fast and good enough to seed and drive per-customer streams.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double OpenUniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  double Exponential(double rate) { return -std::log(OpenUniform()) / rate; }
  double Normal() {
    // Box-Muller (one value per call keeps the stream simple and deterministic).
    double u1 = OpenUniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }
  // Marsaglia-Tsang; shape > 0, scale 1.
  double Gamma(double shape) {
    if (shape < 1) return Gamma(shape + 1) * std::pow(OpenUniform(), 1.0 / shape);
    double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
    for (;;) {
      double x = Normal(), v = 1 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      double u = OpenUniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }
  double Beta(double a, double b) {
    double x = Gamma(a);
    return x / (x + Gamma(b));
  }
  bool Bernoulli(double p) { return Uniform() < p; }
  int Pick(const double* weights, int n) {
    double u = Uniform();
    for (int i = 0; i < n - 1; ++i) {
      if ((u -= weights[i]) < 0) return i;
    }
    return n - 1;
  }

 private:
  uint64_t s_;
};

uint64_t Mix(uint64_t a, uint64_t b) {
  Rng r(a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL));
  r.Next();
  return r.Next();
}

// 1970-01-01 was a Thursday: Monday-based day of week of a day number.
int DayOfWeek(int64_t day) { return static_cast<int>(((day % 7) + 7 + 3) % 7); }

struct Traits {
  double session_rate;   // sessions per day while alive (before weekly modulation)
  double purchase_prob;  // per session
  double dropout_prob;   // after each session
  double log_amount_mu;  // log-normal spend level
  double email_rate;     // email opens per day while alive
  double channel_w[3];   // web, app, store preference for sessions/purchases
};

struct Event {
  int64_t time_us;
  EventType type;
  int channel;
  double amount;  // NaN = NULL
  int64_t prop;   // page number or items; -1 = no properties
};

struct AucHistogram {
  std::vector<int64_t> pos = std::vector<int64_t>(kAucBins + 1);
  std::vector<int64_t> neg = std::vector<int64_t>(kAucBins + 1);
  void Add(double p, bool label) {
    int b = static_cast<int>(std::clamp(p, 0.0, 1.0) * kAucBins);
    (label ? pos : neg)[b]++;
  }
  // Rank AUC with ties within a bin counted as half.
  double Auc() const {
    double total_pos = 0, total_neg = 0, acc = 0, neg_below = 0;
    for (int b = 0; b <= kAucBins; ++b) {
      acc += static_cast<double>(pos[b]) * (neg_below + 0.5 * static_cast<double>(neg[b]));
      neg_below += static_cast<double>(neg[b]);
      total_pos += static_cast<double>(pos[b]);
      total_neg += static_cast<double>(neg[b]);
    }
    return total_pos > 0 && total_neg > 0 ? acc / (total_pos * total_neg) : 0.5;
  }
};

// Probability of at least one purchase in the horizon for an alive customer: sessions are
// Poisson with mean `lambda_sum`; each purchases with c, then the customer drops out with p.
// P(no purchase | n sessions) = f* + (1 - f*) (q (1-p))^n with q = 1 - c, f* = q p / (1 - q(1-p));
// taking the Poisson expectation gives the closed form below.
double PurchaseProbability(double lambda_sum, double c, double p) {
  double q = 1 - c;
  double r = q * (1 - p);
  double f_star = q * p / (1 - r);
  double none = f_star + (1 - f_star) * std::exp(-lambda_sum * (1 - r));
  return 1 - none;
}

// Gauss-Legendre nodes and weights on [-1, 1] (Newton's method on the Legendre recurrence).
struct GaussLegendre {
  static constexpr int kNodes = 10;
  std::array<double, kNodes> x{}, w{};
  GaussLegendre() {
    for (int i = 0; i < kNodes; ++i) {
      double z = std::cos(M_PI * (i + 0.75) / (kNodes + 0.5)), dp = 1;
      for (int it = 0; it < 100; ++it) {
        double p0 = 1, p1 = 0;  // P_n(z), P_{n-1}(z)
        for (int j = 1; j <= kNodes; ++j) {
          double p2 = p1;
          p1 = p0;
          p0 = ((2 * j - 1) * z * p1 - (j - 1) * p2) / j;
        }
        dp = kNodes * (z * p0 - p1) / (z * z - 1);
        double dz = p0 / dp;
        z -= dz;
        if (std::abs(dz) < 1e-15) break;
      }
      x[static_cast<size_t>(i)] = z;
      w[static_cast<size_t>(i)] = 2 / ((1 - z * z) * dp * dp);
    }
  }
};

// A quadrature for expectations under Beta(a, b): Gauss-Legendre on the mean +- 10 standard
// deviations (clipped to [0, 1]), weights proportional to the density and summing to 1.
struct BetaRule {
  std::array<double, GaussLegendre::kNodes> x{}, w{};
  BetaRule(const GaussLegendre& gl, double a, double b) {
    double m = a / (a + b), sd = std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)));
    double lo = std::max(0.0, m - 10 * sd), hi = std::min(1.0, m + 10 * sd);
    std::array<double, GaussLegendre::kNodes> logd{};
    double top = -INFINITY;
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = lo + (hi - lo) * (gl.x[i] + 1) / 2;
      logd[i] = (a - 1) * std::log(x[i]) + (b - 1) * std::log1p(-x[i]);
      top = std::max(top, logd[i]);
    }
    double sum = 0;
    for (size_t i = 0; i < x.size(); ++i) sum += w[i] = gl.w[i] * std::exp(logd[i] - top);
    for (double& v : w) v /= sum;
  }
};

double LogBeta(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }

class Simulator {
 public:
  Simulator(const GenOptions& o) : opts_(o) {
    start_day_ = o.end_day - o.days;
    horizon_weight_ = 0;
    for (int d = 0; d < kHorizonDays; ++d) horizon_weight_ += kWeekly[DayOfWeek(o.end_day + d)];
    exposure_.resize(static_cast<size_t>(o.days) + 1);
    for (int d = 0; d < o.days; ++d) {
      exposure_[static_cast<size_t>(d) + 1] =
          exposure_[static_cast<size_t>(d)] + kWeekly[DayOfWeek(start_day_ + d)];
    }
  }

  // Weighted days (the session intensity's seasonal weight integrated) from the window's start
  // to `us`, which lies in the window.
  double Exposure(int64_t us) const {
    double day = static_cast<double>(us) / kMicrosPerDay - static_cast<double>(start_day_);
    day = std::clamp(day, 0.0, static_cast<double>(opts_.days));
    size_t i = std::min(static_cast<size_t>(day), exposure_.size() - 2);
    return exposure_[i] + (day - static_cast<double>(i)) * (exposure_[i + 1] - exposure_[i]);
  }

  // The best prediction possible from a customer's events alone: P(purchase in the horizon |
  // the sessions and purchases seen), under the true population the traits are drawn from,
  // integrating over the unknown traits and over whether the customer has silently dropped out.
  // `x` sessions (`k` of them with a purchase) were seen over `w_obs` weighted days of
  // exposure, the last one `w_last` weighted days in. Unlike the oracle it cannot know the
  // customer's own traits or whether they are still alive, so no model can beat it on average.
  double BayesProbability(int64_t x, int64_t k, double w_obs, double w_last) const {
    const double n = static_cast<double>(x), rate0 = kRateShape / kRateMean;
    const double shape = kRateShape + n, rate = rate0 + w_obs;
    double p_alive = 1;
    if (x > 0) {
      // Alive: no dropout after any of the x sessions and no session since; dead: dropped out
      // right after the last one. The Gamma normaliser and the purchase terms are common.
      double log_alive = -shape * std::log(rate) + LogBeta(kDropA, kDropB + n);
      double log_dead = -shape * std::log(rate0 + w_last) + LogBeta(kDropA + 1, kDropB + n - 1);
      p_alive = 1 / (1 + std::exp(log_dead - log_alive));
    }
    // Given alive, the posteriors are independent: rate ~ Gamma(shape, rate), dropout ~
    // Beta(kDropA, kDropB + x), purchase ~ Beta(kBuyA + k, kBuyB + x - k). The no-session term
    // exp(-rate * H * (1 - r)) has a closed-form expectation over the rate.
    BetaRule drop(gl_, kDropA, kDropB + n);
    BetaRule buy(gl_, kBuyA + static_cast<double>(k), kBuyB + n - static_cast<double>(k));
    double e = 0;
    for (size_t i = 0; i < buy.x.size(); ++i) {
      double inner = 0;
      for (size_t j = 0; j < drop.x.size(); ++j) {
        double q = 1 - buy.x[i], r = q * (1 - drop.x[j]);
        double f_star = q * drop.x[j] / (1 - r);
        double none =
            f_star + (1 - f_star) * std::pow(rate / (rate + horizon_weight_ * (1 - r)), shape);
        inner += drop.w[j] * (1 - none);
      }
      e += buy.w[i] * inner;
    }
    return p_alive * e;
  }

  Traits DrawTraits(Rng& r) const {
    Traits t;
    t.session_rate = kRateMean * r.Gamma(kRateShape) / kRateShape;  // heavy tail
    t.purchase_prob = r.Beta(kBuyA, kBuyB);
    t.dropout_prob = r.Beta(kDropA, kDropB);
    t.log_amount_mu = std::log(35.0) + 0.6 * r.Normal();
    t.email_rate = 0.03 * r.Gamma(1.0);
    double a = r.Gamma(1.0), b = r.Gamma(1.0), s = r.Gamma(0.3);
    double sum = a + b + s;
    t.channel_w[0] = a / sum;
    t.channel_w[1] = b / sum;
    t.channel_w[2] = s / sum;
    return t;
  }

  // Simulates sessions from `from_us` to `to_us` while alive; appends events when `out` is set.
  // Returns whether the customer is still alive and sets *purchased.
  bool Sessions(Rng& r, const Traits& t, int64_t from_us, int64_t to_us, std::vector<Event>* out,
                bool* purchased) const {
    *purchased = false;
    double max_rate = t.session_rate * kWeeklyMax;  // per day
    double now_day = static_cast<double>(from_us) / kMicrosPerDay;
    const double end_day = static_cast<double>(to_us) / kMicrosPerDay;
    for (;;) {
      now_day += r.Exponential(max_rate);
      if (now_day >= end_day) return true;
      int64_t day = static_cast<int64_t>(std::floor(now_day));
      if (!r.Bernoulli(kWeekly[DayOfWeek(day)] / kWeeklyMax)) continue;  // thinning
      int64_t ts = static_cast<int64_t>(now_day * kMicrosPerDay);
      int ch = r.Pick(t.channel_w, 3);
      int channel = ch == 2 ? 3 : ch;  // web, app, store
      bool buys = r.Bernoulli(t.purchase_prob);
      if (out) {
        out->push_back({ts, kSession, channel, NAN, -1});
        int64_t views = 1 + static_cast<int64_t>(r.Exponential(1.0 / 1.6));
        int64_t offset = 0;
        for (int64_t v = 0; v < views; ++v) {
          offset += 5000000 + static_cast<int64_t>(r.Exponential(1.0 / 40e6));
          out->push_back(
              {ts + offset, kPageView, channel, NAN, static_cast<int64_t>(r.Next() % 5000)});
        }
        if (buys || r.Bernoulli(0.15)) {
          offset += 10000000;
          out->push_back({ts + offset, kAddToCart, channel, NAN, -1});
        }
        if (buys) {
          offset += 30000000;
          double amount = std::exp(t.log_amount_mu + 0.5 * r.Normal());
          amount = std::round(amount * 100) / 100 + 0.01;
          out->push_back({ts + offset, kPurchase, channel, amount,
                          1 + static_cast<int64_t>(r.Exponential(1.0 / 1.5))});
        }
        if (r.Bernoulli(0.01)) {
          out->push_back({ts + offset + 60000000, kSupport, channel == 3 ? 0 : channel, NAN, -1});
        }
      }
      if (buys) *purchased = true;
      if (r.Bernoulli(t.dropout_prob)) return false;
    }
  }

  void EmailOpens(Rng& r, const Traits& t, int64_t from_us, int64_t to_us,
                  std::vector<Event>* out) const {
    double day = static_cast<double>(from_us) / kMicrosPerDay;
    const double end = static_cast<double>(to_us) / kMicrosPerDay;
    for (;;) {
      day += r.Exponential(t.email_rate);
      if (day >= end) return;
      out->push_back({static_cast<int64_t>(day * kMicrosPerDay), kEmailOpen, 2, NAN, -1});
    }
  }

  const GenOptions& opts_;
  int64_t start_day_;
  double horizon_weight_;
  std::vector<double> exposure_;  // exposure_[d]: weighted days before window day d
  GaussLegendre gl_;
};

Status Exec(DuckConn& c, const std::string& sql) {
  auto s = c.Exec(sql);
  if (!s.ok()) return s.WithContext("generator");
  return Status::Ok();
}

std::string CopyOptions(OutputFormat f) {
  switch (f) {
    case OutputFormat::kParquet:
      return "FORMAT parquet, COMPRESSION zstd";
    case OutputFormat::kCsv:
      return "FORMAT csv, HEADER true";
    case OutputFormat::kJsonl:
      return "FORMAT json";
  }
  return "FORMAT parquet";
}

std::string Extension(OutputFormat f) {
  switch (f) {
    case OutputFormat::kParquet:
      return "parquet";
    case OutputFormat::kCsv:
      return "csv";
    case OutputFormat::kJsonl:
      return "jsonl";
  }
  return "parquet";
}

}  // namespace

Result<OutputFormat> ParseOutputFormat(const std::string& s) {
  if (s == "parquet") return OutputFormat::kParquet;
  if (s == "csv") return OutputFormat::kCsv;
  if (s == "jsonl" || s == "json") return OutputFormat::kJsonl;
  return InvalidArgumentError(
      fmt::format("unknown format '{}' (expected parquet, csv or jsonl)", s));
}

Result<int64_t> ParseEndDay(const std::string& end, int64_t now_micros) {
  if (end.empty()) return now_micros / (86400LL * 1000000);
  int64_t day = 0;
  if (!ParseDate(end, &day)) {
    return InvalidArgumentError(fmt::format("--end '{}' is not a date (YYYY-MM-DD)", end));
  }
  return day;
}

Json GenReport::ToJson() const {
  return Json{{"customers", customers},
              {"events", events},
              {"purchases", purchases},
              {"alive_at_end", alive_at_end},
              {"mean_p_engage", mean_p_engage},
              {"oracle_auc", oracle_auc},
              {"bayes_auc", bayes_auc},
              {"files", files},
              {"bytes", bytes},
              {"elapsed_s", elapsed_s},
              {"out_dir", out_dir},
              {"first_day", first_day},
              {"last_day", last_day}};
}

Result<GenReport> Generate(const GenOptions& opts, const std::function<void(int64_t)>& progress) {
  namespace fs = std::filesystem;
  if (opts.customers < 1) return InvalidArgumentError("--customers must be at least 1");
  if (opts.days < 1 || opts.days > 36500) {
    return InvalidArgumentError("--days must be between 1 and 36500");
  }
  if (opts.customers_per_batch < 1) return InvalidArgumentError("batch size must be at least 1");
  auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::path out = fs::absolute(opts.out_dir, ec);
  if (fs::exists(out / "events")) {
    return AlreadyExistsError(fmt::format(
        "'{}' already holds generated data; remove it or choose another --out", out.string()));
  }
  fs::create_directories(out / "events", ec);
  if (ec) {
    return PermissionDeniedError(
        fmt::format("cannot create '{}': {}", (out / "events").string(), ec.message()));
  }
  std::string ext = Extension(opts.format);

  // The customers and truth tables grow with N; a memory limit makes DuckDB spill them to
  // <out>/.tmp instead of holding them in RAM, so any customer count fits.
  ENGAGE_ASSIGN_OR_RETURN(DuckDb db, DuckDb::Open({.threads = opts.threads,
                                                   .memory_limit = opts.memory_limit,
                                                   .temp_directory = (out / ".tmp").string()}));
  ENGAGE_ASSIGN_OR_RETURN(DuckConn conn, db.Connect());
  ENGAGE_RETURN_IF_ERROR(Exec(conn, "SET TimeZone='UTC'"));
  ENGAGE_RETURN_IF_ERROR(Exec(conn,
                              "CREATE TABLE customers (customer_id BIGINT, signup_time TIMESTAMP, "
                              "country VARCHAR, acquisition_channel VARCHAR, plan VARCHAR, age "
                              "BIGINT)"));
  ENGAGE_RETURN_IF_ERROR(Exec(conn,
                              "CREATE TABLE truth (customer_id BIGINT, p_engage_30d DOUBLE, "
                              "engaged_next_30d BOOLEAN, alive_at_end BOOLEAN, session_rate "
                              "DOUBLE, purchase_prob DOUBLE, dropout_prob DOUBLE, mean_amount "
                              "DOUBLE, p_engage_bayes DOUBLE)"));
  const std::string events_schema =
      "(event_id BIGINT, customer_id BIGINT, event_time TIMESTAMP, event_type VARCHAR, channel "
      "VARCHAR, amount DOUBLE, properties VARCHAR)";

  Simulator sim(opts);
  GenReport report;
  report.out_dir = out.string();
  report.first_day = FormatDate(sim.start_day_);
  report.last_day = FormatDate(opts.end_day - 1);
  AucHistogram auc, bayes_auc;
  double p_sum = 0;
  const int64_t start_us = sim.start_day_ * kMicrosPerDay;
  const int64_t end_us = opts.end_day * kMicrosPerDay;
  const int64_t horizon_us = end_us + int64_t{kHorizonDays} * kMicrosPerDay;
  std::vector<Event> events;
  char buf[64];
  int64_t part = 0;

  for (int64_t first = 0; first < opts.customers; first += opts.customers_per_batch) {
    int64_t last = std::min(opts.customers, first + opts.customers_per_batch);
    ENGAGE_RETURN_IF_ERROR(Exec(conn, "CREATE OR REPLACE TABLE batch_events " + events_schema));
    {
      ChunkWriter ev(
          conn, "batch_events",
          {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_TIMESTAMP, DUCKDB_TYPE_VARCHAR,
           DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_VARCHAR});
      ChunkWriter cu(conn, "customers",
                     {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_TIMESTAMP, DUCKDB_TYPE_VARCHAR,
                      DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_BIGINT});
      ChunkWriter tr(conn, "truth",
                     {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_BOOLEAN,
                      DUCKDB_TYPE_BOOLEAN, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_DOUBLE,
                      DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_DOUBLE, DUCKDB_TYPE_DOUBLE});
      for (int64_t id = first; id < last; ++id) {
        Rng r(Mix(opts.seed, static_cast<uint64_t>(id)));
        Traits t = sim.DrawTraits(r);
        // Signups spread over the window (a quarter of customers predate it).
        int64_t signup_us =
            r.Bernoulli(0.25) ? start_us - static_cast<int64_t>(r.Uniform() * 365 * kMicrosPerDay)
                              : start_us + static_cast<int64_t>(r.Uniform() * (end_us - start_us));
        events.clear();
        bool purchased = false;
        bool alive = sim.Sessions(r, t, std::max(signup_us, start_us), end_us, &events, &purchased);
        sim.EmailOpens(r, t, std::max(signup_us, start_us), end_us, &events);
        // Truth for the 30 days after the window, and the simulated outcome.
        double p = alive ? PurchaseProbability(t.session_rate * sim.horizon_weight_,
                                               t.purchase_prob, t.dropout_prob)
                         : 0.0;
        bool engaged = false;
        if (alive) sim.Sessions(r, t, end_us, horizon_us, nullptr, &engaged);
        auc.Add(p, engaged);
        int64_t sessions = 0, buys = 0, last_session_us = 0;
        for (const Event& e : events) {
          if (e.type == kSession) {
            ++sessions;
            last_session_us = std::max(last_session_us, e.time_us);
          }
          buys += e.type == kPurchase ? 1 : 0;
        }
        const double seen_from = sim.Exposure(std::max(signup_us, start_us));
        double bayes =
            sim.BayesProbability(sessions, buys, sim.Exposure(end_us) - seen_from,
                                 sessions > 0 ? sim.Exposure(last_session_us) - seen_from : 0);
        bayes_auc.Add(bayes, engaged);
        p_sum += p;
        report.alive_at_end += alive ? 1 : 0;

        int64_t k = 0;
        for (const Event& e : events) {
          if (k >= 65535) break;
          ev.Set<int64_t>(0, (id << 16) | k++);
          ev.Set<int64_t>(1, id);
          ev.Set<int64_t>(2, e.time_us);
          const char* name = kEventNames[e.type];
          ev.SetString(3, name, std::strlen(name));
          const char* ch = kChannels[e.channel];
          ev.SetString(4, ch, std::strlen(ch));
          if (std::isnan(e.amount)) {
            ev.SetNull(5);
          } else {
            ev.Set<double>(5, e.amount);
            ++report.purchases;
          }
          if (e.prop < 0) {
            ev.SetNull(6);
          } else {
            int n = e.type == kPageView ? std::snprintf(buf, sizeof buf, "{\"page\":\"/p/%ld\"}",
                                                        static_cast<long>(e.prop))
                                        : std::snprintf(buf, sizeof buf, "{\"items\":%ld}",
                                                        static_cast<long>(e.prop));
            ev.SetString(6, buf, static_cast<size_t>(n));
          }
          ENGAGE_RETURN_IF_ERROR(ev.Commit());
        }
        report.events += k;

        cu.Set<int64_t>(0, id);
        cu.Set<int64_t>(1, signup_us);
        const char* country = kCountries[r.Pick(kCountryWeights, 10)];
        cu.SetString(2, country, std::strlen(country));
        int acq = r.Pick(t.channel_w, 3);
        const char* acq_name = kChannels[acq == 2 ? 3 : acq];
        cu.SetString(3, acq_name, std::strlen(acq_name));
        const char* plan = kPlans[std::min<int>(2, static_cast<int>(t.purchase_prob * 10))];
        cu.SetString(4, plan, std::strlen(plan));
        cu.Set<int64_t>(5, std::clamp<int64_t>(static_cast<int64_t>(38 + 13 * r.Normal()), 16, 90));
        ENGAGE_RETURN_IF_ERROR(cu.Commit());

        tr.Set<int64_t>(0, id);
        tr.Set<double>(1, p);
        tr.Set<bool>(2, engaged);
        tr.Set<bool>(3, alive);
        tr.Set<double>(4, t.session_rate);
        tr.Set<double>(5, t.purchase_prob);
        tr.Set<double>(6, t.dropout_prob);
        tr.Set<double>(7, std::exp(t.log_amount_mu + 0.125));
        tr.Set<double>(8, bayes);
        ENGAGE_RETURN_IF_ERROR(tr.Commit());
      }
      ENGAGE_RETURN_IF_ERROR(ev.Close());
      ENGAGE_RETURN_IF_ERROR(cu.Close());
      ENGAGE_RETURN_IF_ERROR(tr.Close());
    }
    std::string file = (out / "events" / fmt::format("part-{:05d}.{}", part++, ext)).string();
    ENGAGE_RETURN_IF_ERROR(Exec(conn, fmt::format("COPY batch_events TO {} ({})", SqlQuote(file),
                                                  CopyOptions(opts.format))));
    if (progress) progress(last);
  }
  ENGAGE_RETURN_IF_ERROR(Exec(conn, "DROP TABLE IF EXISTS batch_events"));
  ENGAGE_RETURN_IF_ERROR(Exec(conn, fmt::format("COPY customers TO {} ({})",
                                                SqlQuote((out / ("customers." + ext)).string()),
                                                CopyOptions(opts.format))));
  ENGAGE_RETURN_IF_ERROR(
      Exec(conn, fmt::format("COPY truth TO {} (FORMAT parquet, COMPRESSION zstd)",
                             SqlQuote((out / "truth.parquet").string()))));
  fs::remove_all(out / ".tmp", ec);

  report.customers = opts.customers;
  report.mean_p_engage = p_sum / static_cast<double>(opts.customers);
  report.oracle_auc = auc.Auc();
  report.bayes_auc = bayes_auc.Auc();
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.is_regular_file()) {
      ++report.files;
      report.bytes += static_cast<int64_t>(e.file_size());
    }
  }
  report.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

std::string GenReport::ToText() const {
  return fmt::format(
      "generated {} customers, {} events ({} purchases) for {} .. {} in {:.1f} s ({:.2f}M "
      "events/s)\n  output: {} ({} files, {})\n  alive at end: {}, mean true P(purchase in next "
      "30 days): {:.3f}, oracle AUC: {:.3f} (knows the hidden state), best AUC from the events: "
      "{:.3f}\n",
      customers, events, purchases, first_day, last_day, elapsed_s,
      elapsed_s > 0 ? static_cast<double>(events) / elapsed_s / 1e6 : 0.0, out_dir, files,
      HumanBytes(bytes), alive_at_end, mean_p_engage, oracle_auc, bayes_auc);
}

}  // namespace engage::gen
