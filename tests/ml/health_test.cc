#include "engage/ml/health.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

// Events and predictions written by hand, so every outcome, AUC and log-loss is known.
//
// Version 1 (card: horizon 10 days, purchases qualify) scored customers 1-5 at cutoff 2024-05-01:
// outcome window [2024-05-01, 2024-05-11). Customers 1 (purchase at 05-01 00:00:00, the first
// instant) and 3 (purchase at 05-10 23:59:59, the last second) engaged; 2 bought at 05-11
// 00:00:00 (just after), 4 only had a session in the window (not qualifying) and 5 bought at
// 04-30 23:59:59 (just before). It scored 1-3 again at cutoff 2024-05-25, whose window ends
// 2024-06-04, after the events (the last is on 2024-05-31): pending.
// Version 2 (no horizon in its card: [engagement]'s 30 days) scored 1-4 at cutoff 2024-04-01
// (window [04-01, 05-01)) in reverse: the engaged customers (1: purchase 04-15; 3: 04-20) got the
// lowest scores.
class HealthTest : public LakeTest {
 protected:
  void SetUp() override {
    LakeTest::SetUp();
    std::string events =
        dir_.WriteFile("events.csv", EventsHeader() +
                                         "1,1,2024-05-01 00:00:00,purchase,web,10,\n"
                                         "2,3,2024-05-10 23:59:59,purchase,app,5,\n"
                                         "3,2,2024-05-11 00:00:00,purchase,web,7,\n"
                                         "4,4,2024-05-05 12:00:00,session,web,,\n"
                                         "5,5,2024-04-30 23:59:59,purchase,store,3,\n"
                                         "6,1,2024-04-15 09:00:00,purchase,web,4,\n"
                                         "7,3,2024-04-20 09:00:00,purchase,web,4,\n"
                                         "8,2,2024-04-10 09:00:00,session,web,,\n"
                                         "9,4,2024-05-31 18:00:00,session,web,,\n");
    auto ingested = IngestFiles("events", {events});
    ASSERT_TRUE(ingested.ok()) << ingested.status().ToString();
    ASSERT_EQ(ingested->record.rows_rejected, 0);
    OpenAll();
    Register("engagement", Json{{"kind", "engagement"},
                                {"fingerprint", "f1"},
                                {"data",
                                 {{"horizon_days", 10},
                                  {"qualifying_types", {"purchase"}},
                                  {"data_end", "2024-05-01"}}}});
    Register("engagement", Json{{"kind", "engagement"}, {"fingerprint", "f2"}});
  }

  void OpenAll() {
    engine_.reset();
    lake_ = Open(false);
    auto qe = sql::QueryEngine::Open(*lake_, 1);
    ASSERT_TRUE(qe.ok()) << qe.status().ToString();
    engine_ = std::move(*qe);
    auto reg = ml::ModelRegistry::Open(home_, clock_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    registry_ = std::move(*reg);
  }

  void Register(const std::string& name, Json card) {
    auto v = registry_->Register(name, "{}", std::move(card), {});
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }

  // One scoring run: (customer_id, score) rows of `model`@`version` at `cutoff`, scored at
  // `scored_at` (YYYY-MM-DD HH:MM:SS), ingested into the predictions table.
  void Score(const std::string& scored_at, const std::string& cutoff, const std::string& model,
             int64_t version, const std::vector<std::pair<int64_t, double>>& rows) {
    std::string values;
    for (const auto& [id, score] : rows) {
      values += (values.empty() ? "" : ", ") + fmt::format("({}, {})", id, score);
    }
    std::string file = dir_.path() + "/p-" + std::to_string(++files_) + ".parquet";
    Scalar(fmt::format(
        "COPY (SELECT c AS customer_id, TIMESTAMP '{}' AS scored_at, DATE '{}' AS cutoff, s AS "
        "score, 'low' AS segment, NULL::DOUBLE AS p_alive, NULL::DOUBLE AS "
        "expected_transactions, NULL::DOUBLE AS clv, NULL::VARCHAR AS reasons, '{}' AS model, "
        "{}::BIGINT AS model_version FROM (VALUES {}) v(c, s)) TO '{}' (FORMAT parquet)",
        scored_at, cutoff, model, version, values, file));
    auto ingested = IngestFiles("predictions", {file});
    ASSERT_TRUE(ingested.ok()) << ingested.status().ToString();
    ASSERT_EQ(ingested->record.rows_rejected, 0);
    OpenAll();
  }

  void ScoreAll() {
    Score("2024-05-02 08:00:00", "2024-05-01", "engagement", 1,
          {{1, 0.9}, {2, 0.8}, {3, 0.7}, {4, 0.3}, {5, 0.2}});
    Score("2024-05-26 08:00:00", "2024-05-25", "engagement", 1, {{1, 0.5}, {2, 0.4}, {3, 0.1}});
    Score("2024-04-02 08:00:00", "2024-04-01", "engagement", 2,
          {{1, 0.1}, {2, 0.9}, {3, 0.2}, {4, 0.8}});
  }

  Result<ml::HealthReport> Health(const std::string& model, double min_auc = 0.6) {
    return ml::ModelHealth(*engine_, *registry_, lake_->config().engagement,
                           {.model = model, .min_auc = min_auc});
  }

  int files_ = 0;
  std::unique_ptr<lake::Lake> lake_;
  std::unique_ptr<sql::QueryEngine> engine_;
  std::unique_ptr<ml::ModelRegistry> registry_;
};

TEST_F(HealthTest, RealisedMetricsMatchTheHandComputedOutcomes) {
  ScoreAll();
  auto r = Health("engagement");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model, "engagement");
  EXPECT_FALSE(r->version.has_value());
  EXPECT_EQ(r->data_end, "2024-06-01");
  ASSERT_EQ(r->runs.size(), 3u);
  // Oldest cutoff first.
  const ml::HealthRun& v2 = r->runs[0];
  const ml::HealthRun& a = r->runs[1];
  const ml::HealthRun& pending = r->runs[2];

  EXPECT_EQ(a.version, 1);
  EXPECT_EQ(a.scored_at, "2024-05-02T08:00:00");
  EXPECT_EQ(a.cutoff, "2024-05-01");
  EXPECT_EQ(a.horizon_days, 10);  // the card's, not [engagement]'s 30
  EXPECT_EQ(a.window_end, "2024-05-11");
  ASSERT_TRUE(a.evaluated);
  EXPECT_EQ(a.customers, 5);
  EXPECT_EQ(a.positives, 2);  // customers 1 and 3
  // Positives {0.9, 0.7} against negatives {0.8, 0.3, 0.2}: 5 of 6 pairs ordered right.
  EXPECT_NEAR(a.auc, 5.0 / 6.0, 1e-9);
  double ll = -(std::log(0.9) + std::log(0.2) + std::log(0.7) + std::log(0.7) + std::log(0.8)) / 5;
  EXPECT_NEAR(a.log_loss, ll, 1e-6);
  EXPECT_FALSE(a.below_min_auc);
  EXPECT_TRUE(a.notes.empty());  // trained on events before 2024-05-01: out of sample
  // Five customers in ten deciles: every other decile holds one, lowest score first.
  ASSERT_EQ(a.calibration.size(), 5u);
  const int deciles[] = {2, 4, 6, 8, 10};
  const double predicted[] = {0.2, 0.3, 0.7, 0.8, 0.9};
  const double observed[] = {0, 0, 1, 0, 1};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(a.calibration[i].decile, deciles[i]);
    EXPECT_EQ(a.calibration[i].customers, 1);
    EXPECT_NEAR(a.calibration[i].predicted, predicted[i], 1e-6);
    EXPECT_EQ(a.calibration[i].observed, observed[i]);
  }

  EXPECT_EQ(pending.version, 1);
  EXPECT_EQ(pending.cutoff, "2024-05-25");
  EXPECT_EQ(pending.window_end, "2024-06-04");
  EXPECT_FALSE(pending.evaluated);
  EXPECT_EQ(pending.customers, 3);

  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v2.horizon_days, 30);  // no horizon in its card: [engagement]'s
  EXPECT_EQ(v2.window_end, "2024-05-01");
  ASSERT_TRUE(v2.evaluated);
  EXPECT_EQ(v2.positives, 2);
  EXPECT_NEAR(v2.auc, 0.0, 1e-9);  // every pair ordered wrong
  EXPECT_TRUE(v2.below_min_auc);
  EXPECT_TRUE(v2.notes.empty());  // its card says nothing of its training data

  // The verdict follows the latest evaluated run (version 1 at 2024-05-01), not the older one.
  EXPECT_EQ(r->LatestEvaluated(), &a);
  EXPECT_TRUE(r->healthy);
  EXPECT_NE(r->verdict.find("engagement@1"), std::string::npos) << r->verdict;

  Json j = r->ToJson();
  EXPECT_EQ(j["healthy"], true);
  EXPECT_EQ(j["min_auc"], 0.6);
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["runs"][1]["status"], "evaluated");
  EXPECT_EQ(j["runs"][1]["calibration"][4]["decile"], 10);
  EXPECT_EQ(j["runs"][2]["status"], "pending");
  EXPECT_FALSE(j["runs"][2].contains("auc"));
  EXPECT_EQ(j["runs"][0]["below_min_auc"], true);
  std::string text = r->ToText();
  for (const char* s : {"engagement@1 scored at 2024-05-02T08:00:00, cutoff 2024-05-01, outcomes "
                        "2024-05-01 .. 2024-05-10 (10 days)",
                        "AUC 0.8333", "pending", "below 0.60", "healthy: "}) {
    EXPECT_NE(text.find(s), std::string::npos) << s << " in\n" << text;
  }
}

// The outcome query of a run reads its own predictions partition and the events partitions of its
// window only: replayed as dry runs, the recorded queries resolve to exactly those.
TEST_F(HealthTest, OutcomeQueriesReadOnlyTheirPartitions) {
  ScoreAll();
  ASSERT_TRUE(Health("engagement@1").ok());
  auto history = lake_->catalog().QueryHistory(100);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  int outcome_queries = 0;
  for (const lake::QueryRecord& q : *history) {
    if (q.source != "health" || q.sql.find("WITH p AS") == std::string::npos) continue;
    ++outcome_queries;
    EXPECT_EQ(q.status, "ok") << q.error;
    auto plan = engine_->Run({.sql = q.sql, .dry_run = true});
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    std::map<std::string, int64_t> partitions;
    for (const sql::TableScan& scan : plan->scans)
      partitions[scan.table] += scan.partitions_scanned;
    // Run 1 at 2024-05-01 (scored 2024-05-02): events on 05-01, 05-05 and 05-10, not 04-30 or
    // 05-11 around the window.
    EXPECT_EQ(partitions["predictions"], 1) << q.sql;
    EXPECT_EQ(partitions["events"], 3) << q.sql;
  }
  EXPECT_EQ(outcome_queries, 1);  // the pending run reads no outcomes
}

TEST_F(HealthTest, AVersionBelowTheMinimumIsUnhealthy) {
  ScoreAll();
  auto r = Health("engagement@2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, 2);
  ASSERT_EQ(r->runs.size(), 1u);
  EXPECT_FALSE(r->healthy);
  EXPECT_NE(r->verdict.find("engagement@2"), std::string::npos) << r->verdict;
  EXPECT_NE(r->verdict.find("2024-04-01"), std::string::npos) << r->verdict;
  EXPECT_NE(r->ToText().find("UNHEALTHY"), std::string::npos);
  // An alias names its version's runs only.
  ASSERT_TRUE(registry_->SetAlias("engagement", "champion", 1).ok());
  auto champion = Health("engagement@champion");
  ASSERT_TRUE(champion.ok()) << champion.status().ToString();
  EXPECT_EQ(champion->version, 1);
  EXPECT_EQ(champion->runs.size(), 2u);
  EXPECT_TRUE(champion->healthy);
  // A version trained on events up to 2024-05-20 has seen the outcomes of a run at 2024-05-01.
  Register("engagement", Json{{"kind", "engagement"},
                              {"fingerprint", "f3"},
                              {"data", {{"horizon_days", 10}, {"data_end", "2024-05-20"}}}});
  Score("2024-05-21 08:00:00", "2024-05-01", "engagement", 3, {{1, 0.9}, {2, 0.1}});
  auto backfill = Health("engagement@3");
  ASSERT_TRUE(backfill.ok()) << backfill.status().ToString();
  ASSERT_EQ(backfill->runs.size(), 1u);
  ASSERT_EQ(backfill->runs[0].notes.size(), 1u);
  EXPECT_EQ(backfill->runs[0].notes[0].rfind("in-sample: engagement@3", 0), 0u)
      << backfill->runs[0].notes[0];
  // The minimum decides: 5/6 is below 0.9.
  auto strict = Health("engagement@1", 0.9);
  ASSERT_TRUE(strict.ok()) << strict.status().ToString();
  EXPECT_FALSE(strict->healthy);
  EXPECT_TRUE(strict->runs[0].below_min_auc);
}

TEST_F(HealthTest, OnlyPendingRunsIsAnAnswerNotAnError) {
  Score("2024-05-26 08:00:00", "2024-05-25", "engagement", 1, {{1, 0.5}, {2, 0.4}});
  auto r = Health("engagement");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->runs.size(), 1u);
  EXPECT_FALSE(r->runs[0].evaluated);
  EXPECT_EQ(r->LatestEvaluated(), nullptr);
  EXPECT_TRUE(r->healthy);
  EXPECT_NE(r->verdict.find("pending"), std::string::npos) << r->verdict;
  EXPECT_NE(r->verdict.find("reach 2024-06-03"), std::string::npos) << r->verdict;
}

TEST_F(HealthTest, BadInputIsAClearError) {
  ScoreAll();
  auto unknown = Health("nope");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("nope"), std::string::npos);
  auto alias = Health("engagement@champion");
  EXPECT_EQ(alias.status().code(), StatusCode::kNotFound);
  EXPECT_NE(alias.status().message().find("champion"), std::string::npos);
  auto version = Health("engagement@9");
  EXPECT_EQ(version.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Health("engagement@0").status().code(), StatusCode::kInvalidArgument);
  // A version that never scored: what to run.
  Register("engagement", Json{{"kind", "engagement"}, {"fingerprint", "f3"}});
  auto never = Health("engagement@3");
  EXPECT_EQ(never.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(never.status().message().find("engagement@3 has never scored"), std::string::npos)
      << never.status().message();
  EXPECT_NE(never.status().message().find("engage score --model engagement@3"), std::string::npos)
      << never.status().message();
  Register("fresh", Json{{"kind", "engagement"}, {"fingerprint", "f4"}});
  EXPECT_EQ(Health("fresh").status().code(), StatusCode::kFailedPrecondition);
  // A model of another kind is never scored by `engage score`.
  Register("churn", Json{{"kind", "table"}});
  auto table = Health("churn");
  EXPECT_EQ(table.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(table.status().message().find("kind 'table'"), std::string::npos);
  // The outcomes' table is not configured.
  EngagementConfig other = lake_->config().engagement;
  other.events_table = "clicks";
  auto missing =
      ml::ModelHealth(*engine_, *registry_, other, {.model = "engagement", .min_auc = 0.6});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'clicks'"), std::string::npos)
      << missing.status().message();
}

TEST_F(HealthTest, AnEventsTableWithNoEventsIsAClearError) {
  // A second home: predictions but no events.
  home_.root = dir_.path() + "/empty-home";
  ASSERT_OK(lake::Lake::Init(home_, false));
  OpenAll();
  Register("engagement", Json{{"kind", "engagement"}, {"fingerprint", "f1"}});
  Score("2024-05-02 08:00:00", "2024-05-01", "engagement", 1, {{1, 0.9}, {2, 0.1}});
  auto r = Health("engagement");
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("no events"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("engagement"), std::string::npos) << r.status().message();
}

TEST(HealthRunTest, OneClassHasNoAucButStillALogLossAndCalibration) {
  ml::HealthRun run;
  std::vector<float> labels = {0, 0, 0}, scores = {0.1f, 0.2f, 0.3f};
  ASSERT_TRUE(ml::EvaluateHealthRun(labels, scores, 0.6, &run).ok());
  EXPECT_TRUE(std::isnan(run.auc));
  EXPECT_FALSE(run.below_min_auc);  // undefined is not below
  ASSERT_EQ(run.notes.size(), 1u);
  EXPECT_NE(run.notes[0].find("none of the 3"), std::string::npos) << run.notes[0];
  EXPECT_NEAR(run.log_loss, -(std::log(0.9) + std::log(0.8) + std::log(0.7)) / 3, 1e-6);
  EXPECT_EQ(run.calibration.size(), 3u);
  EXPECT_TRUE(ml::HealthReport{.runs = {run}}.ToJson()["runs"][0]["auc"].is_null());
  std::vector<float> bad = {0.1f, 1.5f, 0.3f};
  EXPECT_EQ(ml::EvaluateHealthRun(labels, bad, 0.6, &run).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace engage::testing
