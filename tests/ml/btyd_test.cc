#include "engage/ml/btyd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "testing/temp_dir.h"

namespace engage::ml {
namespace {

// The CDNOW sample's calibration summaries (first 39 weeks, one transaction per customer-day):
// ID,x,t_x,T,zbar (../shared/data/cdnow). Empty when the data set is not on this machine.
std::vector<CustomerSummary> CdnowSummaries() {
  std::ifstream in(testing::SharedDataDir() +
                   "/cdnow/cdnow_customers_summary_with_transactions.csv");
  std::vector<CustomerSummary> out;
  std::string line;
  if (!std::getline(in, line)) return out;  // header
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::stringstream s(line);
    std::string id, x, tx, T, zbar;
    std::getline(s, id, ',');
    std::getline(s, x, ',');
    std::getline(s, tx, ',');
    std::getline(s, T, ',');
    std::getline(s, zbar, ',');
    out.push_back(CustomerSummary{id, std::stod(x), std::stod(tx), std::stod(T), std::stod(zbar)});
  }
  return out;
}

#define REQUIRE_CDNOW(data)                                              \
  if ((data).empty()) GTEST_SKIP() << "../shared/data/cdnow is missing"; \
  ASSERT_EQ((data).size(), 2357u)

// Fader, Hardie & Lee (2005), table 1: r = 0.243, α = 4.414, a = 0.793, b = 2.426,
// LL = -9582.4, on the CDNOW sample in weeks.
TEST(BgNbdTest, ReproducesThePublishedCdnowEstimates) {
  auto data = CdnowSummaries();
  REQUIRE_CDNOW(data);
  auto fit = FitBgNbd(data);
  ASSERT_TRUE(fit.ok()) << fit.status().ToString();
  EXPECT_NEAR(fit->params.r, 0.243, 0.0005);
  EXPECT_NEAR(fit->params.alpha, 4.414, 0.0005);
  EXPECT_NEAR(fit->params.a, 0.793, 0.0005);
  EXPECT_NEAR(fit->params.b, 2.426, 0.0005);
  EXPECT_NEAR(fit->report.log_likelihood, -9582.4, 0.05);
  EXPECT_EQ(fit->report.customers, 2357);
  // It is a maximum: moving any parameter by 1% lowers the likelihood.
  for (int i = 0; i < 4; ++i) {
    for (double f : {0.99, 1.01}) {
      BgNbdParams p = fit->params;
      double* v[] = {&p.r, &p.alpha, &p.a, &p.b};
      *v[i] *= f;
      EXPECT_LT(BgNbdLogLikelihood(p, data), fit->report.log_likelihood);
    }
  }
}

// Fader & Hardie (2013), the Gamma-Gamma note: p = 6.25, q = 3.74, γ = 15.44, LL = -4055.92 on
// the 946 CDNOW sample customers with repeat purchases. The maximum found here (p = 6.2488,
// q = 3.7446, γ = 15.4477) has a slightly higher likelihood than the rounded published point
// (-4055.9232 vs -4055.9247): the likelihood is flat along a ridge, so γ gets 0.01.
TEST(GammaGammaTest, ReproducesThePublishedCdnowEstimates) {
  auto data = CdnowSummaries();
  REQUIRE_CDNOW(data);
  auto fit = FitGammaGamma(data);
  ASSERT_TRUE(fit.ok()) << fit.status().ToString();
  EXPECT_NEAR(fit->params.p, 6.25, 0.005);
  EXPECT_NEAR(fit->params.q, 3.74, 0.005);
  EXPECT_NEAR(fit->params.gamma, 15.44, 0.01);
  EXPECT_NEAR(fit->report.log_likelihood, -4055.92, 0.01);
  EXPECT_GE(fit->report.log_likelihood, GammaGammaLogLikelihood({6.25, 3.74, 15.44}, data));
  EXPECT_EQ(fit->report.customers, 946);
  EXPECT_EQ(fit->report.excluded, 2357 - 946);
  for (int i = 0; i < 3; ++i) {
    for (double f : {0.99, 1.01}) {
      GammaGammaParams g = fit->params;
      double* v[] = {&g.p, &g.q, &g.gamma};
      *v[i] *= f;
      EXPECT_LT(GammaGammaLogLikelihood(g, data), fit->report.log_likelihood);
    }
  }
}

// FHL (2005): with the published parameters, a new customer is expected to make 1.6 repeat
// purchases... checked here against the closed form's own properties: it starts at 0, grows,
// and a customer with no repeat purchase is alive with probability 1.
BgNbdParams Published() { return BgNbdParams{0.243, 4.414, 0.793, 2.426}; }

TEST(BgNbdTest, ProbabilityAliveFollowsTheClosedForm) {
  BgNbdParams p = Published();
  EXPECT_DOUBLE_EQ(ProbabilityAlive(p, CustomerSummary{"a", 0, 0, 30, 0}), 1.0);
  // x = 2, t_x = 30.43, T = 38.86 (the sample's first customer), by hand:
  // 1 / (1 + a/(b+x-1) * ((α+T)/(α+t_x))^(r+x)).
  double odds = 0.793 / (2.426 + 1) * std::pow((4.414 + 38.86) / (4.414 + 30.43), 0.243 + 2);
  EXPECT_NEAR(ProbabilityAlive(p, CustomerSummary{"1", 2, 30.43, 38.86, 0}), 1 / (1 + odds), 1e-12);
  // A customer whose last purchase was long ago is less likely alive than a recent one.
  EXPECT_LT(ProbabilityAlive(p, CustomerSummary{"old", 5, 5, 38, 0}),
            ProbabilityAlive(p, CustomerSummary{"new", 5, 37, 38, 0}));
}

TEST(BgNbdTest, ExpectedTransactionsGrowWithTheHorizon) {
  BgNbdParams p = Published();
  CustomerSummary c{"c", 3, 30, 38, 0};
  EXPECT_EQ(ExpectedTransactions(p, c, 0), 0);
  double prev = 0;
  for (double t : {1.0, 10.0, 39.0, 78.0, 520.0}) {
    double e = ExpectedTransactions(p, c, t);
    EXPECT_GT(e, prev) << t;
    prev = e;
  }
  // A dead-looking customer expects fewer transactions than an active one with the same x.
  EXPECT_LT(ExpectedTransactions(p, CustomerSummary{"old", 3, 5, 38, 0}, 39),
            ExpectedTransactions(p, CustomerSummary{"new", 3, 37, 38, 0}, 39));
  // The population curve: FHL (2005), figure 1 reaches about 1.5 repeat transactions per
  // customer after 78 weeks for a customer acquired at time 0... bounded by the plain Poisson
  // rate r/α·t of a customer who never drops out.
  double e78 = ExpectedTransactionsNew(p, 78);
  EXPECT_GT(e78, 0.5);
  EXPECT_LT(e78, 0.243 / 4.414 * 78);
}

TEST(BgNbdTest, ConditionalExpectationMatchesNumericalIntegrationForANewCustomer) {
  // For x = 0, t_x = 0, T = 0 the conditional expectation is the unconditional one.
  BgNbdParams p = Published();
  CustomerSummary fresh{"f", 0, 0, 0, 0};
  for (double t : {5.0, 39.0, 100.0}) {
    EXPECT_NEAR(ExpectedTransactions(p, fresh, t), ExpectedTransactionsNew(p, t), 1e-9) << t;
  }
}

TEST(Hyp2F1Test, MatchesClosedForms) {
  // 2F1(1, 1; 2; z) = -ln(1 - z) / z; 2F1(a, b; b; z) = (1 - z)^-a.
  for (double z : {0.0, 0.1, 0.5, 0.9, 0.99}) {
    double expected = z == 0 ? 1.0 : -std::log(1 - z) / z;
    EXPECT_NEAR(Hyp2F1(1, 1, 2, z), expected, 1e-9 * expected) << z;
    EXPECT_NEAR(Hyp2F1(2.5, 3, 3, z), std::pow(1 - z, -2.5), 1e-9 * std::pow(1 - z, -2.5)) << z;
  }
}

TEST(GammaGammaTest, ExpectedSpendShrinksTowardsThePopulationMean) {
  GammaGammaParams g{6.25, 3.74, 15.44};
  double population = 6.25 * 15.44 / (3.74 - 1);
  EXPECT_NEAR(ExpectedSpend(g, CustomerSummary{"none", 0, 0, 30, 0}), population, 1e-12);
  // One purchase of $100 moves the estimate only part of the way from the mean to $100.
  double one = ExpectedSpend(g, CustomerSummary{"one", 1, 10, 30, 100});
  EXPECT_GT(one, population);
  EXPECT_LT(one, 100);
  // Many purchases of $100 pull it close to $100.
  double many = ExpectedSpend(g, CustomerSummary{"many", 50, 29, 30, 100});
  EXPECT_GT(many, one);
  EXPECT_NEAR(many, 100, 3);
}

TEST(ClvTest, DiscountingLowersValueAndALongerHorizonRaisesIt) {
  BgNbdParams p = Published();
  GammaGammaParams g{6.25, 3.74, 15.44};
  CustomerSummary c{"c", 4, 35, 38, 40};
  ClvOptions o;
  double base = CustomerLifetimeValue(p, g, c, o);
  EXPECT_GT(base, 0);
  ClvOptions no_discount = o;
  no_discount.discount_rate = 0;
  double undiscounted = CustomerLifetimeValue(p, g, c, no_discount);
  EXPECT_GT(undiscounted, base);
  // Without discounting, CLV is expected transactions over the horizon times expected spend.
  EXPECT_NEAR(undiscounted,
              ExpectedTransactions(p, c, o.period_length * o.periods) * ExpectedSpend(g, c), 1e-9);
  ClvOptions longer = o;
  longer.periods = 24;
  EXPECT_GT(CustomerLifetimeValue(p, g, c, longer), base);
}

TEST(BtydFitTest, BadSummariesAreRejectedNamingTheCustomer) {
  EXPECT_EQ(FitBgNbd({}).status().code(), StatusCode::kInvalidArgument);
  auto late = FitBgNbd({CustomerSummary{"c-7", 1, 40, 30, 5}});
  EXPECT_EQ(late.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(late.status().message().find("c-7"), std::string::npos);
  auto negative = FitBgNbd({CustomerSummary{"c-8", -1, 0, 30, 0}});
  EXPECT_NE(negative.status().message().find("negative"), std::string::npos);
  auto nan = FitBgNbd({CustomerSummary{"c-9", 1, std::nan(""), 30, 0}});
  EXPECT_EQ(nan.status().code(), StatusCode::kInvalidArgument);
  // Gamma-Gamma needs repeat buyers with a positive spend.
  auto gg = FitGammaGamma({CustomerSummary{"a", 0, 0, 30, 0}, CustomerSummary{"b", 2, 3, 30, 0}});
  EXPECT_EQ(gg.status().code(), StatusCode::kInvalidArgument);
}

TEST(BtydFitTest, DuplicatedCustomersGiveTheSameFitAsWeights) {
  auto data = CdnowSummaries();
  REQUIRE_CDNOW(data);
  // Every customer twice: the same parameters, twice the log-likelihood.
  std::vector<CustomerSummary> twice = data;
  twice.insert(twice.end(), data.begin(), data.end());
  auto once_fit = FitBgNbd(data);
  auto twice_fit = FitBgNbd(twice);
  ASSERT_TRUE(once_fit.ok());
  ASSERT_TRUE(twice_fit.ok());
  EXPECT_NEAR(twice_fit->params.r, once_fit->params.r, 1e-4);
  EXPECT_NEAR(twice_fit->params.alpha, once_fit->params.alpha, 1e-3);
  EXPECT_NEAR(twice_fit->report.log_likelihood, 2 * once_fit->report.log_likelihood, 1e-3);
}

}  // namespace
}  // namespace engage::ml
