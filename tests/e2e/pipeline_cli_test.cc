// End-to-end: the shipped engagement pipeline (`engage run pipeline`), `engage score` and
// `engage models` on generated data, with the real binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

class PipelineCliTest : public ::testing::Test {
 protected:
  void SetUp() override { home_ = dir_.path() + "/home"; }

  CommandResult Engage(std::vector<std::string> args) {
    args.insert(args.begin(), {ENGAGE_BINARY, "--home", home_});
    return RunCommand(args, dir_.path());
  }

  // 3,000 generated customers over 240 days, not yet ingested.
  void Generate() {
    ASSERT_EQ(Engage({"init"}).exit_code, 0);
    auto g = Engage({"gen", "--customers", "3000", "--days", "240", "--seed", "5", "--out",
                     dir_.path() + "/data"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
  }

  TempDir dir_;
  std::string home_;
};

TEST_F(PipelineCliTest, RunsEveryStepAndPromotesTheFirstModel) {
  Generate();
  auto r = Engage({"run", "pipeline", "--name", "p1", "--json", "--ingest",
                   "customers=" + dir_.path() + "/data/customers.parquet", "--ingest",
                   "events=" + dir_.path() + "/data/events/*.parquet"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  Json j = r.json();
  ASSERT_EQ(j["status"], "SUCCEEDED") << r.out;
  const Json& out = j["output"];
  EXPECT_EQ(out["model"], "engagement");
  EXPECT_EQ(out["version"], 1);
  EXPECT_GT(out["validation"]["value"].get<double>(), 0.7);
  EXPECT_EQ(out["promotion"]["promoted"], true);
  EXPECT_GT(out["scored"]["customers"].get<int64_t>(), 1000);
  // The scores went into the serving store.
  EXPECT_EQ(out["published"]["published"], true);
  EXPECT_EQ(out["published"]["snapshot"]["default_version"], 1);
  EXPECT_EQ(out["published"]["snapshot"]["versions"][0]["customers"], out["scored"]["customers"]);
  EXPECT_GT(out["cost"]["bytes_scanned"].get<int64_t>(), 0);
  // Every step ran, in order, and the execution is in the history.
  auto h = Engage({"flow", "history", "p1", "--json"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  std::vector<std::string> entered;
  Json history = h.json();
  for (const Json& e : history["events"]) {
    if (e["type"].get<std::string>().ends_with("StateEntered") &&
        e.contains("stateEnteredEventDetails")) {
      entered.push_back(e["stateEnteredEventDetails"]["name"].get<std::string>());
    }
  }
  std::vector<std::string> top;
  for (const auto& s : entered) {
    if (s != "IngestTable") top.push_back(s);
  }
  ASSERT_FALSE(top.empty()) << h.out.substr(0, 2000);
  EXPECT_EQ(top, (std::vector<std::string>{"Ingest", "DataQuality", "Features", "Train", "Evaluate",
                                           "BeatsChampion", "Promote", "Score", "Publish",
                                           "CostSummary", "Done"}));
  // The cost of the execution and of each step, in its history and its description: the
  // queries of the steps (Athena), the training and scoring (Fargate), the steps (Lambda) and the
  // state transitions; the cost-summary step saw the steps before it.
  EXPECT_GT(history["cost"]["total_usd"].get<double>(), 0) << history["cost"].dump();
  auto d = Engage({"flow", "describe", "p1", "--json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const Json cost = d.json()["cost"];
  std::set<std::string> costed;
  for (const Json& s : cost["steps"]) {
    costed.insert(s["step"].get<std::string>());
    EXPECT_GE(s["cloud_usd"].get<double>(), 0);
  }
  for (const char* step : {"Features", "Train", "Score", "Publish", "(transitions)"}) {
    EXPECT_TRUE(costed.count(step)) << step << " in " << cost.dump();
  }
  EXPECT_GT(out["cost"]["total_usd"].get<double>(), 0);
  EXPECT_LE(out["cost"]["total_usd"].get<double>(), cost["total_usd"].get<double>());
  auto by_kind = Engage({"cost", "--by", "kind", "--json"});
  std::set<std::string> kinds;
  const Json ledger = by_kind.json();
  for (const Json& row : ledger["rows"]) kinds.insert(row["kind"].get<std::string>());
  for (const char* kind :
       {"query", "step", "execution", "training", "scoring", "publish", "ingest", "storage"}) {
    EXPECT_TRUE(kinds.count(kind)) << kind << " in " << by_kind.out;
  }
  // The registry and the predictions table.
  auto models = Engage({"models", "list", "--json"});
  ASSERT_EQ(models.exit_code, 0) << models.err;
  EXPECT_EQ(models.json()[0]["aliases"], Json::array({"champion"}));
  auto card = Engage({"models", "show", "engagement@champion", "--json"});
  EXPECT_EQ(card.json()["card"]["kind"], "engagement");
  auto n = Engage({"query", "--json", "SELECT count(DISTINCT customer_id) FROM predictions"});
  EXPECT_EQ(n.json()["rows"][0][0], out["scored"]["customers"]);
  // `engage publish` by hand: a new snapshot; an unknown model is a clear not-found.
  auto pub = Engage({"publish", "--model", "engagement@champion", "--json"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_NE(pub.json()["snapshot"]["id"], out["published"]["snapshot"]["id"]);
  EXPECT_GT(pub.json()["bytes_per_customer"].get<double>(), 0);
  auto bad = Engage({"publish", "--model", "nope@champion"});
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_NE(bad.err.find("nope"), std::string::npos) << bad.err;

  // A second run on the same data trains nothing: its Train step returns version 1, "existing".
  auto again = Engage({"run", "pipeline", "--name", "p2", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  Json o2 = again.json()["output"];
  EXPECT_EQ(o2["version"], 1);
  EXPECT_EQ(o2["promotion"]["promoted"], false);
  bool train_step_seen = false;
  const Json history2 = Engage({"flow", "history", "p2", "--json"}).json();
  for (const Json& e : history2["events"]) {
    if (!e.contains("stateExitedEventDetails") || e["stateExitedEventDetails"]["name"] != "Train") {
      continue;
    }
    Json output = Json::parse(e["stateExitedEventDetails"]["output"].get<std::string>());
    EXPECT_EQ(output["trained"]["existing"], true) << output.dump();
    EXPECT_EQ(output["trained"]["version"], 1) << output.dump();
    train_step_seen = true;
  }
  EXPECT_TRUE(train_step_seen);
  EXPECT_EQ(Engage({"models", "list", "engagement", "--json"}).json().size(), 1u);
  // `engage train` without --table is the engagement mode: the same training, so version 1 again;
  // other parameters make version 2, not promoted by itself.
  auto train = Engage({"train", "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_EQ(train.json()["version"], 1);
  EXPECT_EQ(train.json()["existing"], true);
  EXPECT_GT(train.json()["valid"]["roc_auc"].get<double>(), 0.7) << train.out;
  auto train2 = Engage({"train", "--param", "max_depth=3", "--json"});
  ASSERT_EQ(train2.exit_code, 0) << train2.err;
  EXPECT_EQ(train2.json()["version"], 2);
  EXPECT_EQ(train2.json()["existing"], false);
  EXPECT_EQ(Engage({"models", "show", "engagement@champion", "--json"}).json()["version"], 1);
  auto diff = Engage({"models", "diff", "engagement@1", "2", "--json"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_TRUE(diff.json()["metrics"].contains("auc"));
  EXPECT_EQ(diff.json()["params"]["max_depth"], Json::array({5, 3}));
  auto words = Engage({"models", "diff", "engagement@1", "2"});
  ASSERT_EQ(words.exit_code, 0) << words.err;
  EXPECT_NE(words.out.find("max_depth 5 -> 3"), std::string::npos) << words.out;
  auto show = Engage({"models", "show", "engagement@champion"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  for (const char* s : {"engagement@1  (champion)", "  metrics      auc ", "baseline",
                        "validation_cutoff", "  fingerprint  "}) {
    EXPECT_NE(show.out.find(s), std::string::npos) << s << " in\n" << show.out;
  }
}

TEST_F(PipelineCliTest, TheFirstTrainedVersionThatPassesTheBarBecomesChampion) {
  Generate();
  ASSERT_EQ(Engage({"ingest", "events", dir_.path() + "/data/events/*.parquet"}).exit_code, 0);
  // No champion yet: scoring it says what to run.
  auto early = Engage({"score", "--model", "engagement@champion"});
  EXPECT_EQ(early.exit_code, 3) << early.err;
  auto first = Engage({"train", "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.json()["version"], 1);
  EXPECT_EQ(first.json()["became_champion"], true) << first.out;
  auto champion = Engage({"models", "show", "engagement@champion", "--json"});
  ASSERT_EQ(champion.exit_code, 0) << champion.err;
  EXPECT_EQ(champion.json()["version"], 1);
  // What the README does next works: score the champion, split traffic on it.
  auto score = Engage({"score", "--model", "engagement@champion", "--json"});
  EXPECT_EQ(score.exit_code, 0) << score.err;
  // The same training again: nothing new, and it says so.
  auto same = Engage({"train"});
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_NE(same.out.find("identical to version 1 (engagement@1); nothing new registered"),
            std::string::npos)
      << same.out;
  EXPECT_NE(same.out.find("engagement@1 is engagement@champion"), std::string::npos) << same.out;
  // The scores: customer_id as in the events (BIGINT), the latest run per customer.
  auto types = Engage(
      {"query", "--json", "SELECT typeof(customer_id), count(*) FROM predictions GROUP BY 1"});
  ASSERT_EQ(types.exit_code, 0) << types.err;
  EXPECT_EQ(types.json()["rows"][0][0], "BIGINT") << types.out;
  int64_t customers = score.json()["customers"].get<int64_t>();
  auto rescore = Engage({"score", "--model", "engagement@champion", "--json"});
  ASSERT_EQ(rescore.exit_code, 0) << rescore.err;
  auto latest = Engage({"query", "--json",
                        "SELECT count(*), count(DISTINCT customer_id), max(scored_at) = (SELECT "
                        "max(scored_at) FROM predictions) FROM predictions_latest p JOIN (SELECT "
                        "DISTINCT customer_id FROM events) e USING (customer_id)"});
  ASSERT_EQ(latest.exit_code, 0) << latest.err;
  EXPECT_EQ(latest.json()["rows"][0], Json::array({customers, customers, true})) << latest.out;
  auto count = [&] {
    return Engage({"query", "--json", "SELECT count(*) FROM predictions"}).json()["rows"][0][0];
  };
  const Json before = count();
  // A cutoff where no customer has history is refused, naming the data's dates; nothing written.
  for (const std::string& cutoff : {std::string("2030-01-01"), std::string("1990-01-02")}) {
    std::string out = dir_.path() + "/f.csv";
    auto f = Engage({"features", "--cutoff", cutoff, "--out", out});
    EXPECT_EQ(f.exit_code, 2) << f.err;
    EXPECT_NE(f.err.find("cutoff " + cutoff + " is outside the events' dates "), std::string::npos)
        << f.err;
    EXPECT_FALSE(std::filesystem::exists(out));
    auto s = Engage({"score", "--cutoff", cutoff});
    EXPECT_EQ(s.exit_code, 2) << s.err;
    EXPECT_NE(s.err.find("cutoff " + cutoff + " is outside the events' dates "), std::string::npos)
        << s.err;
  }
  EXPECT_EQ(Engage({"features", "--cutoff", "2024-02-30"}).exit_code, 2);
  EXPECT_EQ(count(), before);
  // A later version does not take the alias by itself; the note says how to promote it.
  auto second = Engage({"train", "--param", "max_depth=3"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("engage models promote engagement 2"), std::string::npos) << second.out;
  // The diff the note suggests runs as written.
  EXPECT_NE(second.out.find("engage models diff engagement@1 2"), std::string::npos) << second.out;
  EXPECT_EQ(Engage({"models", "diff", "engagement@1", "2"}).exit_code, 0);
  EXPECT_EQ(Engage({"models", "show", "engagement@champion", "--json"}).json()["version"], 1);
  ASSERT_EQ(Engage({"models", "alias", "engagement@2", "challenger"}).exit_code, 0);
  auto split = Engage({"ab", "split", "set", "engagement", "champion=90", "challenger=10"});
  EXPECT_EQ(split.exit_code, 0) << split.err;
  auto shown = Engage({"ab", "split", "show", "engagement"});
  EXPECT_NE(shown.out.find("champion=90% (engagement@champion)"), std::string::npos) << shown.out;
  EXPECT_EQ(Engage({"ab", "split", "show", "engagement", "--json"}).json()["arms"].size(), 2u);
}

// `engage models health` end to end: a run scored as of an earlier day (its outcome window has
// passed) is evaluated against the events that followed; the latest run is still pending.
TEST_F(PipelineCliTest, ModelsHealthEvaluatesScoringRunsWhoseOutcomesAreIn) {
  ASSERT_EQ(Engage({"init"}).exit_code, 0);
  // Not scored yet (no model, then no scores): clear errors.
  auto none = Engage({"models", "health", "engagement"});
  EXPECT_EQ(none.exit_code, 3) << none.err;
  EXPECT_NE(none.err.find("engagement"), std::string::npos) << none.err;
  auto g = Engage({"gen", "--customers", "2000", "--days", "240", "--seed", "5", "--end",
                   "2025-01-01", "--out", dir_.path() + "/data"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  ASSERT_EQ(Engage({"ingest", "customers", dir_.path() + "/data/customers.parquet"}).exit_code, 0);
  ASSERT_EQ(Engage({"ingest", "events", dir_.path() + "/data/events/*.parquet"}).exit_code, 0);
  auto train = Engage({"train", "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto never = Engage({"models", "health", "engagement@champion"});
  EXPECT_EQ(never.exit_code, 7) << never.err;
  EXPECT_NE(never.err.find("engage score --model engagement@champion"), std::string::npos)
      << never.err;
  // As of 2024-11-01: the 30-day window ended 2024-12-01, before the events end (2024-12-31).
  auto early = Engage({"score", "--cutoff", "2024-11-01", "--no-reasons", "--json"});
  ASSERT_EQ(early.exit_code, 0) << early.err;
  // As of the day after the last event: pending.
  auto now = Engage({"score", "--no-reasons", "--json"});
  ASSERT_EQ(now.exit_code, 0) << now.err;

  auto h = Engage({"models", "health", "engagement", "--json"});
  ASSERT_EQ(h.exit_code, 0) << h.err << h.out;
  Json j = h.json();
  ASSERT_TRUE(j.is_object()) << h.out;
  EXPECT_EQ(j["model"], "engagement");
  EXPECT_EQ(j["min_auc"], 0.6);
  EXPECT_EQ(j["healthy"], true) << h.out;
  EXPECT_EQ(j["data_end"], now.json()["cutoff"]);  // the day after the last event
  ASSERT_EQ(j["runs"].size(), 2u) << h.out;
  const Json& evaluated = j["runs"][0];
  EXPECT_EQ(evaluated["status"], "evaluated");
  EXPECT_EQ(evaluated["cutoff"], "2024-11-01");
  EXPECT_EQ(evaluated["version"], 1);
  EXPECT_EQ(evaluated["window_end"], "2024-12-01");
  EXPECT_EQ(evaluated["scored_at"], early.json()["scored_at"].get<std::string>().substr(0, 19));
  EXPECT_EQ(evaluated["customers"], early.json()["customers"]);
  EXPECT_GT(evaluated["positives"].get<int64_t>(), 0);
  EXPECT_LT(evaluated["positives"].get<int64_t>(), evaluated["customers"].get<int64_t>());
  // The generator's latent process is learnable: the realised AUC is well above chance.
  EXPECT_GT(evaluated["auc"].get<double>(), 0.7) << h.out;
  EXPECT_GT(evaluated["log_loss"].get<double>(), 0);
  EXPECT_EQ(evaluated["below_min_auc"], false);
  // The model was trained on these events (up to the last one): the run is flagged in-sample.
  ASSERT_EQ(evaluated["notes"].size(), 1u) << h.out;
  EXPECT_EQ(evaluated["notes"][0].get<std::string>().rfind("in-sample: engagement@1", 0), 0u);
  // Ten deciles covering every customer, the top one engaging more than the bottom one.
  const Json& cal = evaluated["calibration"];
  ASSERT_EQ(cal.size(), 10u) << h.out;
  int64_t total = 0;
  for (const Json& d : cal) total += d["customers"].get<int64_t>();
  EXPECT_EQ(total, evaluated["customers"].get<int64_t>());
  EXPECT_GT(cal[9]["observed"].get<double>(), cal[0]["observed"].get<double>() + 0.2) << h.out;
  EXPECT_GT(cal[9]["predicted"].get<double>(), cal[0]["predicted"].get<double>());
  EXPECT_EQ(j["runs"][1]["status"], "pending");
  EXPECT_EQ(j["runs"][1]["cutoff"], now.json()["cutoff"]);
  EXPECT_FALSE(j["runs"][1].contains("auc"));
  // The outcome queries went through the metered engine.
  auto history = Engage({"history", "--json"});
  EXPECT_NE(history.out.find("health"), std::string::npos);

  auto text = Engage({"models", "health", "engagement"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* s : {"cutoff 2024-11-01", "decile", "pending", "healthy: "}) {
    EXPECT_NE(text.out.find(s), std::string::npos) << s << " in\n" << text.out;
  }

  // Below the configured minimum: the report still prints, and the exit status is 1.
  std::ofstream(home_ + "/engage.toml", std::ios::app) << "\n[models]\nhealth_min_auc = 0.99\n";
  auto low = Engage({"models", "health", "engagement@1", "--json"});
  EXPECT_EQ(low.exit_code, 1) << low.err;
  EXPECT_EQ(low.json()["healthy"], false) << low.out;
  EXPECT_EQ(low.json()["runs"][0]["below_min_auc"], true);
  EXPECT_NE(low.err.find("engagement@1"), std::string::npos) << low.err;
  EXPECT_NE(low.err.find("below the minimum 0.99"), std::string::npos) << low.err;
  // Bad references.
  EXPECT_EQ(Engage({"models", "health", "engagement@9"}).exit_code, 3);
  EXPECT_EQ(Engage({"models", "health", "engagement@nope"}).exit_code, 3);
  EXPECT_EQ(Engage({"models", "health", "nope"}).exit_code, 3);
  EXPECT_EQ(Engage({"models", "health", "engagement@"}).exit_code, 2);
  EXPECT_EQ(Engage({"models", "health"}).exit_code, 2);
}

TEST_F(PipelineCliTest, AFailingStepNotifiesAndFailsTheExecution) {
  ASSERT_EQ(Engage({"init"}).exit_code, 0);
  // No events: the data-quality step fails, the Catch notifies, the execution fails.
  auto r = Engage({"run", "pipeline", "--name", "empty", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  Json j = r.json();
  EXPECT_EQ(j["status"], "FAILED");
  EXPECT_EQ(j["error"], "Engage.FailedPrecondition") << r.out;
  EXPECT_TRUE(std::filesystem::exists(home_ + "/notifications.log"));
  EXPECT_NE(ReadFileText(home_ + "/notifications.log").find("empty"), std::string::npos);
}

TEST_F(PipelineCliTest, ScoreAndModelsReportClearErrors) {
  ASSERT_EQ(Engage({"init"}).exit_code, 0);
  auto score = Engage({"score"});
  EXPECT_EQ(score.exit_code, 3) << score.err;  // no model yet
  EXPECT_NE(score.err.find("engagement"), std::string::npos);
  EXPECT_EQ(Engage({"models", "show", "nope@champion"}).exit_code, 3);
  EXPECT_EQ(Engage({"models", "promote", "Bad Name@1"}).exit_code, 2);
  auto bad = Engage({"run", "pipeline", "--ingest", "events"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  auto def = Engage({"run", "pipeline", "--print-definition"});
  ASSERT_EQ(def.exit_code, 0);
  EXPECT_EQ(def.json()["StartAt"], "Ingest");
}

}  // namespace
}  // namespace engage::testing
