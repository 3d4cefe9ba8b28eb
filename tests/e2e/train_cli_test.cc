// End-to-end tests of `engage train --table` and the examples that train on real data
// (examples/telco/run.sh, examples/online_shoppers/run.sh).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

const std::string kData = SharedDataDir();

constexpr const char* kAccountsToml = R"(
[tables.accounts]
retention_days = 0
[[tables.accounts.columns]]
name = "account_id"
required = true
[[tables.accounts.columns]]
name = "plan"
[[tables.accounts.columns]]
name = "spend"
[[tables.accounts.columns]]
name = "visits"
type = "int64"
[[tables.accounts.columns]]
name = "note"
[[tables.accounts.columns]]
name = "churned"
)";

// `n` accounts whose churn follows visits (strongly) and plan; spend is text with a few blanks.
std::string AccountsCsv(int n) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> unif(0, 1);
  std::ostringstream out;
  out << "account_id,plan,spend,visits,note,churned\n";
  const char* plans[] = {"free", "team", "enterprise"};
  for (int i = 0; i < n; ++i) {
    int visits = static_cast<int>(unif(rng) * 40);
    std::string plan = plans[i % 3];
    double z = 2.0 - 0.2 * visits + (plan == "free" ? 1.0 : 0.0);
    bool churned = unif(rng) < 1.0 / (1.0 + std::exp(-z));
    out << "a" << i << "," << plan << "," << (i % 37 == 0 ? "" : std::to_string(i % 90) + ".25")
        << "," << visits << ",free text " << i << "," << (churned ? "Yes" : "No") << "\n";
  }
  return out.str();
}

class TrainCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = dir_.path() + "/home";
    ASSERT_EQ(Engage({"init"}).exit_code, 0);
    std::ofstream(home_ + "/engage.toml", std::ios::app) << kAccountsToml;
  }

  CommandResult Engage(std::vector<std::string> args) {
    args.insert(args.begin(), {ENGAGE_BINARY, "--home", home_});
    return RunCommand(args, dir_.path());
  }

  void IngestAccounts(const std::string& csv) {
    std::string path = dir_.WriteFile("accounts.csv", csv);
    auto r = Engage({"ingest", "accounts", path});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  TempDir dir_;
  std::string home_;
};

TEST_F(TrainCliTest, TrainsEvaluatesAndSavesTheModel) {
  IngestAccounts(AccountsCsv(1500));
  std::string model = dir_.path() + "/model.json";
  auto r = Engage({"train", "--table", "accounts", "--label", "churned", "--id", "account_id",
                   "--param", "nthread=2", "--save", model, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.out;
  for (const char* k : {"auc", "pr_auc", "log_loss", "brier", "rows_train", "rows_valid",
                        "rows_test", "best_iteration", "top_features", "encoding", "saved"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_GT(j["auc"].get<double>(), 0.8);
  EXPECT_EQ(j["rows_train"].get<int64_t>() + j["rows_valid"].get<int64_t>() +
                j["rows_test"].get<int64_t>(),
            1500);
  EXPECT_EQ(j["top_features"][0]["feature"], "visits");
  EXPECT_EQ(j["saved"], model);
  // Features as documented: one-hot plan, numeric text spend, the free-text note left out.
  Json feats = j["encoding"]["features"];
  EXPECT_EQ(feats, Json::parse(R"(["plan=enterprise", "plan=free", "plan=team", "spend",
                                   "visits"])"));
  EXPECT_EQ(j["encoding"]["skipped"][0]["column"], "note");
  // The saved file is an XGBoost JSON model with the feature names.
  Json saved = Json::parse(ReadFileText(model), nullptr, false);
  ASSERT_TRUE(saved.is_object());
  EXPECT_TRUE(saved.contains("learner"));
  EXPECT_EQ(saved["learner"]["feature_names"], feats);
  // The table was read through the metered engine, under source "train".
  auto h = Engage({"history", "--json"});
  EXPECT_NE(h.out.find("\"train\""), std::string::npos) << h.out;

  // The same run in words: the metrics and the top features.
  auto text = Engage({"train", "--table", "accounts", "--label", "churned", "--id", "account_id",
                      "--param", "nthread=2"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* s :
       {"ROC-AUC", "PR-AUC", "log-loss", "Brier", "best iteration", "top features", "visits"}) {
    EXPECT_NE(text.out.find(s), std::string::npos) << s << "\n" << text.out;
  }
  // Not a terminal: no progress on stderr.
  EXPECT_EQ(text.err.find("boosting: round"), std::string::npos) << text.err;
}

TEST_F(TrainCliTest, OptionsReachTheTrainer) {
  IngestAccounts(AccountsCsv(600));
  auto r = Engage({"train",
                   "--table",
                   "accounts",
                   "--label",
                   "churned",
                   "--exclude",
                   "note,spend",
                   "--param",
                   "max_depth=2",
                   "--param",
                   "num_boost_round=30",
                   "--param",
                   "nthread=1",
                   "--test-fraction",
                   "0.25",
                   "--valid-fraction",
                   "0",
                   "--seed",
                   "5",
                   "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.json();
  EXPECT_EQ(j["params"]["max_depth"], 2);
  EXPECT_EQ(j["params"]["seed"], 5);
  EXPECT_EQ(j["rounds"], 30);  // no validation split: no early stopping
  EXPECT_EQ(j["rows_valid"], 0);
  EXPECT_EQ(j["rows_test"], 150);  // without --id: a seeded shuffle, exactly 25%
  EXPECT_EQ(j["id"], nullptr);
  // account_id is all distinct text: skipped like note would be.
  EXPECT_EQ(j["encoding"]["features"],
            Json::parse(R"(["plan=enterprise", "plan=free", "plan=team", "visits"])"));
}

TEST_F(TrainCliTest, BadInputIsAClearError) {
  std::string csv = AccountsCsv(200);
  csv.replace(csv.find(",No\n"), 4, ",Unknown\n");
  IngestAccounts(csv);
  auto table = Engage({"train", "--table", "nope", "--label", "churned"});
  EXPECT_EQ(table.exit_code, 3) << table.err;
  EXPECT_NE(table.err.find("nope"), std::string::npos);
  auto column = Engage({"train", "--table", "accounts", "--label", "churn"});
  EXPECT_EQ(column.exit_code, 3) << column.err;
  EXPECT_NE(column.err.find("'churn'"), std::string::npos);
  auto exclude = Engage({"train", "--table", "accounts", "--label", "churned", "--exclude", "x"});
  EXPECT_EQ(exclude.exit_code, 3) << exclude.err;
  auto label = Engage({"train", "--table", "accounts", "--label", "churned"});
  EXPECT_EQ(label.exit_code, 2) << label.err;
  EXPECT_NE(label.err.find("'churned'"), std::string::npos) << label.err;
  EXPECT_NE(label.err.find("'Unknown'"), std::string::npos) << label.err;
  auto no_label = Engage({"train", "--table", "accounts"});
  EXPECT_EQ(no_label.exit_code, 2) << no_label.err;
  EXPECT_NE(no_label.err.find("--label"), std::string::npos);
  auto param = Engage({"train", "--table", "accounts", "--label", "churned", "--param", "eta"});
  EXPECT_EQ(param.exit_code, 2) << param.err;
  auto depth =
      Engage({"train", "--table", "accounts", "--label", "churned", "--param", "max_depth=deep"});
  EXPECT_EQ(depth.exit_code, 2) << depth.err;
  auto fraction =
      Engage({"train", "--table", "accounts", "--label", "churned", "--test-fraction", "1.5"});
  EXPECT_EQ(fraction.exit_code, 2) << fraction.err;
  EXPECT_EQ(Engage({"train", "--label", "churned"}).exit_code, 2);  // --label needs --table
  auto help = Engage({"train", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* s : {"--table", "--label", "--id", "--exclude", "--test-fraction", "--seed",
                        "--param", "--save", "--json"}) {
    EXPECT_NE(help.out.find(s), std::string::npos) << s;
  }
}

// Runs examples/<name>/run.sh on ../shared/data/<data> and returns its last line.
Json RunExample(const std::string& name, const std::string& data, std::string* err) {
  TempDir dir;
  auto r = RunCommand(
      {std::string(ENGAGE_SOURCE_DIR) + "/examples/" + name + "/run.sh", kData + "/" + data},
      dir.path(), {std::string("ENGAGE=") + ENGAGE_BINARY});
  *err = r.err;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.last_line_json();
}

void ExpectMetrics(const Json& j, int64_t rows, const std::string& err) {
  ASSERT_TRUE(j.is_object()) << err;
  EXPECT_EQ(j.size(), 5u) << j.dump();
  for (const char* k : {"auc", "pr_auc", "log_loss", "rows_train", "rows_test"}) {
    ASSERT_TRUE(j.contains(k) && j[k].is_number()) << k << " in " << j.dump();
  }
  EXPECT_GT(j["auc"].get<double>(), 0.8) << j.dump();
  EXPECT_GT(j["pr_auc"].get<double>(), 0.5) << j.dump();
  EXPECT_LT(j["log_loss"].get<double>(), 0.5) << j.dump();
  // About 64% train, 16% validation (not in the line), 20% test.
  EXPECT_NEAR(j["rows_test"].get<double>() / static_cast<double>(rows), 0.2, 0.02);
  EXPECT_NEAR(j["rows_train"].get<double>() / static_cast<double>(rows), 0.64, 0.02);
}

TEST(ExamplesTest, TelcoRunShPrintsHeldOutMetrics) {
  if (!std::filesystem::exists(kData + "/telco_churn/Telco-Customer-Churn.csv")) {
    GTEST_SKIP() << "../shared/data/telco_churn is missing";
  }
  std::string err;
  Json j = RunExample("telco", "telco_churn", &err);
  ExpectMetrics(j, 7043, err);
  EXPECT_NE(err.find("ROC-AUC"), std::string::npos) << err;  // the human summary on stderr
}

TEST(ExamplesTest, OnlineShoppersRunShPrintsHeldOutMetrics) {
  if (!std::filesystem::exists(kData +
                               "/online_shoppers_intention/online_shoppers_intention.csv")) {
    GTEST_SKIP() << "../shared/data/online_shoppers_intention is missing";
  }
  std::string err;
  Json j = RunExample("online_shoppers", "online_shoppers_intention", &err);
  ExpectMetrics(j, 12330, err);
  EXPECT_NE(err.find("page_values"), std::string::npos) << err;  // the top feature
}

}  // namespace
}  // namespace engage::testing
