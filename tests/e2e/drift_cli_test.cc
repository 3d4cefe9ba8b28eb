// End-to-end: `engage drift` on generated events (two windows of a table, and a model's training
// against its latest scoring run), its JSON shape, exit status and bad input, with the real
// binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "testing/cli_runner.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

class DriftCliTest : public ::testing::Test {
 protected:
  void SetUp() override { home_ = dir_.path() + "/home"; }

  CommandResult Engage(std::vector<std::string> args) {
    args.insert(args.begin(), {ENGAGE_BINARY, "--home", home_});
    return RunCommand(args, dir_.path());
  }

  static Json Parse(const std::string& s) { return Json::parse(s, nullptr, false); }

  // 2,000 generated customers over 200 days, events ingested.
  void Ingest() {
    ASSERT_EQ(Engage({"init"}).exit_code, 0);
    auto g = Engage({"gen", "--customers", "2000", "--days", "200", "--seed", "9", "--out",
                     dir_.path() + "/data"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
    auto i = Engage({"ingest", "events", dir_.path() + "/data/events/*.parquet"});
    ASSERT_EQ(i.exit_code, 0) << i.err;
    auto range = Engage({"query", "--json",
                         "SELECT CAST(min(dt) AS VARCHAR), CAST(max(dt) AS VARCHAR) FROM events"});
    ASSERT_EQ(range.exit_code, 0) << range.err;
    first_ = Parse(range.out)["rows"][0][0].get<std::string>();
    last_ = Parse(range.out)["rows"][0][1].get<std::string>();
  }

  TempDir dir_;
  std::string home_;
  std::string first_, last_;  // the events' first and last days
};

TEST_F(DriftCliTest, ComparesTwoWindowsOfATable) {
  Ingest();
  const std::string early = first_ + ".." + first_.substr(0, 8) + "28";
  const std::string late = last_.substr(0, 8) + "01.." + last_;
  auto r =
      Engage({"drift", "--table", "events", "--reference", early, "--current", late, "--json"});
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.err;
  Json j = Parse(r.out);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["dataset_drift"].get<bool>(), r.exit_code == 1);
  std::set<std::string> columns;
  for (const Json& c : j["columns"]) {
    columns.insert(c["column"].get<std::string>());
    for (const char* key :
         {"column", "kind", "psi", "statistic", "p_value", "js", "missing_change", "drifted"}) {
      EXPECT_TRUE(c.contains(key)) << key << " in " << c.dump();
    }
  }
  // The time column is skipped; numbers and categories are compared.
  EXPECT_EQ(columns.count("event_time"), 0u);
  EXPECT_EQ(columns.count("amount"), 1u);
  EXPECT_EQ(columns.count("event_type"), 1u);
  EXPECT_GT(j["reference"]["rows"].get<int64_t>(), 0);
  EXPECT_GT(j["current"]["rows"].get<int64_t>(), 0);

  // A window against itself: nothing drifts, exit 0; the text has a table and a verdict.
  auto same = Engage({"drift", "--table", "events", "--reference", early, "--current", early,
                      "--columns", "amount,channel"});
  ASSERT_EQ(same.exit_code, 0) << same.err << same.out;
  EXPECT_NE(same.out.find("no dataset drift: 0 of 2 column(s) drifted"), std::string::npos)
      << same.out;
  EXPECT_NE(same.out.find("categorical"), std::string::npos) << same.out;
  // The drift queries are metered in the query history.
  auto history = Engage({"history", "--json"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_NE(history.out.find("\"drift\""), std::string::npos);
}

TEST_F(DriftCliTest, BadInputIsAClearError) {
  Ingest();
  const std::string w = first_ + ".." + first_;
  auto unknown_table = Engage({"drift", "--table", "nope", "--reference", w, "--current", w});
  EXPECT_EQ(unknown_table.exit_code, 3);
  EXPECT_NE(unknown_table.err.find("'nope'"), std::string::npos) << unknown_table.err;
  auto unknown_column = Engage(
      {"drift", "--table", "events", "--reference", w, "--current", w, "--columns", "amount,zz"});
  EXPECT_EQ(unknown_column.exit_code, 3);
  EXPECT_NE(unknown_column.err.find("no column 'zz'"), std::string::npos) << unknown_column.err;
  for (const char* bad : {"2024-01-01", "a..b", "2024-02-01..2024-01-01"}) {
    auto r = Engage({"drift", "--table", "events", "--reference", bad, "--current", w});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("reference window"), std::string::npos) << r.err;
  }
  auto empty = Engage(
      {"drift", "--table", "events", "--reference", w, "--current", "1999-01-01..1999-01-31"});
  EXPECT_EQ(empty.exit_code, 7) << empty.err;
  EXPECT_NE(empty.err.find("current window 1999-01-01..1999-01-31"), std::string::npos)
      << empty.err;
  EXPECT_EQ(Engage({"drift", "--table", "events"}).exit_code, 2);
  EXPECT_EQ(Engage({"drift", "--model", "engagement", "--table", "events"}).exit_code, 2);
  {
    // engage init writes the [drift] defaults; an invalid psi is refused, naming the key.
    std::ifstream in(home_ + "/engage.toml");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = text.find("psi = 0.2");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 9, "psi = -3");
    std::ofstream out(home_ + "/engage.toml");
    out << text;
  }
  auto config = Engage({"drift", "--table", "events", "--reference", w, "--current", w});
  EXPECT_EQ(config.exit_code, 2);
  EXPECT_NE(config.err.find("[drift]: 'psi'"), std::string::npos) << config.err;
}

TEST_F(DriftCliTest, ComparesAModelsTrainingWithItsLatestScoringRun) {
  Ingest();
  ASSERT_EQ(Engage({"drift", "--model", "nope"}).exit_code, 3);
  auto train = Engage({"train", "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  // Trained but never scored: says what to run.
  auto unscored = Engage({"drift", "--model", "engagement"});
  EXPECT_EQ(unscored.exit_code, 7) << unscored.err;
  EXPECT_NE(unscored.err.find("engage score --model engagement@1"), std::string::npos)
      << unscored.err;
  auto score = Engage({"score", "--model", "engagement@1", "--json"});
  ASSERT_EQ(score.exit_code, 0) << score.err;
  auto r = Engage({"drift", "--model", "engagement@champion", "--json"});
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.err;
  Json j = Parse(r.out);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["model"], "engagement@1");
  EXPECT_EQ(j["current"]["rows"], Parse(score.out)["customers"]);
  std::set<std::string> columns;
  for (const Json& c : j["columns"]) {
    columns.insert(c["column"].get<std::string>());
    EXPECT_EQ(c["kind"], "numeric");
    // Features missing on both sides (customer attributes: no customers table here) have no
    // statistics and do not drift; the rest have them.
    if (c["psi"].is_null()) {
      EXPECT_FALSE(c["drifted"].get<bool>()) << c.dump();
    } else {
      EXPECT_TRUE(c["statistic"].is_number() && c["p_value"].is_number()) << c.dump();
    }
    if (c["column"] == "score" || c["column"] == "recency_days") {
      EXPECT_TRUE(c["psi"].is_number()) << c.dump();
    }
  }
  EXPECT_EQ(columns.count("score"), 1u);
  EXPECT_EQ(columns.count("recency_days"), 1u);
  // Picking features; an unknown one is named.
  auto some =
      Engage({"drift", "--model", "engagement", "--columns", "score,recency_days", "--json"});
  ASSERT_TRUE(some.exit_code == 0 || some.exit_code == 1) << some.err;
  EXPECT_EQ(Parse(some.out)["columns"].size(), 2u);
  auto unknown = Engage({"drift", "--model", "engagement", "--columns", "nope"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.err.find("no feature 'nope'"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace engage::testing
