// End-to-end tests of `engage keys ...` and `engage audit`: run the real binary on a temporary
// home.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engage/core/clock.h"
#include "engage/serve/auth.h"
#include "testing/cli_runner.h"
#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

const std::string kPolicies = std::string(ENGAGE_SOURCE_DIR) + "/examples/policies/";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class KeysCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = dir_.path() + "/home";
    ASSERT_EQ(Engage({"init"}).exit_code, 0);
  }

  CommandResult Engage(std::vector<std::string> args) {
    args.insert(args.begin(), {ENGAGE_BINARY, "--home", home_});
    return RunCommand(args, dir_.path());
  }

  TempDir dir_;
  std::string home_;
};

TEST_F(KeysCliTest, CreateListRevokeAndAudit) {
  // Create: the token is printed once, with a warning.
  CommandResult created = Engage({"keys", "create", "--name", "crm-sync", "--policy",
                                  kPolicies + "predictions-read-only.json", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  Json c = created.json();
  ASSERT_TRUE(c.is_object()) << created.out;
  std::string token = c["token"].get<std::string>();
  std::string id = c["key"]["id"].get<std::string>();
  EXPECT_EQ(token.rfind("ek_" + id + "_", 0), 0u);
  EXPECT_TRUE(Contains(created.err, "only time")) << created.err;
  EXPECT_EQ(c["key"]["name"], "crm-sync");

  CommandResult text =
      Engage({"keys", "create", "--name", "analyst", "--policy", kPolicies + "analyst.json"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Contains(text.out, "token: ek_")) << text.out;

  // List: both keys, never a token.
  CommandResult listed = Engage({"keys", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  Json keys = listed.json()["keys"];
  ASSERT_EQ(keys.size(), 2u) << listed.out;
  EXPECT_EQ(keys[0]["id"], id);
  EXPECT_TRUE(keys[0]["revoked_at"].is_null());
  EXPECT_FALSE(Contains(listed.out, token.substr(16)));
  CommandResult table = Engage({"keys", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(Contains(table.out, "crm-sync")) << table.out;
  EXPECT_TRUE(Contains(table.out, "active")) << table.out;
  EXPECT_FALSE(Contains(table.out, token.substr(16)));

  // The key authenticates through the library, as `engage serve` will.
  {
    auto store = serve::KeyStore::Open(home_ + "/meta.db", SystemClock::Default());
    ASSERT_OK(store);
    auto who = (*store)->Authenticate("Bearer " + token);
    ASSERT_OK(who);
    EXPECT_TRUE(who->Evaluate("predictions:Get", "model/engagement").allowed());
    EXPECT_FALSE(who->Evaluate("predictions:Score", "model/engagement").allowed());
  }

  // Revoke: twice is fine, an unknown id is exit code of kNotFound.
  CommandResult revoked = Engage({"keys", "revoke", id});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_TRUE(Contains(revoked.out, "revoked API key " + id)) << revoked.out;
  EXPECT_EQ(Engage({"keys", "revoke", id}).exit_code, 0);
  CommandResult unknown = Engage({"keys", "revoke", "ffffffffffff"});
  EXPECT_EQ(unknown.exit_code, ExitCodeFor(StatusCode::kNotFound));
  EXPECT_TRUE(Contains(unknown.err, "no API key 'ffffffffffff'")) << unknown.err;
  Json after = Engage({"keys", "list", "--json"}).json()["keys"];
  EXPECT_FALSE(after[0]["revoked_at"].is_null());
  EXPECT_TRUE(after[1]["revoked_at"].is_null());
  {
    auto store = serve::KeyStore::Open(home_ + "/meta.db", SystemClock::Default());
    ASSERT_OK(store);
    EXPECT_STATUS_CODE((*store)->Authenticate(token), StatusCode::kUnauthenticated);
  }

  // Audit: what a server recorded, newest first.
  {
    auto log = serve::AuditLog::Open(home_ + "/meta.db", SystemClock::Default());
    ASSERT_OK(log);
    (*log)->Record({.key_id = id,
                    .action = "predictions:Get",
                    .resource = "model/engagement",
                    .allowed = true,
                    .remote_address = "127.0.0.1"});
    (*log)->Record({.action = "query:Run",
                    .resource = "table/events",
                    .code = StatusCode::kUnauthenticated,
                    .remote_address = "10.1.2.3"});
  }  // the destructor flushes
  CommandResult audit = Engage({"audit", "-n", "5", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  Json records = audit.json()["records"];
  ASSERT_EQ(records.size(), 2u) << audit.out;
  EXPECT_EQ(records[1]["key_id"], id);
  EXPECT_EQ(records[1]["decision"], "allow");
  EXPECT_EQ(records[0]["http_status"], 401);
  EXPECT_EQ(Engage({"audit", "-n", "1", "--json"}).json()["records"].size(), 1u);
  CommandResult audit_text = Engage({"audit"});
  ASSERT_EQ(audit_text.exit_code, 0) << audit_text.err;
  EXPECT_TRUE(Contains(audit_text.out, "10.1.2.3")) << audit_text.out;
}

TEST_F(KeysCliTest, BadPolicyFileIsAUsageErrorNamingTheProblem) {
  std::string bad = dir_.WriteFile(
      "bad.json",
      R"({"Statement": [{"Effect": "Allow", "Action": "predictions:Gte", "Resource": "*"}]})");
  CommandResult r = Engage({"keys", "create", "--name", "x", "--policy", bad});
  EXPECT_EQ(r.exit_code, ExitCodeFor(StatusCode::kInvalidArgument));
  EXPECT_TRUE(Contains(r.err, "bad.json")) << r.err;
  EXPECT_TRUE(Contains(r.err, "Statement[0]")) << r.err;
  EXPECT_TRUE(Contains(r.err, "predictions:Gte")) << r.err;
  CommandResult missing = Engage({"keys", "create", "--name", "x", "--policy", bad + ".nope"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(Engage({"keys", "list", "--json"}).json()["keys"].size(), 0u);
}

TEST_F(KeysCliTest, NeedsAHome) {
  CommandResult r =
      RunCommand({ENGAGE_BINARY, "--home", dir_.path() + "/nowhere", "keys", "list"}, dir_.path());
  EXPECT_EQ(r.exit_code, ExitCodeFor(StatusCode::kFailedPrecondition));
  EXPECT_TRUE(Contains(r.err, "engage init")) << r.err;
}

TEST_F(KeysCliTest, HelpPointsAtTheExamplePolicies) {
  CommandResult r = Engage({"keys", "create", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out, "examples/policies")) << r.out;
}

}  // namespace
}  // namespace engage::testing
