#include "engage/gen/generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engage/lake/duck.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  gen::GenOptions Options(const std::string& name, int64_t customers = 2000) {
    gen::GenOptions o;
    o.customers = customers;
    o.days = 120;
    o.seed = 11;
    o.out_dir = dir_.path() + "/" + name;
    o.customers_per_batch = 700;  // several batches
    o.threads = 1;
    return o;
  }

  std::string Scalar(const std::string& sql) {
    auto db = lake::DuckDb::Open({});
    auto conn = db->Connect();
    EXPECT_OK(conn->Exec("SET TimeZone='UTC'"));
    auto r = conn->Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->RowCount() == 0) return "";
    return r->Str(0, 0).value_or("NULL");
  }

  TempDir dir_;
};

TEST_F(GeneratorTest, SameSeedSameDataOtherSeedOtherData) {
  auto a = gen::Generate(Options("a"));
  ASSERT_OK(a);
  gen::GenOptions ob = Options("b");
  ob.customers_per_batch = 2000;  // batching must not change the values
  auto b = gen::Generate(ob);
  ASSERT_OK(b);
  gen::GenOptions oc = Options("c");
  oc.seed = 12;
  auto c = gen::Generate(oc);
  ASSERT_OK(c);
  EXPECT_EQ(a->events, b->events);
  auto checksum = [&](const std::string& d) {
    return Scalar(
        "SELECT sum(hash(event_id, customer_id, event_time, event_type, channel, "
        "amount, properties)) FROM '" +
        d + "/events/*.parquet'");
  };
  EXPECT_EQ(checksum(a->out_dir), checksum(b->out_dir));
  EXPECT_NE(checksum(a->out_dir), checksum(c->out_dir));
  EXPECT_EQ(
      Scalar("SELECT sum(hash(customer_id, p_engage_30d, engaged_next_30d, alive_at_end)) FROM '" +
             a->out_dir + "/truth.parquet'"),
      Scalar("SELECT sum(hash(customer_id, p_engage_30d, engaged_next_30d, alive_at_end)) FROM '" +
             b->out_dir + "/truth.parquet'"));
}

TEST_F(GeneratorTest, EventsCoverEveryTypeAndChannelInsideTheWindow) {
  auto r = gen::Generate(Options("w"));
  ASSERT_OK(r);
  std::string ev = r->out_dir + "/events/*.parquet";
  EXPECT_EQ(Scalar("SELECT count(DISTINCT event_type) FROM '" + ev + "'"), "6");
  EXPECT_EQ(Scalar("SELECT count(DISTINCT channel) FROM '" + ev + "'"), "4");
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + ev + "'"), std::to_string(r->events));
  EXPECT_EQ(Scalar("SELECT count(*) = count(DISTINCT event_id) FROM '" + ev + "'"), "true");
  EXPECT_EQ(Scalar("SELECT min(event_time)::DATE >= DATE '" + r->first_day +
                   "' AND max(event_time)::DATE <= DATE '" + r->last_day + "' FROM '" + ev + "'"),
            "true");
  // Nobody acts before signing up.
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + ev + "' e JOIN '" + r->out_dir +
                   "/customers.parquet' c USING (customer_id) WHERE e.event_time < "
                   "c.signup_time"),
            "0");
  // Amounts exactly on purchases, all positive.
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + ev +
                   "' WHERE (amount IS NOT NULL) <> (event_type = 'purchase') OR amount <= 0"),
            "0");
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + ev + "' WHERE event_type = 'purchase'"),
            std::to_string(r->purchases));
  // Weekly seasonality: Saturdays busier than Mondays.
  EXPECT_EQ(Scalar("SELECT sum(CASE WHEN isodow(event_time) = 6 THEN 1 ELSE 0 END) > "
                   "sum(CASE WHEN isodow(event_time) = 1 THEN 1 ELSE 0 END) FROM '" +
                   ev + "'"),
            "true");
}

TEST_F(GeneratorTest, TruthIsAConsistentOracle) {
  auto r = gen::Generate(Options("t", 20000));
  ASSERT_OK(r);
  std::string t = r->out_dir + "/truth.parquet";
  EXPECT_EQ(Scalar("SELECT count(*), count(DISTINCT customer_id) FROM '" + t + "'"), "20000");
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + t +
                   "' WHERE p_engage_30d < 0 OR p_engage_30d > 1 OR (NOT alive_at_end AND "
                   "(p_engage_30d <> 0 OR engaged_next_30d))"),
            "0");
  // Some customers churned silently, and not all.
  EXPECT_GT(r->alive_at_end, 2000);
  EXPECT_LT(r->alive_at_end, 18000);
  // The simulated outcome agrees with the probabilities: mean rate within 4 standard errors.
  double mean_p = std::stod(Scalar("SELECT avg(p_engage_30d) FROM '" + t + "'"));
  double rate = std::stod(Scalar("SELECT avg(engaged_next_30d::INT) FROM '" + t + "'"));
  double se = std::sqrt(mean_p * (1 - mean_p) / 20000);
  EXPECT_NEAR(rate, mean_p, 4 * se);
  EXPECT_NEAR(r->mean_p_engage, mean_p, 1e-9);
  EXPECT_GT(r->oracle_auc, 0.75);
  EXPECT_LT(r->oracle_auc, 1.0);
}

TEST_F(GeneratorTest, BayesProbabilityIsCalibratedAndBelowTheOracle) {
  auto r = gen::Generate(Options("b", 20000));
  ASSERT_OK(r);
  std::string t = r->out_dir + "/truth.parquet";
  EXPECT_EQ(Scalar("SELECT count(*) FROM '" + t +
                   "' WHERE p_engage_bayes IS NULL OR p_engage_bayes <= 0 OR p_engage_bayes >= 1"),
            "0");
  // A posterior is calibrated: its mean matches the true probabilities' mean and the simulated
  // rate (within 4 standard errors), in the low and high halves alike.
  double mean_p = std::stod(Scalar("SELECT avg(p_engage_30d) FROM '" + t + "'"));
  double mean_bayes = std::stod(Scalar("SELECT avg(p_engage_bayes) FROM '" + t + "'"));
  EXPECT_NEAR(mean_bayes, mean_p, 4 * std::sqrt(mean_p * (1 - mean_p) / 20000));
  for (const char* half : {"p_engage_bayes < 0.1", "p_engage_bayes >= 0.1"}) {
    std::string where = std::string(" WHERE ") + half;
    double n = std::stod(Scalar("SELECT count(*) FROM '" + t + "'" + where));
    double pred = std::stod(Scalar("SELECT avg(p_engage_bayes) FROM '" + t + "'" + where));
    double rate = std::stod(Scalar("SELECT avg(engaged_next_30d::INT) FROM '" + t + "'" + where));
    EXPECT_NEAR(rate, pred, 4 * std::sqrt(pred * (1 - pred) / n)) << half;
  }
  // Not knowing who has silently dropped out costs ranking power: the oracle ranks better, and
  // the events still carry most of the signal.
  EXPECT_LT(r->bayes_auc, r->oracle_auc);
  EXPECT_GT(r->bayes_auc, 0.8);
}

TEST_F(GeneratorTest, CsvAndJsonlAreReadable) {
  for (auto [name, fmt] :
       {std::pair{"csv", gen::OutputFormat::kCsv}, std::pair{"jsonl", gen::OutputFormat::kJsonl}}) {
    gen::GenOptions o = Options(name, 300);
    o.format = fmt;
    auto r = gen::Generate(o);
    ASSERT_OK(r);
    std::string reader = fmt == gen::OutputFormat::kCsv ? "read_csv" : "read_json";
    EXPECT_EQ(
        Scalar("SELECT count(*) FROM " + reader + "('" + r->out_dir + "/events/*." + name + "')"),
        std::to_string(r->events));
    EXPECT_TRUE(std::filesystem::exists(r->out_dir + "/customers." + name));
  }
}

TEST_F(GeneratorTest, RefusesExistingOutputAndBadOptions) {
  ASSERT_OK(gen::Generate(Options("x", 50)));
  EXPECT_STATUS_CODE(gen::Generate(Options("x", 50)), StatusCode::kAlreadyExists);
  gen::GenOptions o = Options("y", 0);
  EXPECT_STATUS_CODE(gen::Generate(o), StatusCode::kInvalidArgument);
  o = Options("z", 10);
  o.days = 0;
  EXPECT_STATUS_CODE(gen::Generate(o), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(gen::ParseOutputFormat("xml"), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace engage::testing
