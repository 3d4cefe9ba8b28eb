// End-to-end: the cost ledger, budgets and alerts through the real binary, with a real HTTP
// receiver on loopback for the alert webhook.
#include <gtest/gtest.h>

#include <fstream>

#include "engage/core/json.h"
#include "testing/cli_runner.h"
#include "testing/http_receiver.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

class MonitorCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = dir_.path() + "/home";
    ASSERT_EQ(Engage({"init"}).exit_code, 0);
    std::ofstream csv(dir_.path() + "/events.csv");
    csv << "event_id,customer_id,event_time,event_type,channel,amount,properties\n";
    for (int i = 1; i <= 200; ++i) {
      csv << i << "," << i % 17 << ",2024-05-" << (10 + i % 20) << " 10:00:00,purchase,web," << i
          << ",\n";
    }
    csv.close();
    auto ingest = Engage({"ingest", "events", dir_.path() + "/events.csv"});
    ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
  }

  CommandResult Engage(std::vector<std::string> args) {
    args.insert(args.begin(), {ENGAGE_BINARY, "--home", home_});
    return RunCommand(args, dir_.path());
  }

  void AppendConfig(const std::string& toml) {
    std::ofstream out(home_ + "/engage.toml", std::ios::app);
    out << "\n" << toml << "\n";
  }

  TempDir dir_;
  std::string home_;
};

TEST_F(MonitorCliTest, ABudgetCrossedByAQueryDeliversExactlyOneAlert) {
  HttpReceiver receiver;
  AppendConfig("[alerts]\nwebhook_url = \"" + receiver.url() + "\"");
  // Athena bills at least 10 MB a query: $0.0000455, so the second query crosses $0.00008.
  auto set = Engage({"budget", "set", "tiny", "--limit-usd", "0.00008", "--period", "day",
                     "--scope", "queries", "--json"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.json()["scope"], "queries");
  for (int i = 0; i < 4; ++i) {
    auto q = Engage({"query", "SELECT count(*) FROM events"});
    ASSERT_EQ(q.exit_code, 0) << q.err;
  }
  // Each engage command waits for its deliveries before it exits.
  std::vector<std::string> bodies = receiver.bodies();
  ASSERT_EQ(bodies.size(), 1u);
  Json alert = Json::parse(bodies[0]);
  EXPECT_EQ(alert["kind"], "budget");
  EXPECT_EQ(alert["name"], "tiny");
  EXPECT_EQ(alert["limit_usd"], 0.00008);
  EXPECT_EQ(alert["period"], "day");
  EXPECT_GE(alert["spent_usd"].get<double>(), 0.00008);
  EXPECT_EQ(alert["threshold"], 100);
  EXPECT_NE(alert["message"].get<std::string>().find("tiny"), std::string::npos);
  // Recorded, with its delivery.
  auto alerts = Engage({"alerts", "--json"});
  ASSERT_EQ(alerts.exit_code, 0) << alerts.err;
  ASSERT_EQ(alerts.json()["alerts"].size(), 1u);
  EXPECT_EQ(alerts.json()["alerts"][0]["deliveries"][0]["status"], "delivered");
  auto list = Engage({"budget", "list", "--json"});
  EXPECT_GE(list.json()["budgets"][0]["share"].get<double>(), 1.0);
}

TEST_F(MonitorCliTest, AHardBudgetRefusesAQueryBeforeItRunsWithExit6) {
  // The ingest's S3 PUTs count for table:events already; queries is only the queries.
  auto set =
      Engage({"budget", "set", "cap", "--limit-usd", "0.00006", "--scope", "queries", "--hard"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  ASSERT_EQ(Engage({"query", "SELECT count(*) FROM events"}).exit_code, 0);
  auto refused = Engage({"query", "SELECT count(*) FROM events"});
  EXPECT_EQ(refused.exit_code, 6) << refused.err;
  EXPECT_NE(refused.err.find("hard budget 'cap'"), std::string::npos) << refused.err;
  // A dry run costs nothing: it still shows the estimate.
  EXPECT_EQ(Engage({"query", "--dry-run", "SELECT count(*) FROM events"}).exit_code, 0);
  // Refused before it ran: the ledger has one query.
  auto cost = Engage({"cost", "--json"});
  ASSERT_EQ(cost.exit_code, 0) << cost.err;
  int64_t queries = 0;
  const Json report = cost.json();
  for (const Json& row : report["rows"]) {
    if (row["kind"] == "query") queries = row["entries"].get<int64_t>();
  }
  EXPECT_EQ(queries, 1) << cost.out;
  // Deleting the budget lifts it.
  ASSERT_EQ(Engage({"budget", "delete", "cap"}).exit_code, 0);
  EXPECT_EQ(Engage({"query", "SELECT count(*) FROM events"}).exit_code, 0);
  EXPECT_EQ(Engage({"budget", "delete", "cap"}).exit_code, 3);
}

TEST_F(MonitorCliTest, CostBreaksTheLedgerDownAndRejectsBadArguments) {
  ASSERT_EQ(Engage({"query", "SELECT count(*) FROM events"}).exit_code, 0);
  auto by_kind = Engage({"cost", "--by", "kind", "--json"});
  ASSERT_EQ(by_kind.exit_code, 0) << by_kind.err;
  Json j = by_kind.json();
  EXPECT_GT(j["total_usd"].get<double>(), 0);
  EXPECT_TRUE(j["local"].contains("cpu_seconds"));
  std::set<std::string> kinds;
  for (const Json& row : j["rows"]) kinds.insert(row["kind"].get<std::string>());
  EXPECT_TRUE(kinds.count("query")) << j.dump();
  EXPECT_TRUE(kinds.count("ingest")) << j.dump();
  EXPECT_TRUE(kinds.count("storage")) << j.dump();
  auto by_table = Engage({"cost", "--by", "table"});
  EXPECT_NE(by_table.out.find("events"), std::string::npos) << by_table.out;
  EXPECT_EQ(Engage({"cost", "--by", "colour"}).exit_code, 2);
  auto bad_since = Engage({"cost", "--since", "last week"});
  EXPECT_EQ(bad_since.exit_code, 2);
  EXPECT_NE(bad_since.err.find("--since"), std::string::npos) << bad_since.err;
  EXPECT_EQ(Engage({"budget", "set", "x", "--limit-usd", "-3"}).exit_code, 2);
  EXPECT_EQ(Engage({"budget", "set", "x", "--limit-usd", "1e-300"}).exit_code, 2);
  EXPECT_EQ(Engage({"cost", "--since", "2024-06-02", "--until", "2024-06-01"}).exit_code, 2);
  // A scope naming no table (a typo, another case) would silently disable the budget.
  auto typo = Engage({"budget", "set", "x", "--limit-usd", "1", "--scope", "table:Events"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("tables: customers, events"), std::string::npos) << typo.err;
  EXPECT_EQ(Engage({"budget", "set", "x", "--limit-usd", "1", "--scope", "pipeline:a b"}).exit_code,
            2);
  EXPECT_EQ(Engage({"budget", "set", "x", "--limit-usd", "1", "--scope", "tables:x"}).exit_code, 2);
}

TEST_F(MonitorCliTest, AMalformedPriceSheetOrAlertsSectionIsNamed) {
  std::string path = home_ + "/engage.toml";
  std::string toml = ReadFileText(path);
  const std::string key = "lambda_request_usd = 0.0000002";
  ASSERT_NE(toml.find(key), std::string::npos);
  std::string broken = toml;
  std::ofstream(path) << broken.replace(broken.find(key), key.size(), "lambda_request_usd = -1");
  auto bad = Engage({"cost"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("lambda_request_usd"), std::string::npos) << bad.err;
  std::ofstream(path) << toml << "\n[alerts]\nwebhook_url = \"https://example.com\"\n";
  bad = Engage({"alerts"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("webhook_url"), std::string::npos) << bad.err;
  broken = toml;
  const std::string scan = "scan_usd_per_tb = 5.0";
  std::ofstream(path) << broken.replace(broken.find(scan), scan.size(), "scan_usd_per_tb = 1e308");
  bad = Engage({"cost"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;  // a price that could make a cost infinite
  for (const char* url : {"http://", "http://:80/", "http://h:99999/", "http://h/a b"}) {
    std::ofstream(path) << toml << "\n[alerts]\nwebhook_url = \"" << url << "\"\n";
    EXPECT_EQ(Engage({"alerts"}).exit_code, 2) << url;
  }
  std::ofstream(path) << toml << "\n[alerts]\nretries = 3\n";
  bad = Engage({"alerts"});
  EXPECT_NE(bad.err.find("unknown key 'retries'"), std::string::npos) << bad.err;
}

TEST_F(MonitorCliTest, ADownWebhookDoesNotFailTheQueryThatRaisedTheAlert) {
  int port = 0;
  {
    HttpReceiver gone;
    port = std::stoi(gone.url().substr(17, 5));
  }
  AppendConfig("[alerts]\nwebhook_url = \"http://127.0.0.1:" + std::to_string(port) +
               "/x\"\nmax_attempts = 2\ntimeout_seconds = 1");
  ASSERT_EQ(Engage({"budget", "set", "tiny", "--limit-usd", "0.00001"}).exit_code, 0);
  auto q = Engage({"query", "SELECT count(*) FROM events"});
  EXPECT_EQ(q.exit_code, 0) << q.err;
  auto alerts = Engage({"alerts", "--json"});
  ASSERT_EQ(alerts.json()["alerts"].size(), 1u) << alerts.out;
  EXPECT_EQ(alerts.json()["alerts"][0]["deliveries"][0]["status"], "failed");
}

}  // namespace
}  // namespace engage::testing
