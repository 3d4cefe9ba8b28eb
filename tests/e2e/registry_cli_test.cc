// End-to-end: registered state machines and their roles (issue 13, F4 and F5). The real binary
// on a temporary home: `engage flow register` / `engage flow machines`, and `engage serve` on a
// loopback port, driven by keys of different policies.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/http_client.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kAdminPolicy =
    R"({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})";
// F4's attacker: may start (and read) executions of pipeline/daily, nothing else.
constexpr const char* kStarterPolicy =
    R"({"Statement":[{"Effect":"Allow","Action":["executions:Start","executions:Get"],"Resource":"pipeline/daily"}]})";

// A role that grants no step (a machine of Pass, Wait and Choice states needs none).
constexpr const char* kNothingRole =
    R"({"Statement":[{"Effect":"Allow","Action":"engage:query","Resource":"table/none"}]})";

// A definition with one Task state running `resource` with `parameters` (a JSON object text).
std::string OneTask(const std::string& resource, const std::string& parameters) {
  return R"({"StartAt":"T","States":{"T":{"Type":"Task","Resource":")" + resource +
         R"(","Parameters":)" + parameters + R"(,"End":true}}})";
}

class RegistryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = dir_.path() + "/home";
    ASSERT_EQ(Engage({"init"}).exit_code, 0);
    // Customers with a marker value the attacker must never see.
    Write(dir_.path() + "/customers.csv",
          "customer_id,signup_time,country,acquisition_channel,plan,age\n"
          "1,2024-01-01 00:00:00,SECRETLAND,web,pro,30\n"
          "2,2024-01-02 00:00:00,SECRETLAND,app,free,40\n");
    auto r = Engage({"ingest", "customers", dir_.path() + "/customers.csv"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    admin_ = Key("admin", kAdminPolicy);
    starter_ = Key("starter", kStarterPolicy);
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  static void Write(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }

  CommandResult Engage(std::vector<std::string> args) {
    args.insert(args.begin(), {ENGAGE_BINARY, "--home", home_});
    return RunCommand(args, dir_.path());
  }

  // Creates a key with `policy`; returns its Authorization header value.
  std::string Key(const std::string& name, const std::string& policy) {
    std::string file = dir_.path() + "/" + name + ".policy.json";
    Write(file, policy);
    auto key = Engage({"keys", "create", "--name", name, "--policy", file, "--json"});
    EXPECT_EQ(key.exit_code, 0) << key.err;
    return "Bearer " + key.json()["token"].get<std::string>();
  }

  int StartServer() {
    std::string port_file = dir_.path() + "/port";
    pid_ = fork();
    if (pid_ == 0) {
      int out = open((dir_.path() + "/serve.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open((dir_.path() + "/serve.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 1);
      dup2(err, 2);
      execl(ENGAGE_BINARY, ENGAGE_BINARY, "--home", home_.c_str(), "serve", "--port", "0",
            "--threads", "2", "--port-file", port_file.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 400; ++i) {
      std::string text = ReadFileText(port_file);
      if (!text.empty()) return std::stoi(text);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the server did not start: " << ReadFileText(dir_.path() + "/serve.err");
    return 0;
  }

  HttpResult Http(const std::string& method, const std::string& target, const std::string& body,
                  const std::string& auth) {
    HttpClient c(port_);
    return c.Request(method, target, body, {{"Authorization", auth}});
  }

  // PUT /v1/state-machines/{name} as admin.
  HttpResult Register(const std::string& name, const std::string& definition,
                      const std::string& role) {
    return Http("PUT", "/v1/state-machines/" + name,
                R"({"definition":)" + definition + R"(,"role":)" + role + "}", admin_);
  }

  // Starts `machine` with `input` as admin and waits for the end; returns the describe body.
  Json RunToEnd(const std::string& machine, const std::string& name, const std::string& input) {
    auto started = Http(
        "POST", "/v1/executions",
        R"({"state_machine":")" + machine + R"(","name":")" + name + R"(","input":)" + input + "}",
        admin_);
    EXPECT_EQ(started.status, 202) << started.body;
    return WaitFor(name);
  }

  Json WaitFor(const std::string& name) {
    Json d;
    for (int i = 0; i < 600; ++i) {
      auto r = Http("GET", "/v1/executions/" + name, "", admin_);
      EXPECT_EQ(r.status, 200) << r.body;
      d = Json::parse(r.body, nullptr, false);
      if (d.is_object() && d.value("status", "") != "RUNNING") return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "execution " << name << " did not end";
    return d;
  }

  std::string History(const std::string& name) {
    auto r = Http("GET", "/v1/executions/" + name + "/history", "", admin_);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }

  TempDir dir_;
  std::string home_;
  std::string admin_, starter_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// F4: a key allowed only executions:Start on pipeline/daily cannot run a definition of its own:
// not inline, not by registering it.
TEST_F(RegistryCliTest, AStartOnlyKeyCannotRegisterOrRunItsOwnDefinition) {
  port_ = StartServer();
  ASSERT_GT(port_, 0);
  std::string steal = OneTask("engage:query", R"({"sql":"SELECT * FROM customers"})");
  auto inline_run = Http("POST", "/v1/executions",
                         R"({"state_machine":"daily","definition":)" + steal + "}", starter_);
  EXPECT_EQ(inline_run.status, 400) << inline_run.body;
  EXPECT_NE(inline_run.body.find("register"), std::string::npos) << inline_run.body;
  auto reg = Http("PUT", "/v1/state-machines/daily",
                  R"({"definition":)" + steal +
                      R"(,"role":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}})",
                  starter_);
  EXPECT_EQ(reg.status, 403) << reg.body;
  auto unregistered = Http("POST", "/v1/executions", R"({"state_machine":"daily"})", starter_);
  EXPECT_EQ(unregistered.status, 404) << unregistered.body;
  for (const auto* body : {&inline_run.body, &reg.body, &unregistered.body}) {
    EXPECT_EQ(body->find("SECRETLAND"), std::string::npos) << *body;
  }
  auto list = Http("GET", "/v1/executions", "", admin_);
  EXPECT_EQ(Json::parse(list.body)["executions"].size(), 0u) << list.body;
}

// F4: the role bounds the steps. A query step on a table the role does not grant fails with a
// catchable Engage.AccessDenied naming the action and resource, and returns no rows.
TEST_F(RegistryCliTest, ARoleDenyingATableFailsTheQueryStepWithAccessDenied) {
  port_ = StartServer();
  ASSERT_GT(port_, 0);
  std::string query = OneTask("engage:query", R"({"sql":"SELECT * FROM customers"})");
  auto events_only =
      R"({"Statement":[{"Effect":"Allow","Action":"engage:query","Resource":"table/events"}]})";
  ASSERT_EQ(Register("daily", query, events_only).status, 200);
  Json d = RunToEnd("daily", "d1", "{}");
  EXPECT_EQ(d["status"], "FAILED") << d.dump();
  EXPECT_EQ(d["error"], "Engage.AccessDenied") << d.dump();
  std::string cause = d.value("cause", "");
  EXPECT_NE(cause.find("engage:query"), std::string::npos) << cause;
  EXPECT_NE(cause.find("table/customers"), std::string::npos) << cause;
  std::string history = History("d1");
  for (const std::string& text : {d.dump(), history}) {
    EXPECT_EQ(text.find("SECRETLAND"), std::string::npos) << text;
    EXPECT_EQ(text.find(home_), std::string::npos) << text;
    EXPECT_EQ(text.find("definitionPath"), std::string::npos) << text;
  }
  // The key that may start pipeline/daily runs only what the admin registered: same refusal.
  auto started =
      Http("POST", "/v1/executions", R"({"state_machine":"daily","name":"d2"})", starter_);
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_EQ(WaitFor("d2")["error"], "Engage.AccessDenied");

  // The refusal is catchable, and a role granting the table lets the same step read it.
  std::string caught =
      R"({"StartAt":"T","States":{"T":{"Type":"Task","Resource":"engage:query","Parameters":{"sql":"SELECT count(*) AS n FROM customers"},"Catch":[{"ErrorEquals":["Engage.AccessDenied"],"Next":"Denied"}],"End":true},"Denied":{"Type":"Pass","Result":"denied","End":true}}})";
  ASSERT_EQ(Register("caught", caught, events_only).status, 200);
  Json c = RunToEnd("caught", "c1", "{}");
  EXPECT_EQ(c["status"], "SUCCEEDED") << c.dump();
  EXPECT_EQ(c["output"], "denied") << c.dump();
  ASSERT_EQ(
      Register(
          "granted", query,
          R"({"Statement":[{"Effect":"Allow","Action":"engage:query","Resource":"table/customers"}]})")
          .status,
      200);
  Json g = RunToEnd("granted", "g1", "{}");
  EXPECT_EQ(g["status"], "SUCCEEDED") << g.dump();
  EXPECT_NE(g.dump().find("SECRETLAND"), std::string::npos) << g.dump();
}

// F4: engage:ingest over HTTP reads only [flow] input_dirs: a path outside, a `..` escape and a
// symlink out all fail before reading, without the content or the resolved path.
TEST_F(RegistryCliTest, IngestOverHttpReadsOnlyInputDirs) {
  std::string incoming = dir_.path() + "/incoming";
  std::string secret = dir_.path() + "/secret/secret.txt";
  Write(secret, "TOPSECRET-FIRST-LINE\nsecond\n");
  Write(incoming + "/good.csv",
        "customer_id,signup_time,country,acquisition_channel,plan,age\n"
        "3,2024-01-03 00:00:00,FR,web,pro,33\n");
  fs::create_symlink(secret, incoming + "/link.csv");
  {
    std::ofstream toml(home_ + "/engage.toml", std::ios::app);
    toml << "\n[flow]\ninput_dirs = [\"" << incoming << "\"]\n";
  }
  port_ = StartServer();
  ASSERT_GT(port_, 0);
  ASSERT_EQ(
      Register(
          "loader", OneTask("engage:ingest", R"({"table":"customers","inputs.$":"$.inputs"})"),
          R"({"Statement":[{"Effect":"Allow","Action":"engage:ingest","Resource":"table/customers"}]})")
          .status,
      200);
  int n = 0;
  for (const std::string& input :
       {secret, incoming + "/../secret/secret.txt", incoming + "/link.csv",
        std::string("../secret/secret.txt"), incoming + "/*.txt", incoming + "/missing.csv"}) {
    SCOPED_TRACE(input);
    std::string name = "bad" + std::to_string(n++);
    Json d = RunToEnd("loader", name, Json{{"inputs", Json::array({input})}}.dump());
    EXPECT_EQ(d["status"], "FAILED") << d.dump();
    EXPECT_EQ(d["error"], "Engage.AccessDenied") << d.dump();
    std::string cause = d.value("cause", "");
    EXPECT_NE(cause.find("input_dirs"), std::string::npos) << cause;
    for (const std::string& text : {d.dump(), History(name)}) {
      EXPECT_EQ(text.find("TOPSECRET"), std::string::npos) << text;
      // The resolved target of `..` or the symlink is never shown.
      if (input.find(secret) == std::string::npos) {
        EXPECT_EQ(text.find(secret), std::string::npos) << text;
      }
    }
  }
  Json ok =
      RunToEnd("loader", "good", Json{{"inputs", Json::array({incoming + "/good.csv"})}}.dump());
  EXPECT_EQ(ok["status"], "SUCCEEDED") << ok.dump();
  // The role still applies inside input_dirs: another table is refused.
  ASSERT_EQ(
      Register(
          "loader2", OneTask("engage:ingest", R"({"table":"events","inputs.$":"$.inputs"})"),
          R"({"Statement":[{"Effect":"Allow","Action":"engage:ingest","Resource":"table/customers"}]})")
          .status,
      200);
  Json other =
      RunToEnd("loader2", "other", Json{{"inputs", Json::array({incoming + "/good.csv"})}}.dump());
  EXPECT_EQ(other["error"], "Engage.AccessDenied") << other.dump();
  EXPECT_NE(other.value("cause", "").find("table/events"), std::string::npos) << other.dump();
}

// F5: state machine names follow AWS's rule; a bad one is a 400 (exit 2 on the CLI) and nothing
// is written anywhere, in the home or outside it.
TEST_F(RegistryCliTest, BadStateMachineNamesAreRefusedAndWriteNothing) {
  port_ = StartServer();
  ASSERT_GT(port_, 0);
  std::string def = R"({"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}})";
  std::string role = R"({"Statement":[{"Effect":"Allow","Action":"engage:query","Resource":"*"}]})";
  const std::vector<std::string> bad = {
      "../../outside/pwned", "", std::string(81, 'a'), "a/b", "caf\xc3\xa9", "a b", "..", "x\ny"};
  for (const std::string& name : bad) {
    SCOPED_TRACE(name);
    auto run = Http("POST", "/v1/executions", Json{{"state_machine", name}}.dump(), admin_);
    EXPECT_EQ(run.status, 400) << run.body;
    EXPECT_NE(run.body.find("1 to 80 characters"), std::string::npos) << run.body;
    auto with_def =
        Http("POST", "/v1/executions",
             Json{{"state_machine", name}, {"definition", Json::parse(def)}}.dump(), admin_);
    EXPECT_EQ(with_def.status, 400) << with_def.body;
    EXPECT_EQ(with_def.body.find(dir_.path()), std::string::npos) << with_def.body;
    auto exec_name = Http("POST", "/v1/executions",
                          Json{{"pipeline", "engagement"}, {"name", name}}.dump(), admin_);
    EXPECT_EQ(exec_name.status, 400) << exec_name.body;
    if (!name.empty()) {
      std::string encoded;
      for (unsigned char ch : name) encoded += fmt::format("%{:02X}", ch);
      auto put = Http("PUT", "/v1/state-machines/" + encoded,
                      R"({"definition":)" + def + R"(,"role":)" + role + "}", admin_);
      EXPECT_EQ(put.status, 400) << put.body;
      auto get = Http("GET", "/v1/state-machines/" + encoded, "", admin_);
      EXPECT_EQ(get.status, 400) << get.body;
    }
  }
  Write(dir_.path() + "/def.json", def);
  Write(dir_.path() + "/role.json", role);
  auto cli = Engage({"flow", "register", "../../outside/pwned", dir_.path() + "/def.json", "--role",
                     dir_.path() + "/role.json"});
  EXPECT_EQ(cli.exit_code, 2) << cli.err;
  EXPECT_NE(cli.err.find("1 to 80 characters"), std::string::npos) << cli.err;
  // Nothing named after the machine exists anywhere under the test directory.
  EXPECT_FALSE(fs::exists(dir_.path() + "/outside"));
  EXPECT_FALSE(fs::exists(fs::path(home_).parent_path().parent_path() / "outside"));
  for (const auto& e : fs::recursive_directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().string().find("pwned"), std::string::npos) << e.path();
  }
  auto machines = Http("GET", "/v1/state-machines", "", admin_);
  EXPECT_EQ(Json::parse(machines.body)["state_machines"].size(), 0u) << machines.body;
  auto list = Http("GET", "/v1/executions", "", admin_);
  EXPECT_EQ(Json::parse(list.body)["executions"].size(), 0u) << list.body;
}

// Register (CLI and HTTP), list, get, run; the shipped pipeline still starts over HTTP.
TEST_F(RegistryCliTest, RegisterListGetAndRunAndTheShippedPipelineStillStarts) {
  std::string def =
      R"({"StartAt":"A","States":{"A":{"Type":"Pass","Result":{"ok":1},"End":true}}})";
  std::string role =
      R"({"Statement":[{"Effect":"Allow","Action":"engage:query","Resource":"table/events"}]})";
  Write(dir_.path() + "/def.json", def);
  Write(dir_.path() + "/role.json", role);
  auto r1 = Engage({"flow", "register", "hello", dir_.path() + "/def.json", "--role",
                    dir_.path() + "/role.json", "--json"});
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  EXPECT_EQ(r1.json()["version"], 1);
  auto r2 = Engage({"flow", "register", "hello", dir_.path() + "/def.json", "--role",
                    dir_.path() + "/role.json", "--json"});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r2.json()["version"], 2);
  Write(dir_.path() + "/bad_role.json",
        R"({"Statement":[{"Effect":"Allow","Action":"engage:qurey","Resource":"*"}]})");
  auto bad_role = Engage({"flow", "register", "hello", dir_.path() + "/def.json", "--role",
                          dir_.path() + "/bad_role.json"});
  EXPECT_EQ(bad_role.exit_code, 1) << bad_role.err;
  EXPECT_NE(bad_role.err.find("engage:qurey"), std::string::npos) << bad_role.err;
  auto machines = Engage({"flow", "machines", "--json"});
  ASSERT_EQ(machines.exit_code, 0) << machines.err;
  Json listed = machines.json()["state_machines"];
  ASSERT_EQ(listed.size(), 1u) << machines.out;
  EXPECT_EQ(listed[0]["name"], "hello");
  EXPECT_EQ(listed[0]["version"], 2);
  EXPECT_EQ(listed[0]["role"]["Statement"][0]["Action"][0], "engage:query");
  auto table = Engage({"flow", "machines"});
  EXPECT_NE(table.out.find("hello"), std::string::npos) << table.out;

  port_ = StartServer();
  ASSERT_GT(port_, 0);
  auto put = Register("hello2", def, role);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Json::parse(put.body)["version"], 1);
  auto invalid = Register(
      "broken", R"({"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nowhere"}}})", role);
  EXPECT_EQ(invalid.status, 400) << invalid.body;
  EXPECT_NE(invalid.body.find("Nowhere"), std::string::npos) << invalid.body;
  auto no_role = Http("PUT", "/v1/state-machines/norole", R"({"definition":)" + def + "}", admin_);
  EXPECT_EQ(no_role.status, 400) << no_role.body;
  auto list = Http("GET", "/v1/state-machines", "", admin_);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(Json::parse(list.body)["state_machines"].size(), 2u) << list.body;
  auto get = Http("GET", "/v1/state-machines/hello2", "", admin_);
  ASSERT_EQ(get.status, 200) << get.body;
  EXPECT_EQ(Json::parse(get.body)["definition"], Json::parse(def));
  EXPECT_EQ(Http("GET", "/v1/state-machines/nope", "", admin_).status, 404);

  Json d = RunToEnd("hello2", "h1", R"({"x":1})");
  EXPECT_EQ(d["status"], "SUCCEEDED") << d.dump();
  EXPECT_EQ(d["output"], Json::parse(R"({"ok":1})"));
  EXPECT_FALSE(d.contains("definitionPath")) << d.dump();
  EXPECT_EQ(d.dump().find(dir_.path()), std::string::npos) << d.dump();
  EXPECT_EQ(Json::parse(History("h1"))["events"][0]["type"], "ExecutionStarted");

  auto shipped = Http("POST", "/v1/executions", R"({"pipeline":"engagement","name":"p1"})", admin_);
  ASSERT_EQ(shipped.status, 202) << shipped.body;
  EXPECT_EQ(Json::parse(shipped.body)["stateMachine"], "engagement");
  Json p = WaitFor("p1");
  // It ran the shipped definition under its built-in role: the steps were allowed (the run
  // stops at the data-quality checks of an almost empty lake, not at the role).
  EXPECT_NE(p.value("error", ""), "Engage.AccessDenied") << p.dump();
  EXPECT_EQ(p.dump().find(dir_.path()), std::string::npos) << p.dump();
}

// F12: an execution started over HTTP can be stopped over HTTP (it used to need a restart), and
// one still running when the server stops is stopped and recorded, not cut off.
TEST_F(RegistryCliTest, ARunningExecutionIsStoppedOverHttpAndAtShutdown) {
  port_ = StartServer();
  ASSERT_GT(port_, 0);
  std::string wait =
      R"({"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":100000,"End":true}}})";
  ASSERT_EQ(Register("sleepy", wait, kNothingRole).status, 200);
  for (const char* name : {"s1", "s2"}) {
    auto started =
        Http("POST", "/v1/executions",
             std::string(R"({"state_machine":"sleepy","name":")") + name + R"("})", admin_);
    ASSERT_EQ(started.status, 202) << started.body;
  }
  // A key that may only start executions may not stop them.
  auto denied = Http("POST", "/v1/executions/s1:stop", "", starter_);
  EXPECT_EQ(denied.status, 403) << denied.body;
  auto stop = Http("POST", "/v1/executions/s1:stop", "", admin_);
  EXPECT_EQ(stop.status, 202) << stop.body;
  Json d = WaitFor("s1");
  EXPECT_EQ(d["status"], "ABORTED") << d.dump();
  EXPECT_NE(History("s1").find("ExecutionAborted"), std::string::npos);
  auto again = Http("POST", "/v1/executions/s1:stop", "", admin_);
  EXPECT_EQ(again.status, 412) << again.body;
  EXPECT_EQ(Http("POST", "/v1/executions/nope:stop", "", admin_).status, 404);
  // SIGTERM: s2 is stopped and recorded ABORTED before the process exits.
  ASSERT_EQ(kill(pid_, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  auto describe = Engage({"flow", "describe", "s2", "--json"});
  ASSERT_EQ(describe.exit_code, 0) << describe.err;
  EXPECT_EQ(describe.json()["status"], "ABORTED") << describe.out;
}

}  // namespace
}  // namespace engage::testing
