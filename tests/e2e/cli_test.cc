// End-to-end tests: run the real `engage` binary on a temporary home.
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "engage/core/clock.h"
#include "engage/core/json.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  Json json() const { return Json::parse(out, nullptr, false); }
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { home_ = dir_.path() + "/home"; }

  // Runs engage with stdin from `stdin_path` (default /dev/null), stdout and stderr to files.
  RunResult Run(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null") {
    std::string cmd = Quote(ENGAGE_BINARY) + " --home " + Quote(home_);
    for (const auto& a : args) cmd += " " + Quote(a);
    std::string out = dir_.path() + "/.out", err = dir_.path() + "/.err";
    cmd += " >" + out + " 2>" + err + " <" + Quote(stdin_path);
    int rc = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    return r;
  }

  // Runs engage with stdout and stderr on a pseudo-terminal (as a user at a terminal sees it);
  // the output with the terminal's CRs removed.
  RunResult RunInTerminal(const std::vector<std::string>& args) {
    std::vector<std::string> argv{ENGAGE_BINARY, "--home", home_};
    argv.insert(argv.end(), args.begin(), args.end());
    int master = -1;
    pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    RunResult r;
    if (pid < 0) return r;
    if (pid == 0) {
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(ENGAGE_BINARY, cargv.data());
      ::_exit(127);
    }
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) {
        for (ssize_t i = 0; i < n; ++i) {
          if (buf[i] != '\r') r.out.push_back(buf[i]);
        }
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;  // EIO once the child has exited and closed the terminal
      }
    }
    ::close(master);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
  }

  void Init() {
    auto r = Run({"init"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  int64_t Count(const std::string& sql) {
    auto r = Run({"query", "--json", sql});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    Json j = r.json();
    if (!j.is_object()) return -1;
    return j["rows"][0][0].get<int64_t>();
  }

  // Appends examples/tables/<name>.toml, the documented table config for a public data set.
  void AppendExample(const std::string& name) {
    AppendConfig(ReadAll(std::string(ENGAGE_SOURCE_DIR) + "/examples/tables/" + name + ".toml"));
  }

  void AppendConfig(const std::string& toml) {
    std::ofstream out(home_ + "/engage.toml", std::ios::app);
    out << "\n" << toml << "\n";
  }

  TempDir dir_;
  std::string home_;
};

TEST_F(CliTest, EveryCommandHasHelp) {
  auto top = Run({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* c :
       {"init", "gen", "ingest", "query", "tables", "retention", "compact", "history"}) {
    EXPECT_NE(top.out.find(c), std::string::npos) << c;
    auto r = Run({c, "--help"});
    EXPECT_EQ(r.exit_code, 0) << c;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << c;
  }
  EXPECT_EQ(Run({"retention", "apply", "--help"}).exit_code, 0);
}

TEST_F(CliTest, UnknownCommandOrFlagIsAUsageError) {
  EXPECT_EQ(Run({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Run({"query", "--no-such-flag", "SELECT 1"}).exit_code, 2);
}

TEST_F(CliTest, InitTwiceIsRefusedAndCommandsNeedAHome) {
  auto q = Run({"tables"});
  EXPECT_EQ(q.exit_code, 3);
  EXPECT_NE(q.err.find("engage init"), std::string::npos) << q.err;
  Init();
  auto again = Run({"init"});
  EXPECT_EQ(again.exit_code, 4);
  EXPECT_NE(again.err.find("already"), std::string::npos);
  EXPECT_EQ(Run({"init", "--force"}).exit_code, 0);
}

TEST_F(CliTest, GenIngestQueryRoundTrip) {
  Init();
  std::string data = dir_.path() + "/gen";
  auto g =
      Run({"gen", "--customers", "3000", "--days", "60", "--seed", "3", "--out", data, "--json"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  Json report = g.json();
  int64_t events = report["events"].get<int64_t>();
  ASSERT_GT(events, 3000);
  EXPECT_TRUE(fs::exists(data + "/truth.parquet"));

  auto c = Run({"ingest", "customers", data + "/customers.parquet", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.json()["rows_accepted"], 3000);
  auto e = Run({"ingest", "events", data + "/events/*.parquet", "--json"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  Json ej = e.json();
  EXPECT_EQ(ej["rows_read"], events);
  EXPECT_EQ(ej["rows_accepted"], events);
  EXPECT_EQ(ej["rows_rejected"], 0);
  EXPECT_FALSE(ej["no_op"].get<bool>());

  // Re-ingesting the same content is a no-op.
  auto again = Run({"ingest", "events", data + "/events/*.parquet", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(again.json()["no_op"].get<bool>());

  EXPECT_EQ(Count("SELECT count(*) FROM events"), events);
  auto q = Run({"query", "--json",
                "SELECT count(*) FROM events WHERE dt = (SELECT max(dt) FROM "
                "events)"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  Json qj = q.json();
  for (const char* k : {"columns", "rows", "bytes_scanned", "estimated_bytes", "partitions_scanned",
                        "cost_usd", "elapsed_ms"}) {
    EXPECT_TRUE(qj.contains(k)) << k;
  }
  EXPECT_GT(qj["bytes_scanned"].get<int64_t>(), 0);

  auto t = Run({"tables", "--json"});
  ASSERT_EQ(t.exit_code, 0);
  bool found = false;
  Json tables = t.json();
  for (const auto& tab : tables["tables"]) {
    if (tab["table"] == "events") {
      found = true;
      EXPECT_EQ(tab["rows"], events);
      EXPECT_GE(tab["partitions"].get<int64_t>(), 59);
    }
  }
  EXPECT_TRUE(found);
  auto text = Run({"query", "SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 1"});
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("purchase"), std::string::npos);
  EXPECT_NE(text.out.find("cost $"), std::string::npos);
  auto csv = Run({"query", "--csv", "SELECT 1 AS a, 'x,y' AS b"});
  EXPECT_EQ(csv.out, "a,b\n1,\"x,y\"\n");
}

TEST_F(CliTest, BadInputsGiveClearErrorsOrQuarantineAndLoseNothing) {
  Init();
  std::string header = "event_id,customer_id,event_time,event_type,channel,amount,properties\n";
  std::string bad =
      dir_.WriteFile("bad.csv", header +
                                    "1,1,2024-05-01 10:00:00,purchase,web,1.5,\n"
                                    "2,1,2024-05-01 10:00:00,purchase\n"            // column count
                                    "3,1,yesterday,session,web,,\n"                 // timestamp
                                    "4,1,2024-05-01 10:00:00,purchase,web,ten,\n"   // amount
                                    "5,1,2024-05-01 10:00:00,session,\xc3\x28,,\n"  // invalid UTF-8
                                    "6,1,2024-05-02 10:00:00,session,app,,\n");
  auto r = Run({"ingest", "events", bad, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.json();
  EXPECT_EQ(j["rows_read"], 6);
  EXPECT_EQ(j["rows_accepted"], 2);
  EXPECT_EQ(j["rows_rejected"], 4);
  std::string q = ReadAll(j["quarantine_file"].get<std::string>());
  EXPECT_NE(q.find("\"line\":3"), std::string::npos) << q;
  EXPECT_NE(q.find("cannot parse 'yesterday'"), std::string::npos) << q;
  EXPECT_NE(q.find("cannot parse 'ten'"), std::string::npos) << q;
  EXPECT_NE(q.find("unicode"), std::string::npos) << q;
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 2);

  std::string empty = dir_.WriteFile("empty.csv", "");
  auto e = Run({"ingest", "events", empty});
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_NE(e.err.find("empty.csv"), std::string::npos) << e.err;

  std::string big = dir_.WriteFile("big.csv", header + "7,1,2024-05-03 10:00:00,session,web,," +
                                                  std::string(10 * 1024 * 1024, 'p') +
                                                  "\n8,1,2024-05-03 11:00:00,session,web,,\n");
  auto b = Run({"ingest", "events", big, "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.json()["rows_rejected"], 1);
  EXPECT_EQ(b.json()["rows_accepted"], 1);

  auto missing = Run({"ingest", "events", dir_.path() + "/nope.csv"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("nope.csv"), std::string::npos);
  auto unknown = Run({"ingest", "clicks", bad});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.err.find("clicks"), std::string::npos);
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 3);
}

TEST_F(CliTest, BadSqlWritesAndOutsideReadsAreRefused) {
  Init();
  auto bad = Run({"query", "SELEC 1"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("syntax"), std::string::npos) << bad.err;
  auto write = Run({"query", "CREATE TABLE t AS SELECT 1"});
  EXPECT_EQ(write.exit_code, 5);
  EXPECT_NE(write.err.find("read-only"), std::string::npos) << write.err;
  auto outside = Run({"query", "SELECT * FROM read_csv('/etc/passwd')"});
  EXPECT_EQ(outside.exit_code, 5);
  EXPECT_NE(outside.err.find("only the lake"), std::string::npos) << outside.err;
  auto cutoff = Run({"query", "--max-scan-bytes", "1", "SELECT * FROM events"});
  EXPECT_EQ(cutoff.exit_code, 0);  // an empty table scans nothing
  auto hist = Run({"history", "--json"});
  ASSERT_EQ(hist.exit_code, 0);
  EXPECT_EQ(hist.json()["queries"].size(), 4u);
}

TEST_F(CliTest, QueryWritesExitFiveAndUnknownTablesExitThreeNamingThem) {
  Init();
  std::string f = dir_.WriteFile("e.csv",
                                 "event_id,customer_id,event_time,event_type\n1,1,2024-05-01 "
                                 "10:00:00,session\n");
  ASSERT_EQ(Run({"ingest", "events", f}).exit_code, 0);
  for (const char* q :
       {"DELETE FROM events", "INSERT INTO events SELECT * FROM events",
        "UPDATE events SET amount = 1", "CREATE TABLE t AS SELECT 1", "COPY events TO '/tmp/x.csv'",
        "DROP VIEW events", "ALTER VIEW events RENAME TO x", "ATTACH '/tmp/x.db' AS x",
        "TRUNCATE events", "EXPLAIN DELETE FROM events", "SELECT 1; DELETE FROM events"}) {
    auto r = Run({"query", q});
    EXPECT_EQ(r.exit_code, 5) << q << ": " << r.err;
    EXPECT_NE(r.err.find("read-only"), std::string::npos) << q << ": " << r.err;
  }
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);
  auto missing = Run({"query", "SELECT * FROM nope"});
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_NE(missing.err.find("no table named 'nope'"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("customers, events"), std::string::npos) << missing.err;
  for (const char* internal : {"pg_enum", "EXPLAIN", "Did you mean", "Catalog Error", "LINE "}) {
    EXPECT_EQ(missing.err.find(internal), std::string::npos) << internal << ": " << missing.err;
  }
  auto typo = Run({"query", "--json", "SELECT * FROM evnts"});
  EXPECT_EQ(typo.exit_code, 3) << typo.err;
  EXPECT_NE(typo.err.find("did you mean 'events'?"), std::string::npos) << typo.err;
}

TEST_F(CliTest, QueryReadsSqlFromAFileOrStdin) {
  Init();
  std::string sql = dir_.WriteFile("q.sql",
                                   "-- how many\nSELECT count(*) AS n,\n       'a;b' AS s\nFROM "
                                   "range(7);\n");
  auto from_file = Run({"query", "--json", "--file", sql});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(from_file.json()["rows"][0][0], 7);
  EXPECT_EQ(from_file.json()["rows"][0][1], "a;b");
  auto from_stdin = Run({"query", "--json", "-"}, sql);
  ASSERT_EQ(from_stdin.exit_code, 0) << from_stdin.err;
  EXPECT_EQ(from_stdin.json()["rows"][0][0], 7);
  auto file_dash = Run({"query", "--csv", "-f", "-"}, sql);
  ASSERT_EQ(file_dash.exit_code, 0) << file_dash.err;
  EXPECT_EQ(file_dash.out, "n,s\n7,a;b\n");
  // A write in a file is refused like any other.
  std::string write = dir_.WriteFile("w.sql", "DELETE FROM events;\n");
  EXPECT_EQ(Run({"query", "--file", write}).exit_code, 5);
  auto missing = Run({"query", "--file", dir_.path() + "/nope.sql"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("nope.sql"), std::string::npos) << missing.err;
  EXPECT_EQ(Run({"query", "--file", sql, "SELECT 1"}).exit_code, 2);
  EXPECT_EQ(Run({"query"}).exit_code, 2);
  EXPECT_EQ(Run({"query", "-"}).exit_code, 2);  // empty stdin: an empty query
}

TEST_F(CliTest, QueryShowsFortyRowsOnATerminalAndEveryRowOtherwise) {
  Init();
  const std::string sql = "SELECT range AS i FROM range(100)";
  auto term = RunInTerminal({"query", sql});
  ASSERT_EQ(term.exit_code, 0) << term.out;
  EXPECT_NE(term.out.find("\n39\n"), std::string::npos) << term.out;
  EXPECT_EQ(term.out.find("\n40\n"), std::string::npos) << term.out;
  EXPECT_NE(term.out.find("60 more rows"), std::string::npos) << term.out;
  EXPECT_NE(term.out.find("100 row(s)"), std::string::npos) << term.out;
  auto five = RunInTerminal({"query", "--max-rows", "5", sql});
  ASSERT_EQ(five.exit_code, 0) << five.out;
  EXPECT_NE(five.out.find("\n4\n"), std::string::npos) << five.out;
  EXPECT_EQ(five.out.find("\n5\n"), std::string::npos) << five.out;
  EXPECT_NE(five.out.find("95 more rows"), std::string::npos) << five.out;
  auto all_on_terminal = RunInTerminal({"query", "--max-rows", "0", sql});
  EXPECT_NE(all_on_terminal.out.find("\n99\n"), std::string::npos) << all_on_terminal.out;
  EXPECT_EQ(all_on_terminal.out.find("more rows"), std::string::npos) << all_on_terminal.out;
  auto few = RunInTerminal({"query", "SELECT 1 AS one"});
  EXPECT_EQ(few.out.find("more rows"), std::string::npos) << few.out;
  // Not a terminal: every row, unless --max-rows says otherwise.
  auto piped = Run({"query", sql});
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_NE(piped.out.find("\n99\n"), std::string::npos) << piped.out;
  EXPECT_EQ(piped.out.find("more rows"), std::string::npos) << piped.out;
  EXPECT_NE(Run({"query", "--max-rows", "10", sql}).out.find("90 more rows"), std::string::npos);
  // --csv and --json print every row, on a terminal too.
  auto csv = RunInTerminal({"query", "--csv", sql});
  EXPECT_NE(csv.out.find("\n99\n"), std::string::npos) << csv.out;
  EXPECT_EQ(csv.out.find("more rows"), std::string::npos) << csv.out;
  auto json = Run({"query", "--json", "--max-rows", "3", sql});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.json()["rows"].size(), 100u);
}

TEST_F(CliTest, QueryCsvQuotesLikeRfc4180) {
  Init();
  auto csv = Run({"query", "--csv",
                  "SELECT 'x,y' AS \"a,b\", 'say \"hi\"' AS q, 'l1' || chr(10) || 'l2' AS lf, "
                  "NULL AS n, '' AS e, 2.5 AS f"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out, "\"a,b\",q,lf,n,e,f\n\"x,y\",\"say \"\"hi\"\"\",\"l1\nl2\",,\"\",2.5\n");
  EXPECT_NE(csv.err.find("1 row(s)"), std::string::npos) << csv.err;
}

TEST_F(CliTest, EveryScanIsMeteredAndARunawayQueryStopsAtItsTimeout) {
  Init();
  std::string data = dir_.path() + "/gen";
  ASSERT_EQ(
      Run({"gen", "--customers", "2000", "--days", "30", "--seed", "5", "--out", data}).exit_code,
      0);
  auto ing = Run({"ingest", "events", data + "/events/*.parquet"});
  ASSERT_EQ(ing.exit_code, 0) << ing.err;
  // F3: other spellings of a table used to escape the estimate ("estimate 0 B").
  for (const std::string& sql : {std::string("SELECT sum(amount) FROM EVENTS"),
                                 std::string("SELECT sum(amount) FROM query_table('events')"),
                                 std::string("EXPLAIN ANALYZE SELECT sum(amount) FROM events")}) {
    auto r = Run({"query", "--max-scan-bytes", "100000", sql});
    EXPECT_EQ(r.exit_code, 6) << sql << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("scan cutoff"), std::string::npos) << r.err;
  }
  // F6: a cross join used to run for ever.
  auto runaway =
      Run({"query", "--timeout", "1", "SELECT count(*) FROM events a, events b, events c"});
  EXPECT_EQ(runaway.exit_code, 8) << runaway.out << runaway.err;
  EXPECT_NE(runaway.err.find("time limit of 1 s"), std::string::npos) << runaway.err;
  // The config's limit applies without the flag.
  {
    std::ifstream in(home_ + "/engage.toml");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string cfg = ss.str();
    size_t at = cfg.find("memory_limit = \"4GB\"");
    ASSERT_NE(at, std::string::npos);
    cfg.insert(at, "timeout_seconds = 1\n");
    std::ofstream out(home_ + "/engage.toml");
    out << cfg;
  }
  auto configured = Run({"query", "SELECT count(*) FROM events a, events b, events c"});
  EXPECT_EQ(configured.exit_code, 8) << configured.err;
}

TEST_F(CliTest, KilledIngestLeavesNothingVisibleAndIsRecovered) {
  Init();
  std::string data = dir_.path() + "/gen";
  ASSERT_EQ(Run({"gen", "--customers", "20000", "--days", "120", "--out", data, "--format", "csv"})
                .exit_code,
            0);
  // Kill ingests at several moments; every time the table is empty or complete.
  int64_t full = -1;
  for (int delay_ms : {50, 200, 400, 700, 1000}) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::execl(ENGAGE_BINARY, ENGAGE_BINARY, "--home", home_.c_str(), "ingest", "events",
              (data + "/events/part-00000.csv").c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    int64_t n = Count("SELECT count(*) FROM events");
    if (full < 0 && n > 0) full = n;
    EXPECT_TRUE(n == 0 || n == full) << "partial data visible after kill at " << delay_ms << " ms";
    if (n > 0) break;  // finished before the kill
  }
  // The next writer cleans up and a complete ingest succeeds.
  auto r = Run({"ingest", "events", data + "/events/part-00000.csv", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int64_t total = Count("SELECT count(*) FROM events");
  EXPECT_GT(total, 0);
  EXPECT_TRUE(fs::is_empty(home_ + "/lake/_staging"));
}

TEST_F(CliTest, RetentionAndCompactionReportJson) {
  Init();
  std::string header = "event_id,customer_id,event_time,event_type\n";
  // One partition far past the 400-day retention, one from ten days ago.
  int64_t today = std::chrono::duration_cast<std::chrono::hours>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count() /
                  24;
  std::string recent = FormatDate(today - 10);
  for (int i = 0; i < 3; ++i) {
    std::string f =
        dir_.WriteFile("e" + std::to_string(i) + ".csv",
                       header + std::to_string(i * 10) + ",1,2020-01-01 10:00:00,session\n" +
                           std::to_string(i * 10 + 1) + ",1," + recent + " 10:00:00,session\n");
    ASSERT_EQ(Run({"ingest", "events", f}).exit_code, 0);
  }
  auto c = Run({"compact", "events", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.json()["files_before"], 6);
  EXPECT_EQ(c.json()["files_after"], 2);
  auto r = Run({"retention", "apply", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.json()["partitions_dropped"], 1);  // 2020-01-01 is past 400 days
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 3);
}

// The real public data sets, when ../shared/data is present.
class RealDataTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    data_ = SharedDataDir();
    if (data_.empty()) GTEST_SKIP() << "shared data sets not found";
    Init();
  }
  std::string data_;
};

TEST_F(RealDataTest, OnlineRetailInvoiceLines) {
  AppendExample("online_retail");
  auto r = Run({"ingest", "retail", data_ + "/online_retail/online_retail.csv", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = r.json();
  EXPECT_EQ(j["rows_read"], 541909);
  EXPECT_EQ(j["rows_rejected"], 2);  // the two "Adjust bad debt" lines with a negative price
  EXPECT_EQ(j["rows_accepted"], 541907);
  EXPECT_EQ(Count("SELECT count(*) FROM retail WHERE customer_id IS NULL"), 135080 - 2);
  EXPECT_EQ(Count("SELECT count(*) FROM retail WHERE invoice_no LIKE 'C%'"), 9288);
  EXPECT_EQ(Count("SELECT count(DISTINCT customer_id) FROM retail"), 4372);
  EXPECT_EQ(Count("SELECT count(DISTINCT dt) FROM retail"), 305);
}

TEST_F(RealDataTest, CdnowWhitespaceSeparatedLog) {
  AppendExample("cdnow");
  auto r = Run({"ingest", "cdnow", data_ + "/cdnow/CDNOW_master.txt", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.json()["rows_read"], 69659);
  EXPECT_EQ(r.json()["rows_accepted"], 69659);
  EXPECT_EQ(Count("SELECT count(DISTINCT customer_id) FROM cdnow"), 23570);
  EXPECT_EQ(Count("SELECT count(*) FROM cdnow WHERE amount = 0"), 80);
}

TEST_F(RealDataTest, TelcoChurnSnapshot) {
  AppendExample("telco_churn");
  auto r = Run({"ingest", "telco", data_ + "/telco_churn/Telco-Customer-Churn.csv", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.json()["rows_accepted"], 7043);
  EXPECT_EQ(Count("SELECT count(*) FROM telco WHERE churn = 'Yes'"), 1869);
  EXPECT_EQ(Count("SELECT count(*) FROM telco WHERE total_charges IS NULL"), 11);
}

// `engage check`: the declared checks, exit 1 when an error-severity one fails, the JSON shape,
// the stored history, and clear errors for unknown tables and broken declarations.
TEST_F(CliTest, CheckRunsTheDeclaredChecksAndRecordsThem) {
  Init();
  {
    std::ofstream cfg(home_ + "/engage.toml", std::ios::app);
    cfg << "\n[[tables.events.checks]]\ntype = \"not_null\"\ncolumn = \"channel\"\n"
           "\n[[tables.events.checks]]\ntype = \"unique\"\ncolumns = [\"event_id\"]\n"
           "severity = \"warning\"\n";
  }
  std::string csv = dir_.WriteFile("e.csv",
                                   "event_id,customer_id,event_time,event_type,channel,amount,"
                                   "properties\n1,1,2024-05-01 10:00:00,purchase,web,5,\n"
                                   "2,1,2024-05-01 11:00:00,session,,,\n"
                                   "2,2,2024-05-02 11:00:00,session,app,,\n");
  ASSERT_EQ(Run({"ingest", "events", csv}).exit_code, 0);
  auto r = Run({"check", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  Json j = r.json();
  EXPECT_EQ(j["passed"], false);
  // engage init's five default checks on events, then the two declared here.
  std::map<std::string, Json> by_name;
  for (const Json& c : j["checks"]) by_name[c["check"].get<std::string>()] = c;
  ASSERT_EQ(j["checks"].size(), 7u) << r.out;
  EXPECT_EQ(by_name["events_present"]["ok"], true);
  EXPECT_EQ(by_name["history_days"]["ok"], false);  // two days, not 150
  EXPECT_EQ(by_name["not_null_channel"]["failing_rows"], 1);
  EXPECT_EQ(by_name["not_null_channel"]["examples"][0]["event_id"], 2);
  EXPECT_EQ(by_name["unique_event_id"]["severity"], "warning");
  EXPECT_EQ(by_name["unique_event_id"]["failing_rows"], 2);
  auto text = Run({"check", "events"});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("FAILED"), std::string::npos) << text.out;
  auto history = Run({"check", "--history", "--json"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_EQ(history.json()["runs"].size(), 2u);
  EXPECT_EQ(Run({"check", "nope"}).exit_code, 3);
  EXPECT_EQ(Run({"check", "--ingest", "nope"}).exit_code, 3);
  {
    std::ofstream cfg(home_ + "/engage.toml", std::ios::app);
    cfg << "\n[[tables.events.checks]]\ntype = \"range\"\ncolumn = \"amount\"\n";
  }
  auto broken = Run({"check"});
  EXPECT_EQ(broken.exit_code, 2) << broken.err;
  EXPECT_NE(broken.err.find("check #8: a range check needs 'min' or 'max'"), std::string::npos)
      << broken.err;
}

}  // namespace
}  // namespace engage::testing
