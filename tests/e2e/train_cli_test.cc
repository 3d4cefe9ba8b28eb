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

  // Registered like `engage train`'s engagement model, under the table's name.
  EXPECT_EQ(j["model"], "accounts");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["existing"], false);
  auto listed = Engage({"models", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  ASSERT_EQ(listed.json().size(), 1u) << listed.out;
  EXPECT_EQ(listed.json()[0]["name"], "accounts");
  EXPECT_DOUBLE_EQ(listed.json()[0]["metrics"]["auc"].get<double>(), j["auc"].get<double>());

  // The same training again (threads aside) registers nothing and returns version 1.
  auto again = Engage({"train", "--table", "accounts", "--label", "churned", "--id", "account_id",
                       "--param", "nthread=1", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  Json a = again.json();
  EXPECT_EQ(a["existing"], true) << again.out;
  EXPECT_EQ(a["version"], 1);
  EXPECT_EQ(a["fingerprint"], j["fingerprint"]);
  for (const char* k : {"auc", "pr_auc", "log_loss", "rows_train", "rows_test", "encoding"}) {
    EXPECT_EQ(a[k], j[k]) << k;
  }
  auto same = Engage({"train", "--table", "accounts", "--label", "churned", "--id", "account_id"});
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_NE(same.out.find("identical to version 1 (accounts@1); nothing new registered"),
            std::string::npos)
      << same.out;
  EXPECT_EQ(Engage({"models", "list", "accounts", "--json"}).json().size(), 1u);

  // Another seed is another training, in words: the metrics and the top features.
  auto text = Engage({"train", "--table", "accounts", "--label", "churned", "--id", "account_id",
                      "--param", "nthread=2", "--seed", "7"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* s : {"ROC-AUC", "PR-AUC", "log-loss", "Brier", "best iteration", "top features",
                        "visits", "registered accounts@2"}) {
    EXPECT_NE(text.out.find(s), std::string::npos) << s << "\n" << text.out;
  }
  // Not a terminal: no progress on stderr.
  EXPECT_EQ(text.err.find("boosting: round"), std::string::npos) << text.err;
}

// The registry's commands on table models, and what a hostile user can type at them.
TEST_F(TrainCliTest, TableModelsAreInTheRegistryAndBadReferencesAreRefused) {
  IngestAccounts(AccountsCsv(400));
  std::vector<std::string> train = {"train",   "--table", "accounts", "--label",
                                    "churned", "--param", "nthread=1"};
  auto named = train;
  named.insert(named.end(), {"--model", "churn", "--json"});
  auto first = Engage(named);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.json()["model"], "churn");
  for (const std::string& bad :
       {std::string("Bad Name"), std::string("../x"), std::string("a/b"), std::string("x@1")}) {
    auto b = train;
    b.insert(b.end(), {"--model", bad});
    auto r = Engage(b);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/x"));

  auto show = Engage({"models", "show", "churn"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  for (const char* s : {"churn@1", "  kind         table", "  metrics      auc ", "held-out test",
                        "  params       ", "  data         ", "table accounts", "label churned"}) {
    EXPECT_NE(show.out.find(s), std::string::npos) << s << " in\n" << show.out;
  }
  EXPECT_EQ(show.out.find('{'), std::string::npos) << "not a JSON dump:\n" << show.out;
  auto card = Engage({"models", "show", "churn@1", "--json"});
  ASSERT_EQ(card.exit_code, 0) << card.err;
  EXPECT_EQ(card.json()["card"]["kind"], "table");
  EXPECT_TRUE(card.json()["card"]["encoding"].contains("features"));

  // A table model is not an engagement model: `engage score` says so.
  auto score = Engage({"score", "--model", "churn@1"});
  EXPECT_EQ(score.exit_code, 7) << score.err;
  EXPECT_NE(score.err.find("engage train --table"), std::string::npos) << score.err;

  auto alias = Engage({"models", "alias", "churn@1", "challenger", "--json"});
  ASSERT_EQ(alias.exit_code, 0) << alias.err;
  EXPECT_EQ(alias.json(), Json::parse(R"({"model":"churn","alias":"challenger","version":1,
                                          "previous":null})"));
  EXPECT_EQ(Engage({"models", "alias", "churn@1", "challenger", "--json"}).json()["previous"], 1);
  auto missing = Engage({"models", "show", "churn@canary"});
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_NE(missing.err.find("model 'churn' has no alias 'canary'; run `engage models promote "
                             "churn 1` or `engage models alias churn@1 canary`"),
            std::string::npos)
      << missing.err;

  struct Case {
    std::vector<std::string> args;
    int exit_code;
    const char* says;
  };
  const std::vector<Case> cases = {
      {{"models", "show", "churn@"}, 2, "churn@3 or churn@champion"},
      {{"models", "show", "churn@0"}, 2, "from 1 up"},
      {{"models", "show", "churn@-1"}, 2, "from 1 up"},
      {{"models", "show", "churn@99999999999999999999"}, 2, "from 1 up"},
      {{"models", "show", "churn@2"}, 3, "its versions are 1 .. 1"},
      {{"models", "show", "nope"}, 3, "engage models list"},
      {{"models", "show", "Churn"}, 2, "must match"},
      {{"models", "alias", "churn@1", "Champ!"}, 2, "alias 'Champ!' must match"},
      {{"models", "alias", "churn@1", "a;rm -rf"}, 2, "must match"},
      {{"models", "alias", "churn@1", "1"}, 2, "must match"},
      {{"models", "alias", "churn", "champion"}, 2, "engage models alias churn@N champion"},
      {{"models", "alias", "churn@0", "x"}, 2, "from 1 up"},
      {{"models", "alias", "churn@7", "x"}, 3, "no version 7"},
      {{"models", "promote", "churn@1", "1"}, 2, "give the version once"},
      {{"models", "promote", "churn", "0"}, 2, "from 1 up"},
      {{"models", "promote", "churn", "x1"}, 3, "has no alias 'x1'"},
      {{"models", "promote", "nope", "1"}, 3, "no model named 'nope'"},
      {{"models", "diff", "churn@1", "0"}, 2, "from 1 up"},
      {{"models", "diff", "churn@1", "99999999999999999999"}, 2, "from 1 up"},
      {{"models", "list", "nope"}, 3, "engage train"},
  };
  for (const Case& c : cases) {
    std::string cmd;
    for (const auto& a : c.args) cmd += a + " ";
    SCOPED_TRACE(cmd);
    auto r = Engage(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
  // None of that changed the registry.
  auto versions = Engage({"models", "list", "churn", "--json"});
  ASSERT_EQ(versions.json().size(), 1u) << versions.out;
  EXPECT_EQ(versions.json()[0]["aliases"].size(), 2u) << versions.out;  // champion, challenger

  // promote NAME N, and diff in words and as JSON.
  auto other = train;
  other.insert(other.end(), {"--model", "churn", "--seed", "9"});
  ASSERT_EQ(Engage(other).exit_code, 0);
  auto promote = Engage({"models", "promote", "churn", "2", "--json"});
  ASSERT_EQ(promote.exit_code, 0) << promote.err;
  EXPECT_EQ(promote.json()["version"], 2);
  EXPECT_EQ(promote.json()["previous"], 1);
  auto diff = Engage({"models", "diff", "churn@1", "2"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_EQ(diff.out.rfind("churn@1 -> churn@2\n", 0), 0u) << diff.out;
  EXPECT_NE(diff.out.find("seed 42 -> 9"), std::string::npos) << diff.out;
  auto diff_json = Engage({"models", "diff", "churn@1", "churn@2", "--json"});
  ASSERT_EQ(diff_json.exit_code, 0) << diff_json.err;
  EXPECT_EQ(diff_json.json()["data"]["seed"], Json::array({42, 9})) << diff_json.out;
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
  // The other options of a labelled table are refused without one, not silently ignored.
  for (const char* opt : {"--test-fraction", "--valid-fraction", "--id", "--exclude", "--save"}) {
    auto r = Engage({"train", opt, "0.5"});
    EXPECT_EQ(r.exit_code, 2) << opt << ": " << r.err;
    EXPECT_NE(r.err.find("--table"), std::string::npos) << opt << ": " << r.err;
  }
  // An output that cannot be written is refused before training: nothing is registered.
  auto dir = Engage({"train", "--table", "accounts", "--label", "churned", "--save", dir_.path()});
  EXPECT_EQ(dir.exit_code, 2) << dir.err;
  EXPECT_NE(dir.err.find("is a directory"), std::string::npos) << dir.err;
  EXPECT_EQ(dir.err.find(".tmp."), std::string::npos) << dir.err;
  auto listed = Engage({"models", "list", "accounts", "--json"});
  EXPECT_EQ(listed.out.find("\"version\""), std::string::npos) << listed.out;
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
