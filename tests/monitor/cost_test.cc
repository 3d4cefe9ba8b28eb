// The cost ledger, budgets and alerts: pricing, breakdowns that count nested work once, storage
// sampled per day, budgets that refuse and alert once per period, and alert delivery to a real
// loopback webhook and a command (and a down webhook that does not block).
#include "engage/monitor/cost.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "engage/monitor/alerts.h"
#include "engage/monitor/budgets.h"
#include "lake/lake_fixture.h"
#include "testing/http_receiver.h"

namespace engage::testing {
namespace {

class CostTest : public LakeTest {
 protected:
  std::unique_ptr<monitor::Ledger> Ledger() {
    auto l = monitor::Ledger::Open(home_.meta_db(), clock_);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return std::move(*l);
  }
  static lake::LedgerEntry Entry(const std::string& kind, double usd, double wall,
                                 const std::string& id = "", const std::string& parent = "",
                                 const std::string& step = "") {
    lake::LedgerEntry e;
    e.kind = kind;
    e.name = kind;
    e.id = id;
    e.parent = parent;
    e.step = step;
    e.cloud_usd = usd;
    e.usage.wall_seconds = wall;
    e.usage.cpu_seconds = wall;
    return e;
  }
};

TEST_F(CostTest, PricesFollowTheSheet) {
  Prices p;
  Json d;
  // A minute of 1 vCPU and 2 GB, billed at least a minute.
  Usage u;
  u.wall_seconds = 10;
  u.cpu_seconds = 5;
  EXPECT_NEAR(monitor::FargateUsd(p, u, &d), 60.0 / 3600 * (0.04048 + 2 * 0.004445), 1e-12);
  EXPECT_EQ(d["vcpus"], 1);
  // 3 cores busy for 100 s with 5 GiB peak: 4 vCPUs, 8 GB (2 per vCPU), 100 s.
  u.wall_seconds = 100;
  u.cpu_seconds = 300;
  u.peak_memory_bytes = 5LL << 30;
  EXPECT_NEAR(monitor::FargateUsd(p, u, &d), 100.0 / 3600 * (4 * 0.04048 + 8 * 0.004445), 1e-12);
  EXPECT_EQ(d["memory_gb"], 8);
  EXPECT_NEAR(monitor::LambdaUsd(p, 1000, 2.0, nullptr), 1000 * 0.0000002 + 2.0 * 0.0000166667,
              1e-15);
  EXPECT_NEAR(monitor::TransitionsUsd(p, 40, nullptr), 40 * 0.000025, 1e-15);
  EXPECT_NEAR(monitor::DynamoUsd(p, 1'000'000, 1'000'000, nullptr), 0.125 + 0.625, 1e-12);
  // 1 GiB for an average month.
  EXPECT_NEAR(monitor::S3Usd(p, 1LL << 30, 30.4375, 0, nullptr), 0.023, 1e-12);
}

TEST_F(CostTest, BreakdownsCountNestedWorkOnceAndTotalsAreTopLevel) {
  auto ledger = Ledger();
  // An execution (5 s) with a step (4 s) that ran a query (3 s), and a query on its own (1 s).
  lake::LedgerEntry exec = Entry("execution", 0.01, 5, "e1");
  exec.execution_id = "x";
  lake::LedgerEntry step = Entry("step", 0.02, 4, "s1", "e1", "Features");
  step.execution_id = "x";
  lake::LedgerEntry nested = Entry("query", 0.03, 3, "", "s1", "Features");
  nested.execution_id = "x";
  ASSERT_OK(ledger->Record(exec));
  ASSERT_OK(ledger->Record(step));
  ASSERT_OK(ledger->Record(nested));
  ASSERT_OK(ledger->Record(Entry("query", 0.04, 1)));
  ASSERT_OK_AND_ASSIGN(monitor::CostReport by_kind, ledger->Report({}));
  EXPECT_NEAR(by_kind.total_usd, 0.10, 1e-12);
  EXPECT_EQ(by_kind.entries, 4);
  // Here: the execution and the lone query (the step and its query are inside the execution).
  EXPECT_NEAR(by_kind.local.wall_seconds, 6, 1e-12);
  ASSERT_EQ(by_kind.rows.size(), 3u);
  EXPECT_EQ(by_kind.rows[0].key, "query");  // most expensive first
  EXPECT_NEAR(by_kind.rows[0].cloud_usd, 0.07, 1e-12);
  EXPECT_NEAR(by_kind.rows[0].usage.wall_seconds, 4, 1e-12);
  ASSERT_OK_AND_ASSIGN(monitor::CostReport by_step, ledger->Report({.by = "step"}));
  for (const auto& row : by_step.rows) {
    // Features: the step's own 4 s, its query inside them.
    if (row.key == "Features") {
      EXPECT_NEAR(row.usage.wall_seconds, 4, 1e-12);
    }
  }
  ASSERT_OK_AND_ASSIGN(monitor::ExecutionCost c, ledger->ForExecution("x"));
  EXPECT_NEAR(c.total_usd, 0.06, 1e-12);
  EXPECT_NEAR(c.local.wall_seconds, 5, 1e-12);
  EXPECT_EQ(c.queries, 1);
  EXPECT_EQ(c.ToJson()["steps"].size(), 2u);
  // Time bounds: everything is at the fixture's now.
  ASSERT_OK_AND_ASSIGN(monitor::CostReport later, ledger->Report({.since = "2024-06-02"}));
  EXPECT_EQ(later.entries, 0);
  EXPECT_EQ(later.total_usd, 0);
}

TEST_F(CostTest, BadReportArgumentsNameTheFlag) {
  auto ledger = Ledger();
  EXPECT_STATUS_CODE(ledger->Report({.by = "colour"}), StatusCode::kInvalidArgument);
  auto bad = ledger->Report({.since = "yesterday"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--since"), std::string::npos);
  EXPECT_STATUS_CODE(ledger->Report({.until = "2024-13-01"}), StatusCode::kInvalidArgument);
  ASSERT_OK(ledger->Report({.since = "2024-06-01T10:00:00Z"}).status());
  EXPECT_STATUS_CODE(monitor::CheckScope("table:"), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(monitor::CheckScope("everything"), StatusCode::kInvalidArgument);
}

TEST_F(CostTest, StorageIsSampledOncePerDayAndGapsAreFilled) {
  auto ledger = Ledger();
  Prices p;
  ASSERT_OK(ledger->SampleStorage(p, 1LL << 30));
  ASSERT_OK(ledger->SampleStorage(p, 2LL << 30));  // same day: replaced
  ASSERT_OK_AND_ASSIGN(monitor::CostReport one, ledger->Report({}));
  EXPECT_EQ(one.entries, 1);
  EXPECT_NEAR(one.total_usd, 2 * 0.023 / 30.4375, 1e-12);
  clock_.AdvanceMicros(3LL * 86400 * 1000000);  // three days later
  ASSERT_OK(ledger->SampleStorage(p, 4LL << 30));
  ASSERT_OK_AND_ASSIGN(monitor::CostReport days, ledger->Report({.by = "day"}));
  ASSERT_EQ(days.entries, 4);  // the first day, two days at its size, today
  EXPECT_NEAR(days.total_usd, (2 + 2 + 2 + 4) * 0.023 / 30.4375, 1e-12);
}

TEST_F(CostTest, BudgetsValidateRefuseAndAlertOncePerPeriod) {
  ASSERT_OK_AND_ASSIGN(auto budgets, monitor::Budgets::Open(home_.meta_db(), clock_));
  EXPECT_STATUS_CODE(budgets->Set({.name = "", .limit_usd = 1}), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(budgets->Set({.name = "a b", .limit_usd = 1}), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(budgets->Set({.name = "x", .limit_usd = 0}), StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(budgets->Set({.name = "x", .limit_usd = std::nan("")}),
                     StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(budgets->Set({.name = "x", .limit_usd = 1, .period = "week"}),
                     StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(budgets->Set({.name = "x", .limit_usd = 1, .scope = "table:"}),
                     StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(budgets->Delete("nope"), StatusCode::kNotFound);
  ASSERT_OK(budgets->Set({.name = "q", .limit_usd = 1.0, .period = "day", .scope = "queries"}));
  ASSERT_OK(
      budgets->Set({.name = "events", .limit_usd = 0.5, .scope = "table:events", .hard = true}));
  monitor::WorkScope query{.query = true, .tables = {"events"}};
  ASSERT_OK(budgets->Admit(query, 0.4));
  ASSERT_OK_AND_ASSIGN(std::vector<monitor::Alert> none, budgets->Crossings());
  EXPECT_TRUE(none.empty());
  // $0.45 on events: 90% of the hard one; a $0.10 estimate would cross it, a customers query not.
  lake::LedgerEntry e;
  e.kind = "query";
  e.name = "cli";
  e.tables = "customers,events";
  e.cloud_usd = 0.45;
  ASSERT_OK(budgets->ledger().Record(e));
  Status refused = budgets->Admit(query, 0.10);
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("'events'"), std::string::npos) << refused.message();
  ASSERT_OK(budgets->Admit({.query = true, .tables = {"customers"}}, 0.10));
  ASSERT_OK_AND_ASSIGN(std::vector<monitor::Alert> crossed, budgets->Crossings());
  ASSERT_EQ(crossed.size(), 1u);  // events at 90%: its 80% alert; q is at 45%
  EXPECT_EQ(crossed[0].name, "events");
  EXPECT_EQ(crossed[0].details["threshold"], 80);
  EXPECT_EQ(crossed[0].details["limit_usd"], 0.5);
  EXPECT_EQ(crossed[0].details["period"], "month");
  ASSERT_OK_AND_ASSIGN(crossed, budgets->Crossings());
  EXPECT_TRUE(crossed.empty());  // once per period
  // Jumping past 100% of q (from 45% to 145%): one alert, at 100%.
  e.cloud_usd = 1.0;
  ASSERT_OK(budgets->ledger().Record(e));
  ASSERT_OK_AND_ASSIGN(crossed, budgets->Crossings());
  ASSERT_EQ(crossed.size(), 2u);  // q at 100% (one alert), events at 100%
  for (const auto& a : crossed) EXPECT_EQ(a.details["threshold"], 100);
  // A hard budget already crossed refuses to start a pipeline it covers; a soft one never does.
  EXPECT_EQ(budgets->Admit({}, 0).code(), StatusCode::kOk);
  ASSERT_OK(budgets->Set({.name = "all", .limit_usd = 1, .hard = true}));
  EXPECT_EQ(budgets->Admit({.pipeline = "engagement"}, 0).code(), StatusCode::kResourceExhausted);
  // The next day, the day budget starts again.
  clock_.AdvanceMicros(86400LL * 1000000);
  ASSERT_OK_AND_ASSIGN(auto statuses, budgets->Statuses());
  for (const auto& s : statuses) {
    if (s.budget.name == "q") {
      EXPECT_EQ(s.spent_usd, 0);
    }
  }
}

TEST_F(CostTest, AlertsReachAWebhookAndACommandAndRecordTheDelivery) {
  HttpReceiver receiver;
  std::string out = dir_.path() + "/command.out";
  AlertsConfig channels;
  channels.webhook_url = receiver.url();
  channels.command = "cat > " + out;
  monitor::AlertSender sender(home_.meta_db(), clock_);
  ASSERT_OK_AND_ASSIGN(
      monitor::Alert a,
      sender.Raise(channels,
                   {.kind = "budget",
                    .name = "daily",
                    .message = "over",
                    .details = {{"spent_usd", 2.5}, {"limit_usd", 2.0}, {"period", "day"}}}));
  ASSERT_TRUE(sender.Flush(10000));
  ASSERT_EQ(receiver.bodies().size(), 1u);
  Json body = Json::parse(receiver.bodies()[0]);
  EXPECT_EQ(body["kind"], "budget");
  EXPECT_EQ(body["name"], "daily");
  EXPECT_EQ(body["message"], "over");
  EXPECT_EQ(body["spent_usd"], 2.5);
  EXPECT_EQ(body["limit_usd"], 2.0);
  EXPECT_EQ(body["period"], "day");
  std::ifstream in(out);
  Json from_command = Json::parse(in);
  EXPECT_EQ(from_command["id"], a.id);
  ASSERT_OK_AND_ASSIGN(auto listed, sender.List(10));
  ASSERT_EQ(listed.size(), 1u);
  for (const Json& d : listed[0].deliveries) EXPECT_EQ(d["status"], "delivered") << d.dump();
  ASSERT_OK_AND_ASSIGN(bool seen, sender.Seen("budget", "daily", "over"));
  EXPECT_TRUE(seen);
}

TEST_F(CostTest, ADownWebhookIsRetriedThenRecordedAsFailedWithoutBlocking) {
  AlertsConfig channels;
  {
    HttpReceiver gone;  // a port nobody listens on once it closes
    channels.webhook_url = gone.url();
  }
  channels.max_attempts = 3;
  channels.timeout_seconds = 1;
  monitor::AlertSender sender(home_.meta_db(), clock_);
  ASSERT_OK(sender.Raise(channels, {.kind = "execution", .name = "p", .message = "failed"})
                .status());  // returns at once: delivery is the sender's thread's
  ASSERT_TRUE(sender.Flush(20000));
  ASSERT_OK_AND_ASSIGN(auto listed, sender.List(10));
  ASSERT_EQ(listed.size(), 1u);
  const Json& d = listed[0].deliveries[0];
  EXPECT_EQ(d["status"], "failed");
  EXPECT_EQ(d["attempts"], 3);
  EXPECT_NE(d["error"].get<std::string>().find("cannot connect"), std::string::npos) << d.dump();
  // A webhook answering 500 fails too; a command that exits 1 fails, naming its status.
  HttpReceiver broken(500);
  EXPECT_STATUS_CODE(monitor::PostJson(broken.url(), "{}", 2000), StatusCode::kUnavailable);
  EXPECT_STATUS_CODE(monitor::RunAlertCommand("exit 1", "{}", 2000), StatusCode::kUnavailable);
  EXPECT_STATUS_CODE(monitor::RunAlertCommand("sleep 5", "{}", 200), StatusCode::kDeadlineExceeded);
  EXPECT_STATUS_CODE(monitor::PostJson("https://example.com/", "{}", 200),
                     StatusCode::kInvalidArgument);
}

TEST_F(CostTest, PendingDeliveriesAreResumedByTheNextSender) {
  HttpReceiver receiver;
  AlertsConfig none;  // recorded with a webhook channel pending, by a sender that then stops
  AlertsConfig channels;
  channels.webhook_url = receiver.url();
  {
    monitor::AlertSender first(home_.meta_db(), clock_);
    ASSERT_OK_AND_ASSIGN(auto listed, first.List(1));
    EXPECT_TRUE(listed.empty());
  }
  {
    // Record an alert whose webhook delivery never ran (its process ended first).
    SqliteDb db = *SqliteDb::Open(home_.meta_db());
    monitor::AlertSender probe(home_.meta_db(), clock_);
    ASSERT_OK(probe.List(1).status());  // the table exists
    Json alert = {
        {"id", "20240601T000000-aaaaaaaa"},
        {"at", "2024-06-01T00:00:00Z"},
        {"kind", "check"},
        {"name", "events"},
        {"message", "failed"},
        {"deliveries",
         Json::array({Json{
             {"channel", "webhook"}, {"status", "pending"}, {"attempts", 0}, {"error", ""}}})}};
    auto st = db.Prepare("INSERT INTO alerts (id, at, kind, name, alert) VALUES (?, ?, ?, ?, ?)");
    ASSERT_OK(st.status());
    st->Bind(1, alert["id"].get<std::string>()).Bind(2, alert["at"].get<std::string>());
    st->Bind(3, "check").Bind(4, "events").Bind(5, alert.dump());
    ASSERT_OK(st->Run());
  }
  monitor::AlertSender next(home_.meta_db(), clock_);
  ASSERT_OK(next.ResumePending(channels));
  ASSERT_TRUE(next.Flush(10000));
  EXPECT_EQ(receiver.bodies().size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto listed, next.List(1));
  EXPECT_EQ(listed[0].deliveries[0]["status"], "delivered");
}

}  // namespace
}  // namespace engage::testing
