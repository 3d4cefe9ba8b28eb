#include "engage/server/api.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "engage/app/app.h"
#include "engage/flow/store.h"
#include "engage/ml/registry.h"
#include "engage/ml/xgb.h"
#include "engage/serve/ab.h"
#include "engage/serve/store.h"
#include "engage/sql/query.h"
#include "lake/lake_fixture.h"
#include "testing/http_client.h"

namespace engage::testing {
namespace {

// A request to make on one route.
struct Sample {
  std::string method;
  std::string pattern;  // the OpenAPI path it exercises
  std::string target;
  std::string body;
  int allowed_status = 200;  // with a key whose policy allows everything
};

class ApiTest : public LakeTest {
 protected:
  void SetUp() override {
    LakeTest::SetUp();
    // Predictions of 20 customers by model engagement version 1, published.
    std::string pq = dir_.path() + "/pred.parquet";
    Scalar(
        "COPY (SELECT i::VARCHAR AS customer_id, TIMESTAMP '2024-05-02 10:00:00' AS scored_at, "
        "DATE '2024-05-01' AS cutoff, i / 100.0 AS score, 'high' AS segment, 0.5 AS p_alive, 1.5 "
        "AS expected_transactions, 20.0 AS clv, '[{\"feature\":\"f\",\"contribution\":0.5}]' AS "
        "reasons, 'engagement' AS model, 1::BIGINT AS model_version FROM range(20) t(i)) TO '" +
        pq + "' (FORMAT parquet)");
    ASSERT_OK(IngestFiles("predictions", {pq}));
    {
      auto lake = Open(false);
      ASSERT_OK(serve::Publish(*lake, {}, clock_));
    }
    auto registry = ml::ModelRegistry::Open(home_, clock_);
    ASSERT_OK(registry);
    // A small real model on two features, registered as engagement version 1.
    ml::TrainData d;
    d.x = ml::DenseMatrix(200, 2);
    d.feature_names = {"recency_days", "orders_90d"};
    for (int64_t r = 0; r < 200; ++r) {
      d.x.at(r, 0) = static_cast<float>(r % 50);
      d.x.at(r, 1) = static_cast<float>(r % 7);
      d.labels.push_back(r % 50 < 20 ? 1.0f : 0.0f);
    }
    ml::TrainParams params;
    params.num_boost_round = 5;
    params.nthread = 1;
    auto model = ml::Train(d, nullptr, params);
    ASSERT_OK(model);
    auto text = model->ToJsonText();
    ASSERT_OK(text);
    ASSERT_OK((*registry)->Register("engagement", *text,
                                    Json{{"metrics", {{"valid", {{"auc", 0.8}}}}}}, {}));

    // One recorded execution of the engagement pipeline.
    auto executions = flow::ExecutionStore::Open(home_.meta_db(), clock_);
    ASSERT_OK(executions);
    flow::CreateExecutionRequest er;
    er.name = "e1";
    er.state_machine = "engagement";
    er.definition = R"({"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}})";
    er.input = Json::object();
    ASSERT_OK((*executions)->Create(er));

    auto keys = serve::KeyStore::Open(home_.meta_db(), clock_);
    ASSERT_OK(keys);
    auto policy = [](const std::string& doc) { return *serve::Policy::Parse(doc); };
    auto admin = (*keys)->Create(
        "admin", policy(R"({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})"));
    ASSERT_OK(admin);
    admin_ = admin->token;
    // Allowed one thing no route needs: every route with an action is denied.
    auto other = (*keys)->Create(
        "other", policy(R"({"Statement":[{"Effect":"Allow","Action":"kb:Ask","Resource":"*"}]})"));
    ASSERT_OK(other);
    other_ = other->token;
    auto revoked = (*keys)->Create(
        "revoked", policy(R"({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})"));
    ASSERT_OK(revoked);
    revoked_ = revoked->token;
    ASSERT_OK((*keys)->Revoke(revoked->key.id));
  }

  void StartServer(server::ApiOptions o = {}) {
    auto opened = app::App::Open(home_, {.clock = &clock_});
    ASSERT_OK(opened);
    app_ = std::move(*opened);
    auto api = server::Api::Open(*app_, o);
    ASSERT_OK(api);
    api_ = std::move(*api);
    server::HttpServerOptions ho;
    ho.port = 0;
    ho.threads = 2;
    server_ = std::make_unique<server::HttpServer>(
        ho, [this](const server::HttpRequest& q, server::HttpResponse& r) { api_->Handle(q, r); },
        [this](const server::HttpRequest& q) { return api_->IsBlocking(q); });
    ASSERT_OK(server_->Start());
    runner_ = std::thread([this] { server_->Run(); });
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (runner_.joinable()) runner_.join();
  }

  HttpResult Call(const Sample& s, const std::string& token) {
    HttpClient c(server_->port());
    std::map<std::string, std::string> h;
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return c.Request(s.method, s.target, s.body, h);
  }

  static std::vector<Sample> Samples() {
    return {
        {"GET", "/healthz", "/healthz"},
        {"GET", "/readyz", "/readyz"},
        {"GET", "/v1/customers/{id}/prediction", "/v1/customers/7/prediction"},
        {"POST", "/v1/predictions:batchGet", "/v1/predictions:batchGet",
         R"({"customer_ids":["1",2,"nobody"]})"},
        {"POST", "/v1/score", "/v1/score",
         R"({"model":"engagement@1","features":{"recency_days":3,"orders_90d":null}})"},
        {"POST", "/v1/query", "/v1/query", R"j({"sql":"SELECT count(*) AS n FROM predictions"})j"},
        {"GET", "/v1/models", "/v1/models"},
        {"GET", "/v1/models/{name}/versions", "/v1/models/engagement/versions"},
        {"PUT", "/v1/models/{name}/aliases/{alias}", "/v1/models/engagement/aliases/challenger",
         R"({"version":1})"},
        {"POST", "/v1/models/{name}:promote", "/v1/models/engagement:promote", R"({"version":1})"},
        {"GET", "/v1/models/{name}/split", "/v1/models/engagement/split"},
        {"PUT", "/v1/models/{name}/split", "/v1/models/engagement/split",
         R"({"arms":[{"name":"a","ref":"1","weight":90},{"name":"b","ref":"1","weight":10}]})"},
        {"DELETE", "/v1/models/{name}/split", "/v1/models/engagement/split"},
        {"PUT", "/v1/state-machines/{name}", "/v1/state-machines/daily",
         R"({"definition":{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}},"role":{"Statement":[{"Effect":"Allow","Action":"engage:query","Resource":"table/events"}]}})"},
        // Runs on the app's execution runner (a Pass: it ends at once).
        {"POST", "/v1/executions", "/v1/executions", R"({"state_machine":"daily"})", 202},
        {"GET", "/v1/executions", "/v1/executions?limit=5"},
        {"GET", "/v1/state-machines", "/v1/state-machines"},
        {"GET", "/v1/state-machines/{name}", "/v1/state-machines/daily"},
        {"GET", "/v1/executions/{id}", "/v1/executions/e1"},
        {"GET", "/v1/executions/{id}/history", "/v1/executions/e1/history"},
        // e1 is RUNNING in meta.db: the stop is requested through it (202).
        {"POST", "/v1/executions/{id}:stop", "/v1/executions/e1:stop", "", 202},
        {"GET", "/metrics", "/metrics"},
        {"GET", "/v1/openapi.json", "/v1/openapi.json"},
    };
  }

  std::unique_ptr<app::App> app_;
  std::unique_ptr<server::Api> api_;
  std::unique_ptr<server::HttpServer> server_;
  std::thread runner_;
  std::string admin_, other_, revoked_;
};

TEST_F(ApiTest, EveryRouteWithNoKeyARevokedKeyADeniedKeyAndAnAllowedKey) {
  StartServer();
  const Json& doc = api_->OpenApi();
  std::set<std::string> covered;
  for (const Sample& s : Samples()) {
    SCOPED_TRACE(s.method + " " + s.target);
    std::string method = s.method;
    for (char& ch : method) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    ASSERT_TRUE(doc["paths"].contains(s.pattern) && doc["paths"][s.pattern].contains(method))
        << "the OpenAPI document lacks the route";
    covered.insert(s.method + " " + s.pattern);
    const Json& op = doc["paths"][s.pattern][method];
    bool needs_key = !op["security"].empty();
    bool has_action = op.contains("x-engage-action");

    auto none = Call(s, "");
    auto revoked = Call(s, revoked_);
    auto denied = Call(s, other_);
    auto allowed = Call(s, admin_);
    if (!needs_key) {
      EXPECT_EQ(none.status, s.allowed_status) << none.body;
      continue;
    }
    EXPECT_EQ(none.status, 401) << none.body;
    EXPECT_EQ(none.headers["www-authenticate"], "Bearer");
    EXPECT_EQ(Json::parse(none.body)["error"]["code"], "UNAUTHENTICATED");
    EXPECT_EQ(revoked.status, 401) << revoked.body;
    if (has_action) {
      EXPECT_EQ(denied.status, 403) << denied.body;
      EXPECT_EQ(Json::parse(denied.body)["error"]["code"], "PERMISSION_DENIED");
    } else {
      EXPECT_EQ(denied.status, 200) << denied.body;  // any valid key
    }
    EXPECT_EQ(allowed.status, s.allowed_status) << allowed.body;
  }
  // Every route the server has is in the samples.
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      std::string m = method;
      for (char& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      EXPECT_TRUE(covered.count(m + " " + path)) << "no sample for " << m << " " << path;
    }
  }
}

TEST_F(ApiTest, PredictionsAndBatchGetBodies) {
  StartServer();
  auto one = Call({"GET", "", "/v1/customers/7/prediction"}, admin_);
  ASSERT_EQ(one.status, 200);
  Json j = Json::parse(one.body);
  EXPECT_EQ(j["customer_id"], "7");
  EXPECT_EQ(j["model_version"], 1);
  EXPECT_EQ(j["reasons"][0]["feature"], "f");
  auto missing = Call({"GET", "", "/v1/customers/nobody/prediction"}, admin_);
  EXPECT_EQ(missing.status, 404);
  auto bad_version = Call({"GET", "", "/v1/customers/7/prediction?version=x"}, admin_);
  EXPECT_EQ(bad_version.status, 400);
  auto other_version = Call({"GET", "", "/v1/customers/7/prediction?version=9"}, admin_);
  EXPECT_EQ(other_version.status, 404);
  auto batch =
      Call({"POST", "", "/v1/predictions:batchGet", R"({"customer_ids":["1",2,"x"]})"}, admin_);
  ASSERT_EQ(batch.status, 200) << batch.body;
  Json b = Json::parse(batch.body);
  EXPECT_EQ(b["predictions"].size(), 2u);
  EXPECT_EQ(b["not_found"], Json::array({"x"}));
  std::string many = "{\"customer_ids\":[";
  for (int i = 0; i < 1001; ++i) many += (i ? "," : "") + std::to_string(i);
  many += "]}";
  EXPECT_EQ(Call({"POST", "", "/v1/predictions:batchGet", many}, admin_).status, 400);
  EXPECT_EQ(Call({"POST", "", "/v1/predictions:batchGet", "not json"}, admin_).status, 400);
  EXPECT_EQ(Call({"POST", "", "/v1/predictions:batchGet", "[]"}, admin_).status, 400);
}

TEST_F(ApiTest, ScoresSuppliedFeaturesWithReasons) {
  StartServer();
  auto low =
      Call({"POST", "", "/v1/score", R"({"model":"engagement@1","features":{"recency_days":45}})"},
           admin_);
  ASSERT_EQ(low.status, 200) << low.body;
  auto high =
      Call({"POST", "", "/v1/score", R"({"model":"engagement@1","features":{"recency_days":3}})"},
           admin_);
  ASSERT_EQ(high.status, 200) << high.body;
  Json l = Json::parse(low.body), h = Json::parse(high.body);
  EXPECT_EQ(h["model_version"], 1);
  EXPECT_GT(h["score"].get<double>(), l["score"].get<double>());
  EXPECT_EQ(h["reasons"][0]["feature"], "recency_days");
  EXPECT_EQ(h["features"], "supplied");
  // The default model is <served model>@champion: none yet.
  EXPECT_EQ(Call({"POST", "", "/v1/score", R"({"features":{}})"}, admin_).status, 404);
  auto unknown =
      Call({"POST", "", "/v1/score", R"({"model":"engagement@1","features":{"nope":1}})"}, admin_);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("unknown feature 'nope'"), std::string::npos);
  EXPECT_EQ(Call({"POST", "", "/v1/score", R"({"model":"engagement@1"})"}, admin_).status, 400);
  // A customer's current features need events: none here.
  auto current =
      Call({"POST", "", "/v1/score", R"({"model":"engagement@1","customer_id":"3"})"}, admin_);
  EXPECT_GE(current.status, 400) << current.body;
  EXPECT_LT(current.status, 500) << current.body;
}

TEST_F(ApiTest, UnknownRoutesAndMethods) {
  StartServer();
  auto r = Call({"GET", "", "/v1/nothing"}, admin_);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Json::parse(r.body)["error"]["code"], "NOT_FOUND");
  auto m = Call({"DELETE", "", "/v1/query"}, admin_);
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.headers["allow"], "POST");
}

TEST_F(ApiTest, QueryIsCheckedPerTableAndReadOnly) {
  StartServer();
  auto keys = serve::KeyStore::Open(home_.meta_db(), clock_);
  auto analyst = (*keys)->Create(
      "analyst",
      *serve::Policy::Parse(
          R"({"Statement":[{"Effect":"Allow","Action":"query:Run","Resource":"table/events"}]})"));
  ASSERT_OK(analyst);
  auto ok =
      Call({"POST", "", "/v1/query", R"j({"sql":"SELECT count(*) FROM events"})j"}, analyst->token);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Json::parse(ok.body)["rows"][0][0], 0);
  auto other_table = Call(
      {"POST", "", "/v1/query", R"j({"sql":"SELECT count(*) FROM predictions"})j"}, analyst->token);
  EXPECT_EQ(other_table.status, 403) << other_table.body;
  EXPECT_NE(other_table.body.find("table/predictions"), std::string::npos);
  auto write = Call({"POST", "", "/v1/query", R"j({"sql":"CREATE TABLE t (x INT)"})j"}, admin_);
  EXPECT_EQ(write.status, 403) << write.body;
  // Every write is refused the same way (DELETE FROM a view used to be a 400 binder error), and
  // an unknown table is not found, named, with the lake's tables.
  auto del = Call({"POST", "", "/v1/query", R"j({"sql":"DELETE FROM events"})j"}, admin_);
  EXPECT_EQ(del.status, 403) << del.body;
  auto unknown = Call({"POST", "", "/v1/query", R"j({"sql":"SELECT * FROM nope"})j"}, admin_);
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find("no table named 'nope'"), std::string::npos) << unknown.body;
  EXPECT_EQ(unknown.body.find("pg_enum"), std::string::npos) << unknown.body;
  auto files = Call(
      {"POST", "", "/v1/query", R"j({"sql":"SELECT * FROM read_csv('/etc/passwd')"})j"}, admin_);
  EXPECT_GE(files.status, 400) << files.body;
  EXPECT_EQ(Call({"POST", "", "/v1/query", R"({"sql": 3})"}, admin_).status, 400);
}

TEST_F(ApiTest, RateLimitAnswers429WithRetryAfter) {
  server::ApiOptions o;
  o.rate.rate_per_second = 1;
  o.rate.burst = 2;
  StartServer(o);
  Sample s{"GET", "", "/v1/customers/1/prediction"};
  EXPECT_EQ(Call(s, admin_).status, 200);
  EXPECT_EQ(Call(s, admin_).status, 200);
  auto limited = Call(s, admin_);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.headers["retry-after"], "1");
  // Another key has its own bucket.
  EXPECT_EQ(Call(s, other_).status, 403);
}

TEST_F(ApiTest, MetricsCountRequestsPerRoute) {
  StartServer();
  Call({"GET", "", "/v1/customers/1/prediction"}, admin_);
  Call({"GET", "", "/v1/customers/1/prediction"}, "");
  auto m = Call({"GET", "", "/metrics"}, admin_);
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.headers["content-type"], "text/plain; version=0.0.4");
  EXPECT_NE(
      m.body.find(
          R"(engage_http_requests_total{route="GET /v1/customers/{id}/prediction",code="200"} 1)"),
      std::string::npos)
      << m.body;
  EXPECT_NE(
      m.body.find(
          R"(engage_http_requests_total{route="GET /v1/customers/{id}/prediction",code="401"} 1)"),
      std::string::npos);
  EXPECT_NE(m.body.find(R"(engage_store_customers{model="engagement",version="1"} 20)"),
            std::string::npos);
  EXPECT_NE(m.body.find("engage_http_request_duration_seconds_bucket"), std::string::npos);
}

TEST_F(ApiTest, ModelVersionsCarryNoServerPaths) {
  StartServer();
  auto r = Call({"GET", "", "/v1/models/engagement/versions"}, admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find(home_.root), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("\"path\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"version\":1"), std::string::npos) << r.body;
}

TEST_F(ApiTest, DeniedRequestsAndWritesAreAudited) {
  StartServer();
  Call({"GET", "", "/v1/customers/1/prediction"}, other_);
  Call({"GET", "", "/v1/customers/1/prediction"}, "");
  Call({"PUT", "", "/v1/models/engagement/aliases/challenger", R"({"version":1})"}, admin_);
  // Allowed by the policy but failing: recorded as allowed, with its outcome.
  Call({"PUT", "", "/v1/models/engagement/aliases/challenger", R"({"version":99})"}, admin_);
  Call({"GET", "", "/v1/customers/1/prediction"}, admin_);  // an allowed read: not audited
  server_->Stop();
  runner_.join();
  api_.reset();  // flushes the audit log
  auto audit = serve::AuditLog::Open(home_.meta_db(), clock_);
  ASSERT_OK(audit);
  auto records = (*audit)->List(10);
  ASSERT_OK(records);
  ASSERT_EQ(records->size(), 4u);
  std::multiset<std::string> seen;
  for (const auto& r : *records) {
    seen.insert(fmt::format("{} {} {}", r.action, r.allowed ? "allow" : "deny", r.http_status));
  }
  EXPECT_EQ(seen,
            (std::multiset<std::string>{"predictions:Get deny 403", "predictions:Get deny 401",
                                        "models:SetAlias allow 200", "models:SetAlias allow 404"}));
}

TEST_F(ApiTest, ATrafficSplitRoutesCustomersByHashRecordsExposuresAndReportsOutcomes) {
  // Version 2 scores the same 20 customers; a 50/50 split between versions 1 and 2.
  std::string pq = dir_.path() + "/pred2.parquet";
  Scalar(
      "COPY (SELECT i::VARCHAR AS customer_id, TIMESTAMP '2024-05-03 10:00:00' AS scored_at, "
      "DATE '2024-05-01' AS cutoff, 0.5 AS score, 'high' AS segment, 0.5 AS p_alive, 1.5 AS "
      "expected_transactions, 20.0 AS clv, '[]' AS reasons, 'engagement' AS model, 2::BIGINT AS "
      "model_version FROM range(20) t(i)) TO '" +
      pq + "' (FORMAT parquet)");
  ASSERT_OK(IngestFiles("predictions", {pq}));
  auto split = serve::TrafficSplit::Parse("engagement", {"control:1=50", "treatment:2=50"});
  ASSERT_OK(split);
  split->arms[0].version = 1;
  split->arms[1].version = 2;
  {
    auto lake = Open(false);
    serve::PublishOptions o;
    o.versions = {1, 2};
    o.split = *split;
    clock_.AdvanceMicros(1000000);
    ASSERT_OK(serve::Publish(*lake, o, clock_));
  }
  StartServer();
  std::map<std::string, int> arms;
  for (int i = 0; i < 20; ++i) {
    std::string id = std::to_string(i);
    auto r = Call({"GET", "", "/v1/customers/" + id + "/prediction"}, admin_);
    ASSERT_EQ(r.status, 200) << r.body;
    Json j = Json::parse(r.body);
    size_t arm = split->Assign(id);
    EXPECT_EQ(j["arm"], split->arms[arm].name);
    EXPECT_EQ(j["model_version"], split->arms[arm].version);
    arms[j["arm"]]++;
    // The same customer always gets the same arm; an explicit version bypasses the split.
    EXPECT_EQ(
        Json::parse(Call({"GET", "", "/v1/customers/" + id + "/prediction"}, admin_).body)["arm"],
        j["arm"]);
    auto pinned = Json::parse(
        Call({"GET", "", "/v1/customers/" + id + "/prediction?version=1"}, admin_).body);
    EXPECT_FALSE(pinned.contains("arm"));
  }
  EXPECT_EQ(arms.size(), 2u);
  server_->Stop();
  runner_.join();
  api_.reset();  // flushes the exposures

  // Labels arrive later: customers 0-9 buy within 30 days of exposure, 10-19 only after it;
  // an event 60 days later marks the labels as complete.
  clock_.AdvanceMicros(90LL * 86400 * 1000000);
  std::string ev = dir_.path() + "/events.parquet";
  Scalar(
      "COPY (SELECT i AS event_id, i % 20 AS customer_id, CASE WHEN i < 10 THEN TIMESTAMP "
      "'2024-06-05' WHEN i < 20 THEN TIMESTAMP '2024-07-20' ELSE TIMESTAMP '2024-08-15' END AS "
      "event_time, 'purchase' AS event_type, 'web' AS channel, 10.0 AS amount, NULL AS properties "
      "FROM range(21) t(i)) TO '" +
      ev + "' (FORMAT parquet)");
  ASSERT_OK(IngestFiles("events", {ev}));
  auto lake = Open(false);
  auto engine = sql::QueryEngine::Open(*lake, 1);
  ASSERT_OK(engine);
  auto report = serve::ReportAb(**engine, home_, lake->config().engagement, "engagement", 30);
  ASSERT_OK(report);
  ASSERT_EQ(report->arms.size(), 2u);
  int64_t exposed = 0, engaged = 0;
  for (const auto& o : report->arms) {
    exposed += o.exposed;
    engaged += o.engaged;
    EXPECT_EQ(o.labelled, o.exposed);
    EXPECT_LE(o.ci_low, o.rate);
    EXPECT_GE(o.ci_high, o.rate);
    int64_t expected = 0;
    for (int i = 0; i < 10; ++i) {
      expected += split->arms[split->Assign(std::to_string(i))].name == o.arm ? 1 : 0;
    }
    EXPECT_EQ(o.engaged, expected) << o.arm;
  }
  EXPECT_EQ(exposed, 20);
  EXPECT_EQ(engaged, 10);
  EXPECT_EQ(report->arms[0].diff, 0);
  EXPECT_NEAR(report->arms[1].diff, report->arms[1].rate - report->arms[0].rate, 1e-12);
  EXPECT_LT(report->arms[1].diff_ci_low, report->arms[1].diff);
  EXPECT_TRUE(report->ToJson()["arms"][1]["rate"].is_number());
  // Before any outcome is known, an arm has no rate, not a confident 0%.
  serve::AbReport pending = *report;
  for (auto& o : pending.arms) o.labelled = o.engaged = 0;
  EXPECT_TRUE(pending.ToJson()["arms"][0]["rate"].is_null());
  EXPECT_TRUE(pending.ToJson()["arms"][1]["diff_ci95"].is_null());
  EXPECT_NE(pending.ToText().find("n/a (no outcome yet)"), std::string::npos) << pending.ToText();
}

TEST_F(ApiTest, QueryIsAuthorizedOnTheTablesDuckDbResolved) {
  // F2: names in other spellings, table functions and lake paths used to pass a textual check.
  std::string c = dir_.WriteFile("c.csv", "customer_id,signup_time\n1,2024-01-01 00:00:00\n");
  ASSERT_OK(IngestFiles("customers", {c}));
  StartServer();
  auto keys = serve::KeyStore::Open(home_.meta_db(), clock_);
  auto events_only = (*keys)->Create(
      "events-only",
      *serve::Policy::Parse(
          R"({"Statement":[{"Effect":"Allow","Action":"query:Run","Resource":"table/events"}]})"));
  ASSERT_OK(events_only);
  std::ifstream ro_file(std::string(ENGAGE_SOURCE_DIR) +
                        "/examples/policies/predictions-read-only.json");
  std::stringstream ro_text;
  ro_text << ro_file.rdbuf();
  auto ro = (*keys)->Create("ro", *serve::Policy::Parse(ro_text.str()));
  ASSERT_OK(ro);
  std::string lake_glob = home_.lake() + "/customers/*/*.parquet";
  for (const std::string& sql :
       {std::string("SELECT * FROM CUSTOMERS LIMIT 2"), std::string("FROM \"Customers\""),
        std::string("SELECT * FROM query_table('customers')"),
        std::string("SELECT * FROM Predictions"),
        std::string("SELECT * FROM query('SELECT * FROM customers')"),
        "SELECT * FROM read_parquet('" + lake_glob + "')",
        "SELECT * FROM read_text('" + lake_glob + "')",
        std::string("EXPLAIN ANALYZE SELECT * FROM customers")}) {
    std::string body = Json{{"sql", sql}}.dump();
    auto by_ro = Call({"POST", "", "/v1/query", body}, ro->token);
    EXPECT_EQ(by_ro.status, 403) << sql << ": " << by_ro.body;
    auto by_events = Call({"POST", "", "/v1/query", body}, events_only->token);
    EXPECT_EQ(by_events.status, 403) << sql << ": " << by_events.body;
    EXPECT_EQ(by_events.body.find("\"rows\""), std::string::npos) << sql;
  }
  auto ok = Call({"POST", "", "/v1/query", R"j({"sql":"SELECT count(*) FROM \"EVENTS\""})j"},
                 events_only->token);
  EXPECT_EQ(ok.status, 200) << ok.body;
  // Denials name the table they were refused; successful reads are audited with theirs.
  server_->Stop();
  runner_.join();
  api_.reset();
  auto audit = serve::AuditLog::Open(home_.meta_db(), clock_);
  ASSERT_OK(audit);
  auto records = (*audit)->List(100);
  ASSERT_OK(records);
  int denied_customers = 0;
  bool read_events = false;
  for (const auto& r : *records) {
    if (r.action != "query:Run") continue;
    if (!r.allowed && r.resource == "table/customers") ++denied_customers;
    if (r.allowed && r.resource == "table/events") read_events = true;
  }
  EXPECT_GE(denied_customers, 5);
  EXPECT_TRUE(read_events);
}

TEST_F(ApiTest, DeeplyNestedBodiesAreRefusedAndNeverParsedForADeniedKey) {
  // F1: 50,000 levels used to overflow the stack (the server died, whatever the key).
  StartServer();
  std::string deep = std::string(50000, '[') + std::string(50000, ']');
  struct Case {
    std::string method, target, body;
  };
  for (const Case& k :
       {Case{"POST", "/v1/score", "{\"features\":{\"x\":" + deep + "}}"},
        Case{"POST", "/v1/executions", "{\"pipeline\":\"engagement\",\"input\":" + deep + "}"},
        Case{"PUT", "/v1/models/engagement/split", "{\"arms\":[{\"ref\":" + deep + "}]}"},
        Case{"POST", "/v1/query", "{\"sql\":" + deep + "}"},
        Case{"POST", "/v1/predictions:batchGet", "{\"customer_ids\":" + deep + "}"}}) {
    auto denied = Call({k.method, "", k.target, k.body}, other_);
    EXPECT_EQ(denied.status, 403) << k.target << ": " << denied.body;
    auto allowed = Call({k.method, "", k.target, k.body}, admin_);
    EXPECT_EQ(allowed.status, 400) << k.target << ": " << allowed.body;
    EXPECT_NE(allowed.body.find("nested deeper than"), std::string::npos) << allowed.body;
  }
  EXPECT_EQ(Call({"GET", "", "/healthz"}, "").status, 200);  // still alive
}

TEST_F(ApiTest, AQueryStopsAtItsTimeoutAndWhenTheClientGoesAway) {
  // F6: a cross join used to run for ever, holding a blocking thread and a core.
  std::string pq = dir_.path() + "/ev.parquet";
  Scalar(
      "COPY (SELECT i AS event_id, i % 97 AS customer_id, TIMESTAMP '2024-05-01' + INTERVAL (i) "
      "SECOND AS event_time, 'purchase' AS event_type, 'web' AS channel, 1.0 AS amount, '' AS "
      "properties FROM range(20000) t(i)) TO '" +
      pq + "' (FORMAT parquet)");
  ASSERT_OK(IngestFiles("events", {pq}));
  StartServer();
  const std::string runaway = "SELECT count(*) FROM events a, events b, events c";
  auto timed_out = Call(
      {"POST", "", "/v1/query", Json{{"sql", runaway}, {"timeout_seconds", 1}}.dump()}, admin_);
  EXPECT_EQ(timed_out.status, 504) << timed_out.body;
  EXPECT_NE(timed_out.body.find("time limit"), std::string::npos) << timed_out.body;

  // A client that sends the query and hangs up: the query is cancelled, not run to the end.
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string body = Json{{"sql", runaway}}.dump();
    std::string request =
        "POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    ASSERT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::close(fd);
  }
  bool cancelled = false;
  for (int i = 0; i < 200 && !cancelled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto lake = Open(false);
    auto history = lake->catalog().QueryHistory(5);
    ASSERT_OK(history);
    for (const auto& q : *history) {
      if (q.sql == runaway && q.error.find("cancelled") != std::string::npos) cancelled = true;
    }
  }
  EXPECT_TRUE(cancelled) << "the abandoned query was not cancelled within 20 s";
  // The blocking threads are free again.
  auto after =
      Call({"POST", "", "/v1/query", R"j({"sql":"SELECT count(*) FROM events"})j"}, admin_);
  EXPECT_EQ(after.status, 200) << after.body;
}

}  // namespace
}  // namespace engage::testing
