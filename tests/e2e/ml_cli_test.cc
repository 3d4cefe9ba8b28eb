// End-to-end tests of `engage btyd` and the examples on real data (examples/<name>/run.sh).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

const std::string kData = SharedDataDir();

class BtydCliTest : public ::testing::Test {
 protected:
  void SetUp() override { home_ = dir_.path() + "/home"; }

  CommandResult Engage(std::vector<std::string> args) {
    args.insert(args.begin(), {ENGAGE_BINARY, "--home", home_});
    return RunCommand(args, dir_.path());
  }

  // A home with the CDNOW sample ingested as table `cdnow` (examples/cdnow/engage.toml).
  void IngestCdnow() {
    ASSERT_EQ(Engage({"init"}).exit_code, 0);
    std::filesystem::copy_file(std::string(ENGAGE_SOURCE_DIR) + "/examples/cdnow/engage.toml",
                               home_ + "/engage.toml",
                               std::filesystem::copy_options::overwrite_existing);
    auto r = Engage({"ingest", "cdnow", kData + "/cdnow/CDNOW_sample.txt"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  TempDir dir_;
  std::string home_;
};

bool HaveCdnow() { return std::filesystem::exists(kData + "/cdnow/CDNOW_sample.txt"); }

TEST_F(BtydCliTest, FitReproducesThePublishedCdnowEstimates) {
  if (!HaveCdnow()) GTEST_SKIP() << "../shared/data/cdnow is missing";
  IngestCdnow();
  auto r = Engage({"btyd", "fit", "cdnow", "--calibration-end", "1997-09-30", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["customers"], 2357);
  // Fader, Hardie & Lee (2005) and Fader & Hardie (2013), to the digits they publish.
  EXPECT_NEAR(j["bgnbd"]["r"].get<double>(), 0.243, 0.0005);
  EXPECT_NEAR(j["bgnbd"]["alpha"].get<double>(), 4.414, 0.0005);
  EXPECT_NEAR(j["bgnbd"]["a"].get<double>(), 0.793, 0.0005);
  EXPECT_NEAR(j["bgnbd"]["b"].get<double>(), 2.426, 0.0005);
  EXPECT_NEAR(j["bgnbd"]["log_likelihood"].get<double>(), -9582.4, 0.05);
  EXPECT_NEAR(j["gamma_gamma"]["p"].get<double>(), 6.25, 0.005);
  EXPECT_NEAR(j["gamma_gamma"]["q"].get<double>(), 3.74, 0.005);
  EXPECT_NEAR(j["gamma_gamma"]["gamma"].get<double>(), 15.44, 0.005);
  EXPECT_EQ(j["gamma_gamma"]["customers"], 946);
  // The summary query is metered like any other.
  auto h = Engage({"history", "--json"});
  EXPECT_NE(h.out.find("btyd"), std::string::npos) << h.out;
}

TEST_F(BtydCliTest, PredictWritesEveryCustomer) {
  if (!HaveCdnow()) GTEST_SKIP() << "../shared/data/cdnow is missing";
  IngestCdnow();
  std::string out = dir_.path() + "/predictions.csv";
  auto r = Engage({"btyd", "predict", "cdnow", "--calibration-end", "1997-09-30", "--horizon", "39",
                   "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string csv = ReadFileText(out);
  EXPECT_EQ(csv.rfind("customer_id,x,t_x,T,monetary,p_alive,expected_transactions,", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2358);  // header + one per customer
  // --json without --out lists the first customers with every output.
  auto j = Engage(
      {"btyd", "predict", "cdnow", "--calibration-end", "1997-09-30", "--limit", "3", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  Json p = j.json()["predictions"];
  ASSERT_EQ(p.size(), 3u);
  for (const Json& c : p) {
    EXPECT_GE(c["p_alive"].get<double>(), 0);
    EXPECT_LE(c["p_alive"].get<double>(), 1);
    EXPECT_GT(c["expected_transactions"].get<double>(), 0);
    EXPECT_GT(c["clv"].get<double>(), 0);
  }
}

TEST_F(BtydCliTest, BadInputIsAClearError) {
  ASSERT_EQ(Engage({"init"}).exit_code, 0);
  auto unknown = Engage({"btyd", "fit", "nope"});
  EXPECT_EQ(unknown.exit_code, 3) << unknown.err;
  EXPECT_NE(unknown.err.find("nope"), std::string::npos);
  auto column = Engage({"btyd", "fit", "events", "--amount-column", "price"});
  EXPECT_EQ(column.exit_code, 3) << column.err;
  EXPECT_NE(column.err.find("price"), std::string::npos);
  auto date = Engage({"btyd", "fit", "events", "--calibration-end", "30/09/1997"});
  EXPECT_EQ(date.exit_code, 2) << date.err;
  EXPECT_NE(date.err.find("30/09/1997"), std::string::npos);
  auto empty = Engage({"btyd", "fit", "events"});  // the table has no rows
  EXPECT_EQ(empty.exit_code, 7) << empty.err;
  EXPECT_EQ(Engage({"btyd", "fit", "--help"}).exit_code, 0);
  EXPECT_EQ(Engage({"btyd"}).exit_code, 2);
}

// On the [engagement] events table only its qualifying types are transactions (sessions are not
// purchases), and no spend or CLV comes out negative.
TEST_F(BtydCliTest, TheEngagementEventsTableCountsOnlyQualifyingTypes) {
  ASSERT_EQ(Engage({"init"}).exit_code, 0);
  ASSERT_EQ(
      Engage({"gen", "--customers", "400", "--out", dir_.path() + "/data", "--end", "2025-01-01"})
          .exit_code,
      0);
  ASSERT_EQ(Engage({"ingest", "events", dir_.path() + "/data/events/*.parquet"}).exit_code, 0);
  auto fit = Engage({"btyd", "fit", "events", "--json"});
  ASSERT_EQ(fit.exit_code, 0) << fit.err;
  EXPECT_EQ(fit.json()["transaction_types"], Json::array({"purchase"})) << fit.out;
  auto predict = Engage({"btyd", "predict", "events", "--limit", "0", "--json"});
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  // Numeric ids in numeric order (not 0, 1, 10, 100, ...).
  int64_t previous = -1;
  for (const Json& p : predict.json()["predictions"]) {
    int64_t id = std::stoll(p["customer_id"].get<std::string>());
    EXPECT_GT(id, previous);
    previous = id;
  }
  for (const Json& p : predict.json()["predictions"]) {
    for (const char* k : {"expected_spend", "clv"}) {
      if (!p[k].is_null()) {
        EXPECT_GE(p[k].get<double>(), 0) << k << " of " << p.dump();
      }
    }
  }
  // Every row counted (sessions too) is asked for explicitly.
  auto every = Engage({"btyd", "fit", "events", "--types", "session,purchase", "--json"});
  ASSERT_EQ(every.exit_code, 0) << every.err;
  EXPECT_EQ(every.json()["transaction_types"].size(), 2u);
  EXPECT_EQ(Engage({"btyd", "fit", "events", "--calibration-end", "2024-02-30"}).exit_code, 2);
  EXPECT_EQ(Engage({"btyd", "fit", "events", "--calibration-end", "24-01-01"}).exit_code, 2);
  EXPECT_EQ(Engage({"btyd", "predict", "events", "--horizon", "nan"}).exit_code, 2);
  EXPECT_EQ(Engage({"btyd", "predict", "events", "--horizon", "0"}).exit_code, 2);
}

// A calibration end after the last event would make every customer look inactive since then.
TEST_F(BtydCliTest, ACalibrationEndAfterTheDataIsRefusedNamingTheLastDay) {
  if (!HaveCdnow()) GTEST_SKIP() << "../shared/data/cdnow is missing";
  IngestCdnow();
  auto r = Engage({"btyd", "fit", "cdnow", "--calibration-end", "1999-01-01"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("after the last event of 'cdnow' (1998-06-30)"), std::string::npos) << r.err;
  EXPECT_EQ(Engage({"btyd", "fit", "cdnow", "--calibration-end", "1998-06-30"}).exit_code, 0);
}

TEST(ExamplesTest, CdnowRunShPrintsTheFittedParameters) {
  if (!HaveCdnow()) GTEST_SKIP() << "../shared/data/cdnow is missing";
  TempDir dir;
  auto r = RunCommand({std::string(ENGAGE_SOURCE_DIR) + "/examples/cdnow/run.sh", kData + "/cdnow"},
                      dir.path(), {std::string("ENGAGE=") + ENGAGE_BINARY});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.last_line_json();
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j.size(), 2u);
  for (const char* k : {"r", "alpha", "a", "b", "log_likelihood"}) {
    EXPECT_TRUE(j["bgnbd"].contains(k)) << k;
  }
  for (const char* k : {"p", "q", "gamma", "log_likelihood"}) {
    EXPECT_TRUE(j["gamma_gamma"].contains(k)) << k;
  }
  EXPECT_NEAR(j["bgnbd"]["r"].get<double>(), 0.243, 0.0005);
  EXPECT_NEAR(j["gamma_gamma"]["gamma"].get<double>(), 15.44, 0.005);
}

}  // namespace
}  // namespace engage::testing
