#include "engage/serve/auth.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "testing/temp_dir.h"

namespace engage::testing {
namespace {

using serve::Decision;
using serve::Policy;

Policy MustParse(const std::string& text) {
  Result<Policy> p = Policy::Parse(text);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : Policy();
}

// kInvalidArgument whose message contains `needle`.
void ExpectParseError(const std::string& text, const std::string& needle) {
  Result<Policy> p = Policy::Parse(text);
  ASSERT_FALSE(p.ok()) << "parsed: " << text;
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find(needle), std::string::npos)
      << "message: " << p.status().message() << "\nexpected to contain: " << needle;
}

constexpr const char* kReadPredictions = R"({
  "Version": "2012-10-17",
  "Statement": [{"Sid": "Read", "Effect": "Allow",
                 "Action": ["predictions:Get", "predictions:BatchGet"],
                 "Resource": "model/*"}]})";

// ---- role policies (state machines) ----

TEST(PolicyParseTest, RolesUseTheStepVocabulary) {
  Json role = Json::parse(R"({"Statement":[
      {"Effect":"Allow","Action":["engage:query","engage:ingest"],"Resource":"table/events"},
      {"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"function/score"},
      {"Effect":"Deny","Action":"engage:*","Resource":"table/customers"}]})");
  auto p = Policy::FromJson(role, serve::RolePolicyVocabulary(), "role");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->Evaluate("engage:query", "table/events").allowed());
  EXPECT_FALSE(p->Evaluate("engage:query", "table/customers").allowed());
  EXPECT_FALSE(p->Evaluate("engage:train", "model/engagement").allowed());
  EXPECT_TRUE(p->Evaluate("lambda:InvokeFunction", "function/score").allowed());
  // A key's actions are not a role's, and the reverse.
  auto key_in_role = Policy::FromJson(
      Json::parse(R"({"Statement":[{"Effect":"Allow","Action":"query:Run","Resource":"*"}]})"),
      serve::RolePolicyVocabulary(), "role");
  ASSERT_FALSE(key_in_role.ok());
  EXPECT_NE(key_in_role.status().message().find("role Statement[0]"), std::string::npos)
      << key_in_role.status().message();
  EXPECT_FALSE(Policy::FromJson(role).ok());
  auto bad_type = Policy::FromJson(
      Json::parse(
          R"({"Statement":[{"Effect":"Allow","Action":"engage:query","Resource":"pipeline/x"}]})"),
      serve::RolePolicyVocabulary(), "role");
  EXPECT_FALSE(bad_type.ok());
}

// ---- wildcard matching ----

TEST(WildcardMatchTest, StarAndQuestionMark) {
  using serve::WildcardMatch;
  EXPECT_TRUE(WildcardMatch("*", ""));
  EXPECT_TRUE(WildcardMatch("*", "model/a/b"));
  EXPECT_TRUE(WildcardMatch("model/*", "model/engagement"));
  EXPECT_TRUE(WildcardMatch("model/*", "model/"));
  EXPECT_FALSE(WildcardMatch("model/*", "table/events"));
  EXPECT_TRUE(WildcardMatch("model/eng*ment", "model/engagement"));
  EXPECT_TRUE(WildcardMatch("model/v?", "model/v2"));
  EXPECT_FALSE(WildcardMatch("model/v?", "model/v"));
  EXPECT_FALSE(WildcardMatch("model/v?", "model/v12"));
  EXPECT_TRUE(WildcardMatch("*a*b*c", "xxaxbxxbc"));
  EXPECT_FALSE(WildcardMatch("*a*b*c", "xxaxbxxbcd"));
  EXPECT_FALSE(WildcardMatch("Model/x", "model/x"));
  EXPECT_TRUE(WildcardMatch("Predictions:get", "predictions:Get", /*fold_case=*/true));
}

// ---- parsing ----

TEST(PolicyParseTest, AcceptsIamShapes) {
  // A single statement object, strings instead of lists, no Version.
  Policy p = MustParse(
      R"({"Statement": {"Effect": "Allow", "Action": "query:Run", "Resource": "table/events"}})");
  ASSERT_EQ(p.statements().size(), 1u);
  EXPECT_EQ(p.statements()[0].actions, std::vector<std::string>{"query:Run"});
  // The normalized form parses to the same policy.
  Policy again = MustParse(DumpJson(p.ToJson()));
  EXPECT_EQ(DumpJson(again.ToJson()), DumpJson(p.ToJson()));
  EXPECT_EQ(p.ToJson()["Version"], "2012-10-17");
}

TEST(PolicyParseTest, RejectsMalformedDocumentsWithPreciseMessages) {
  ExpectParseError("{", "policy");
  ExpectParseError("[]", "expected a JSON object");
  ExpectParseError(R"({"Statement": []})", "Statement is empty");
  ExpectParseError(R"({"Version": "2008-10-17", "Statement": []})", "Version must be");
  ExpectParseError(R"({"Statements": []})", "unknown key \"Statements\"");
  ExpectParseError(R"({"Version": "2012-10-17"})", "no \"Statement\"");
  ExpectParseError(R"({"Statement": [1]})", "Statement[0]: expected an object");
}

TEST(PolicyParseTest, RejectsBadStatementsNamingTheirIndex) {
  auto doc = [](const std::string& second) {
    return std::string(R"({"Statement": [{"Effect": "Allow", "Action": "metrics:Get",
                                          "Resource": "*"}, )") +
           second + "]}";
  };
  ExpectParseError(doc(R"({"Effect": "allow", "Action": "metrics:Get", "Resource": "*"})"),
                   "Statement[1]: Effect must be \"Allow\" or \"Deny\"");
  ExpectParseError(doc(R"({"Action": "metrics:Get", "Resource": "*"})"),
                   "Statement[1]: no \"Effect\"");
  ExpectParseError(doc(R"({"Effect": "Allow", "Resource": "*"})"), "Statement[1]: no \"Action\"");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "metrics:Get"})"),
                   "Statement[1]: no \"Resource\"");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": [], "Resource": "*"})"),
                   "Statement[1]: Action is an empty list");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": [1], "Resource": "*"})"),
                   "Statement[1]: Action[0] must be a string");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "", "Resource": "*"})"),
                   "Statement[1]: an Action is empty");
  ExpectParseError(
      doc(R"({"Sid": "Typo", "Effect": "Allow", "Action": "predictions:Gte", "Resource": "*"})"),
      "Statement[1] (Sid \"Typo\"): unknown action \"predictions:Gte\" (known: predictions:Get, "
      "predictions:BatchGet, predictions:Score)");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})"),
                   "Statement[1]: unknown action \"s3:GetObject\"");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "predicitons:*", "Resource": "*"})"),
                   "Statement[1]: Action \"predicitons:*\" matches no known action");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "*", "Resource": "models/x"})"),
                   "Statement[1]: Resource \"models/x\" is not one of");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "*", "Resource": "model/"})"),
                   "Statement[1]: Resource \"model/\"");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "*", "NotResource": "*"})"),
                   "Statement[1]: \"NotResource\" is not supported");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}})"),
                   "Statement[1]: \"Condition\" is not supported");
  ExpectParseError(doc(R"({"Effect": "Allow", "Action": "*", "Resource": "*", "Extra": 1})"),
                   "Statement[1]: unknown key \"Extra\"");
}

TEST(PolicyParseTest, ActionsAreCaseInsensitiveAndWildcardsMustMatchSomething) {
  EXPECT_OK(Policy::Parse(
      R"({"Statement": [{"Effect": "Allow", "Action": "PREDICTIONS:get", "Resource": "*"}]})"));
  EXPECT_OK(
      Policy::Parse(R"({"Statement": [{"Effect": "Allow", "Action": "*:Get", "Resource": "*"}]})"));
  EXPECT_OK(Policy::Parse(
      R"({"Statement": [{"Effect": "Allow", "Action": "executions:*", "Resource": "*"}]})"));
}

TEST(PolicyParseTest, EveryKnownActionParses) {
  for (std::string_view a : serve::kAllActions) {
    std::string doc = R"({"Statement": [{"Effect": "Allow", "Action": ")" + std::string(a) +
                      R"(", "Resource": "*"}]})";
    SCOPED_TRACE(std::string(a));
    EXPECT_OK(Policy::Parse(doc));
  }
}

// ---- evaluation ----

TEST(PolicyEvaluateTest, AllowsOnlyWhatAStatementAllows) {
  Policy p = MustParse(kReadPredictions);
  Decision d = p.Evaluate(serve::actions::kPredictionsGet, serve::ModelResource("engagement"));
  EXPECT_TRUE(d.allowed());
  EXPECT_EQ(d.statement, 0);
  EXPECT_EQ(d.name(), "allow");
  EXPECT_TRUE(p.Evaluate("predictions:BatchGet", "model/churn").allowed());
  // Default deny: another action, another resource type.
  Decision other = p.Evaluate(serve::actions::kPredictionsScore, "model/engagement");
  EXPECT_FALSE(other.allowed());
  EXPECT_EQ(other.kind, Decision::Kind::kImplicitDeny);
  EXPECT_EQ(other.statement, -1);
  EXPECT_FALSE(p.Evaluate("predictions:Get", "table/events").allowed());
  EXPECT_FALSE(p.Evaluate("predictions:Get", "*").allowed());
  // Action names ignore case; resources do not.
  EXPECT_TRUE(p.Evaluate("PREDICTIONS:GET", "model/engagement").allowed());
  EXPECT_FALSE(p.Evaluate("predictions:Get", "Model/engagement").allowed());
}

TEST(PolicyEvaluateTest, ExplicitDenyWinsWhateverTheOrder) {
  for (bool deny_first : {false, true}) {
    std::string allow = R"({"Effect": "Allow", "Action": "predictions:*", "Resource": "*"})";
    std::string deny =
        R"({"Sid": "NoScore", "Effect": "Deny", "Action": "predictions:Score",
            "Resource": "model/*"})";
    Policy p = MustParse(R"({"Statement": [)" +
                         (deny_first ? deny + "," + allow : allow + "," + deny) + "]}");
    Decision d = p.Evaluate("predictions:Score", "model/engagement");
    EXPECT_EQ(d.kind, Decision::Kind::kExplicitDeny);
    EXPECT_EQ(p.statements()[d.statement].sid, "NoScore");
    EXPECT_EQ(d.name(), "explicit-deny");
    EXPECT_TRUE(p.Evaluate("predictions:Get", "model/engagement").allowed());
  }
}

TEST(PolicyEvaluateTest, WildcardsAndListsInActionsAndResources) {
  Policy p = MustParse(R"({"Statement": [
      {"Effect": "Allow", "Action": ["query:Run"], "Resource": ["table/events", "table/ord?rs"]},
      {"Effect": "Allow", "Action": "executions:*", "Resource": "pipeline/daily-*"},
      {"Effect": "Allow", "Action": ["models:List", "models:Get"], "Resource": "model/*"},
      {"Effect": "Allow", "Action": "*:Get", "Resource": "*"}]})");
  EXPECT_TRUE(p.Evaluate("query:Run", "table/events").allowed());
  EXPECT_TRUE(p.Evaluate("query:Run", "table/orders").allowed());
  EXPECT_FALSE(p.Evaluate("query:Run", "table/customers").allowed());
  EXPECT_TRUE(p.Evaluate("executions:Start", "pipeline/daily-scores").allowed());
  EXPECT_FALSE(p.Evaluate("executions:Start", "pipeline/weekly").allowed());
  EXPECT_TRUE(p.Evaluate("models:List", "model/*").allowed());
  EXPECT_FALSE(p.Evaluate("models:Promote", "model/engagement").allowed());
  EXPECT_TRUE(p.Evaluate("metrics:Get", "*").allowed());
  EXPECT_FALSE(p.Evaluate("metrics:List", "x").allowed());
}

TEST(PolicyEvaluateTest, ShippedExamplePoliciesParseAndMeanWhatTheySay) {
  auto load = [](const std::string& name) {
    std::ifstream in(std::string(ENGAGE_SOURCE_DIR) + "/examples/policies/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return MustParse(ss.str());
  };
  Policy ro = load("predictions-read-only.json");
  EXPECT_TRUE(ro.Evaluate("predictions:Get", "model/engagement").allowed());
  EXPECT_TRUE(ro.Evaluate("predictions:BatchGet", "model/engagement").allowed());
  EXPECT_FALSE(ro.Evaluate("predictions:Score", "model/engagement").allowed());
  EXPECT_FALSE(ro.Evaluate("query:Run", "table/events").allowed());
  Policy analyst = load("analyst.json");
  EXPECT_TRUE(analyst.Evaluate("query:Run", "table/events").allowed());
  EXPECT_FALSE(analyst.Evaluate("query:Run", "table/customers").allowed());
  EXPECT_TRUE(analyst.Evaluate("predictions:Get", "model/engagement").allowed());
  EXPECT_FALSE(analyst.Evaluate("keys:Create", "*").allowed());
  Policy admin = load("admin.json");
  for (std::string_view a : serve::kAllActions) EXPECT_TRUE(admin.Evaluate(a, "*").allowed()) << a;
}

// ---- API keys ----

class KeyStoreTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<serve::KeyStore>> Open() {
    return serve::KeyStore::Open(meta_db_, clock_);
  }

  TempDir dir_;
  std::string meta_db_ = dir_.path() + "/meta.db";
  FakeClock clock_{1700000000LL * 1000000};
};

TEST_F(KeyStoreTest, CreatedKeyAuthenticatesWithItsPolicy) {
  auto store = Open();
  ASSERT_OK(store);
  auto k = (*store)->Create("crm-sync", MustParse(kReadPredictions));
  ASSERT_OK(k);
  EXPECT_EQ(k->token.size(), 3u + 12 + 1 + 64);
  EXPECT_EQ(k->token.substr(0, 3 + 12 + 1), "ek_" + k->key.id + "_");
  auto who = (*store)->Authenticate(k->token);
  ASSERT_OK(who);
  EXPECT_EQ(who->key_id, k->key.id);
  EXPECT_EQ(who->name, "crm-sync");
  EXPECT_TRUE(who->Evaluate("predictions:Get", "model/engagement").allowed());
  EXPECT_FALSE(who->Evaluate("query:Run", "table/events").allowed());
  // As an Authorization header value too.
  EXPECT_OK((*store)->Authenticate("Bearer " + k->token));
  EXPECT_OK((*store)->Authenticate("bearer  " + k->token + " "));
}

TEST_F(KeyStoreTest, TwoKeysGetDifferentTokens) {
  auto store = Open();
  ASSERT_OK(store);
  auto a = (*store)->Create("a", MustParse(kReadPredictions));
  auto b = (*store)->Create("a", MustParse(kReadPredictions));
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_NE(a->key.id, b->key.id);
  EXPECT_NE(a->token.substr(16), b->token.substr(16));
}

TEST_F(KeyStoreTest, BadTokensAreUnauthenticated) {
  auto store = Open();
  ASSERT_OK(store);
  auto k = (*store)->Create("crm-sync", MustParse(kReadPredictions));
  ASSERT_OK(k);
  auto& s = **store;
  auto expect_unauthenticated = [&](const std::string& token, const std::string& needle) {
    auto r = s.Authenticate(token);
    ASSERT_FALSE(r.ok()) << token;
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    // The presented secret never appears in the message.
    if (token.size() > 20) {
      EXPECT_EQ(r.status().message().find(token.substr(token.size() - 20)), std::string::npos);
    }
  };
  expect_unauthenticated("", "missing API key");
  expect_unauthenticated("Bearer ", "missing API key");
  expect_unauthenticated("hunter2", "malformed API key");
  expect_unauthenticated("Basic dXNlcjpwYXNz", "malformed API key");
  expect_unauthenticated(k->token.substr(0, k->token.size() - 1), "malformed API key");
  expect_unauthenticated(k->token + "0", "malformed API key");
  std::string upper = k->token;
  upper.back() = upper.back() == 'a' ? 'B' : 'A';
  expect_unauthenticated(upper, "malformed API key");
  // Wrong secret for a real id, and an unknown id: the same answer.
  std::string wrong = k->token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  expect_unauthenticated(wrong, "invalid API key");
  std::string unknown = "ek_000000000000_" + k->token.substr(16);
  expect_unauthenticated(unknown, "invalid API key");
  // Revoked.
  auto revoked = s.Revoke(k->key.id);
  ASSERT_OK(revoked);
  EXPECT_TRUE(revoked->revoked());
  expect_unauthenticated(k->token, "was revoked");
}

// Authenticate remembers the tokens a thread verified (no SHA-256 per request): that memory
// must never accept a different secret nor outlive a revoke.
TEST_F(KeyStoreTest, ARememberedTokenIsForgottenOnRevokeAndNeverMatchesAnother) {
  auto store = Open();
  ASSERT_OK(store);
  auto k = (*store)->Create("crm-sync", MustParse(kReadPredictions));
  ASSERT_OK(k);
  auto& s = **store;
  for (int i = 0; i < 3; ++i) ASSERT_OK(s.Authenticate("Bearer " + k->token));
  std::string wrong = k->token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_STATUS_CODE(s.Authenticate(wrong), StatusCode::kUnauthenticated);
  ASSERT_OK(s.Authenticate(k->token));
  ASSERT_OK(s.Revoke(k->key.id));
  auto after = s.Authenticate(k->token);
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.status().message().find("was revoked"), std::string::npos);
}

TEST_F(KeyStoreTest, RevokeIsIdempotentAndUnknownIdsAreNotFound) {
  auto store = Open();
  ASSERT_OK(store);
  auto k = (*store)->Create("crm-sync", MustParse(kReadPredictions));
  ASSERT_OK(k);
  auto first = (*store)->Revoke(k->key.id);
  ASSERT_OK(first);
  clock_.AdvanceMicros(5000000);
  auto second = (*store)->Revoke(k->key.id);
  ASSERT_OK(second);
  EXPECT_EQ(second->revoked_micros, first->revoked_micros);
  EXPECT_STATUS_CODE((*store)->Revoke("ffffffffffff"), StatusCode::kNotFound);
}

TEST_F(KeyStoreTest, ListNeverShowsSecrets) {
  auto store = Open();
  ASSERT_OK(store);
  auto k = (*store)->Create("crm-sync", MustParse(kReadPredictions));
  ASSERT_OK(k);
  ASSERT_OK((*store)->Create("analyst", MustParse(kReadPredictions)));
  auto list = (*store)->List();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 2u);
  std::string secret = k->token.substr(16);
  for (const auto& key : *list) {
    EXPECT_EQ(DumpJson(key.ToJson()).find(secret), std::string::npos);
    EXPECT_FALSE(key.revoked());
    ASSERT_NE(key.policy, nullptr);
  }
  Json j = (*list)[0].ToJson();
  EXPECT_EQ(j["created_at"], "2023-11-14T22:13:20Z");
  EXPECT_TRUE(j["revoked_at"].is_null());
}

TEST_F(KeyStoreTest, SecretIsNeverStored) {
  std::string token;
  {
    auto store = Open();
    ASSERT_OK(store);
    auto k = (*store)->Create("crm-sync", MustParse(kReadPredictions));
    ASSERT_OK(k);
    token = k->token;
    ASSERT_OK((*store)->Authenticate(token));
    ASSERT_OK((*store)->SaveLastUsed());
  }
  std::string secret = token.substr(16);
  // The database and any WAL or journal left beside it.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    ++files;
    EXPECT_EQ(ss.str().find(secret), std::string::npos) << e.path();
    EXPECT_EQ(ss.str().find(secret.substr(0, 16)), std::string::npos) << e.path();
  }
  EXPECT_GE(files, 1);
}

TEST_F(KeyStoreTest, RevokeByAnotherProcessIsSeenWithoutRestart) {
  auto server = Open();  // a server's store
  auto cli = Open();     // `engage keys ...` in another process: its own connection
  ASSERT_OK(server);
  ASSERT_OK(cli);
  auto k = (*cli)->Create("crm-sync", MustParse(kReadPredictions));
  ASSERT_OK(k);
  // A key created elsewhere is seen once the refresh interval passed.
  clock_.AdvanceMicros(150000);
  ASSERT_OK((*server)->Authenticate(k->token));
  ASSERT_OK((*cli)->Revoke(k->key.id));
  // Within the refresh interval the server answers from its snapshot (no query per request)...
  clock_.AdvanceMicros(10000);
  EXPECT_OK((*server)->Authenticate(k->token));
  // ...and after it, sees the revoke.
  clock_.AdvanceMicros(150000);
  EXPECT_STATUS_CODE((*server)->Authenticate(k->token), StatusCode::kUnauthenticated);
}

TEST_F(KeyStoreTest, LastUseIsSavedOnRequest) {
  auto store = Open();
  ASSERT_OK(store);
  auto k = (*store)->Create("crm-sync", MustParse(kReadPredictions));
  ASSERT_OK(k);
  clock_.AdvanceMicros(60000000);
  ASSERT_OK((*store)->Authenticate(k->token));
  auto before = (*store)->List();
  ASSERT_OK(before);
  EXPECT_FALSE((*before)[0].last_used_micros.has_value());  // Authenticate writes nothing
  ASSERT_OK((*store)->SaveLastUsed());
  auto after = (*store)->List();
  ASSERT_OK(after);
  EXPECT_EQ((*after)[0].last_used_micros, clock_.NowMicros());
}

TEST_F(KeyStoreTest, RejectsBadNames) {
  auto store = Open();
  ASSERT_OK(store);
  EXPECT_STATUS_CODE((*store)->Create("", MustParse(kReadPredictions)),
                     StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE((*store)->Create(std::string(65, 'x'), MustParse(kReadPredictions)),
                     StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE((*store)->Create("a\nb", MustParse(kReadPredictions)),
                     StatusCode::kInvalidArgument);
}

TEST_F(KeyStoreTest, ConcurrentAuthenticationWhileRevoking) {
  auto store = Open();
  ASSERT_OK(store);
  auto keep = (*store)->Create("keep", MustParse(kReadPredictions));
  auto drop = (*store)->Create("drop", MustParse(kReadPredictions));
  ASSERT_OK(keep);
  ASSERT_OK(drop);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (!(*store)->Authenticate(keep->token).ok()) ++failures;
        (void)(*store)->Authenticate(drop->token);
        clock_.AdvanceMicros(1000);
      }
    });
  }
  ASSERT_OK((*store)->Revoke(drop->key.id));
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_STATUS_CODE((*store)->Authenticate(drop->token), StatusCode::kUnauthenticated);
}

// ---- audit log ----

TEST(AuditLogTest, RecordsAreFlushedAndListedNewestFirst) {
  TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  std::string meta_db = dir.path() + "/meta.db";
  {
    auto log = serve::AuditLog::Open(meta_db, clock);
    ASSERT_OK(log);
    (*log)->Record({.key_id = "abc",
                    .action = "predictions:Get",
                    .resource = "model/engagement",
                    .allowed = true,
                    .detail = Json{{"path", "/v1/customers/42/prediction"}},
                    .remote_address = "127.0.0.1"});
    clock.AdvanceMicros(1000);
    (*log)->Record({.action = "query:Run",
                    .resource = "table/events",
                    .code = StatusCode::kUnauthenticated,
                    .remote_address = "10.0.0.9"});
    ASSERT_OK((*log)->Flush());
    auto list = (*log)->List(10);
    ASSERT_OK(list);
    ASSERT_EQ(list->size(), 2u);
    const auto& newest = (*list)[0];
    EXPECT_EQ(newest.action, "query:Run");
    EXPECT_FALSE(newest.allowed);
    EXPECT_EQ(newest.code, StatusCode::kUnauthenticated);
    EXPECT_EQ(newest.http_status, 401);
    EXPECT_EQ(newest.key_id, "");
    const auto& oldest = (*list)[1];
    EXPECT_EQ(oldest.key_id, "abc");
    EXPECT_TRUE(oldest.allowed);
    EXPECT_EQ(oldest.http_status, 200);
    EXPECT_EQ(oldest.detail["path"], "/v1/customers/42/prediction");
    EXPECT_EQ(oldest.at_micros, 1700000000LL * 1000000);
    Json j = oldest.ToJson();
    EXPECT_EQ(j["decision"], "allow");
    EXPECT_EQ(j["code"], "OK");
    EXPECT_EQ(j["remote_address"], "127.0.0.1");
    EXPECT_EQ(DumpJson((*log)->List(1)->at(0).ToJson()), DumpJson(newest.ToJson()));
    // Recorded but not flushed: the destructor writes it.
    (*log)->Record({.key_id = "abc", .action = "metrics:Get", .resource = "*", .allowed = true});
  }
  auto reopened = serve::AuditLog::Open(meta_db, clock);
  ASSERT_OK(reopened);
  auto list = (*reopened)->List(10);
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), 3u);
}

TEST(AuditLogTest, ManyThreadsRecordWithoutLoss) {
  TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  auto log = serve::AuditLog::Open(dir.path() + "/meta.db", clock, {.flush_batch = 64});
  ASSERT_OK(log);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        (*log)->Record({.key_id = "k" + std::to_string(t),
                        .action = "predictions:Get",
                        .resource = "model/engagement",
                        .allowed = true});
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_OK((*log)->Flush());
  auto list = (*log)->List(10000);
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), 1000u);
  EXPECT_EQ((*log)->dropped(), 0);
}

TEST(AuditLogTest, BufferBeyondItsBoundDropsAndCounts) {
  TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  // A writer that waits long enough for the test to fill the buffer first.
  auto log = serve::AuditLog::Open(
      dir.path() + "/meta.db", clock,
      {.flush_interval_ms = 600000, .flush_batch = 1000000, .max_buffered = 10});
  ASSERT_OK(log);
  for (int i = 0; i < 15; ++i) (*log)->Record({.action = "metrics:Get", .resource = "*"});
  EXPECT_EQ((*log)->dropped(), 5);
  ASSERT_OK((*log)->Flush());
  EXPECT_EQ((*log)->List(100)->size(), 10u);
}

// ---- rate limits ----

TEST(RateLimiterTest, BurstsThenRefusesWithRetryAfterThenRefills) {
  FakeClock clock(1000000);
  serve::RateLimiter limiter({.rate_per_second = 2, .burst = 5});
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(limiter.Take("k1", clock.MonotonicMicros()).allowed) << i;
  }
  serve::RateDecision refused = limiter.Take("k1", clock.MonotonicMicros());
  EXPECT_FALSE(refused.allowed);
  EXPECT_NEAR(refused.retry_after_seconds, 0.5, 1e-9);  // one token at 2/s
  // Other keys have their own buckets.
  EXPECT_TRUE(limiter.Take("k2", clock.MonotonicMicros()).allowed);
  // Refused requests take nothing: after the advertised wait one request passes.
  clock.AdvanceMicros(250000);
  serve::RateDecision half = limiter.Take("k1", clock.MonotonicMicros());
  EXPECT_FALSE(half.allowed);
  EXPECT_NEAR(half.retry_after_seconds, 0.25, 1e-9);
  clock.AdvanceMicros(250000);
  EXPECT_TRUE(limiter.Take("k1", clock.MonotonicMicros()).allowed);
  EXPECT_FALSE(limiter.Take("k1", clock.MonotonicMicros()).allowed);
  // A long rest refills up to the burst, not beyond.
  clock.AdvanceMicros(3600LL * 1000000);
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += limiter.Take("k1", clock.MonotonicMicros()).allowed;
  EXPECT_EQ(allowed, 5);
}

TEST(RateLimiterTest, ZeroRateMeansNoLimitAndClockGoingBackIsHarmless) {
  serve::RateLimiter unlimited({.rate_per_second = 0, .burst = 1});
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.Take("k", 0).allowed);
  serve::RateLimiter limiter({.rate_per_second = 1, .burst = 1});
  EXPECT_TRUE(limiter.Take("k", 10000000).allowed);
  EXPECT_FALSE(limiter.Take("k", 5000000).allowed);
  EXPECT_TRUE(limiter.Take("k", 11000000).allowed);
}

TEST(RateLimiterTest, ConcurrentTakesNeverExceedTheBurst) {
  serve::RateLimiter limiter({.rate_per_second = 1, .burst = 100});
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) allowed += limiter.Take("shared", 0).allowed;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 100);
}

}  // namespace
}  // namespace engage::testing
