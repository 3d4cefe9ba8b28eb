#include "engage/core/config.h"

#include <gtest/gtest.h>

#include <cmath>

#include "testing/temp_dir.h"

namespace engage {
namespace {

const char kMinimal[] = R"toml(
[tables.t]
time_column = "ts"
[[tables.t.columns]]
name = "ts"
type = "timestamp"
)toml";

Status ParseWith(const std::string& extra) {
  return Config::Parse(std::string(kMinimal) + extra, "test.toml").status();
}

TEST(ConfigTest, DefaultConfigDefinesEventsAndCustomers) {
  auto c = Config::Parse(DefaultConfigToml(), "default");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->Table("events").ok());
  EXPECT_EQ((*c->Table("events"))->time_column, "event_time");
  EXPECT_EQ((*c->Table("customers"))->primary_key, std::vector<std::string>{"customer_id"});
  EXPECT_EQ(c->prices.scan_usd_per_tb, 5.0);
  EXPECT_EQ(c->prices.min_bytes_per_query, 10000000);
}

TEST(ConfigTest, MistakesAreRejectedNamingTheirPlace) {
  struct Case {
    std::string toml, expect;
  } cases[] = {
      {"\n[bogus]\nx = 1\n", "unknown key 'bogus'"},
      {"\n[[tables.t.columns]]\nname = \"a\"\ncolour = \"red\"\n", "unknown key 'colour'"},
      {"\n[[tables.t.columns]]\nname = \"a\"\ntype = \"decimal\"\n", "unknown type 'decimal'"},
      {"\n[[tables.t.columns]]\nname = \"ts\"\n", "defined twice"},
      {"\n[[tables.t.columns]]\nname = \"dt\"\n", "reserved partition column"},
      {"\n[[tables.t.columns]]\nname = \"Bad Name\"\n", "not a valid identifier"},
      {"\n[tables.t.csv]\ndelimiter = \";;\"\n", "delimiter"},
  };
  for (const auto& c : cases) {
    Status s = ParseWith(c.toml);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.toml;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
  }
  Status tc = Config::Parse("[tables.t]\ntime_column = \"x\"\n[[tables.t.columns]]\nname = \"x\"\n",
                            "f.toml")
                  .status();
  EXPECT_NE(tc.message().find("table 't'"), std::string::npos) << tc.message();
}

TEST(ConfigTest, SyntaxErrorsReportTheLine) {
  Status s = Config::Parse("[prices]\nscan_usd_per_tb = = 5\n", "bad.toml").status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bad.toml:2"), std::string::npos) << s.message();
}

TEST(ConfigTest, UnknownTableListsTheKnownOnes) {
  auto c = Config::Parse(DefaultConfigToml(), "default");
  auto t = c->Table("clicks");
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("customers, events"), std::string::npos);
}

TEST(ConfigTest, CostIsPricedLikeAthena) {
  Prices p;
  double min_cost = 10.0 * 1000 * 1000 / std::pow(2.0, 40) * 5;
  EXPECT_DOUBLE_EQ(CostUsd(p, 0), min_cost);
  EXPECT_DOUBLE_EQ(CostUsd(p, 1000), min_cost);
  EXPECT_DOUBLE_EQ(CostUsd(p, int64_t{1} << 40),
                   5.0 * std::ceil(std::pow(2.0, 40) / 1e6) * 1e6 / std::pow(2.0, 40));
  EXPECT_GT(CostUsd(p, 20000001), CostUsd(p, 20000000));  // rounded up to the next MB
}

}  // namespace
}  // namespace engage
