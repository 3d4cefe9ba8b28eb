// A flood of denied requests writes a bounded number of audit rows: per client, the first
// max_denials_per_window denials of a window, then one row summarising the rest.
#include <gtest/gtest.h>

#include "engage/app/app.h"
#include "engage/serve/auth.h"
#include "engage/server/api.h"
#include "lake/lake_fixture.h"

namespace engage::testing {
namespace {

int64_t Rows(serve::AuditLog& log) {
  auto list = log.List(1000000);
  EXPECT_TRUE(list.ok()) << list.status().ToString();
  return list.ok() ? static_cast<int64_t>(list->size()) : -1;
}

TEST(AuditFloodTest, DenialsBeyondTheBoundAreCountedAndSummarisedInOneRow) {
  TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  auto log = serve::AuditLog::Open(dir.path() + "/meta.db", clock,
                                   {.max_denials_per_window = 50, .denial_window_ms = 60000});
  ASSERT_OK(log);
  for (int i = 0; i < 10000; ++i) {
    // Each request from a new port of the same address: one client.
    (*log)->Record({.action = "predictions:Get",
                    .code = StatusCode::kUnauthenticated,
                    .remote_address = "10.0.0.9:" + std::to_string(1024 + i)});
  }
  // Another client, and allowed writes, are not held back by the flood.
  (*log)->Record({.key_id = "k1", .action = "query:Run", .resource = "table/customers"});
  (*log)->Record({.key_id = "k1", .action = "models:Promote", .allowed = true});
  ASSERT_OK((*log)->Flush());
  EXPECT_EQ(Rows(**log), 50 + 1 + 2);
  EXPECT_EQ((*log)->suppressed(), 10000 - 50);
  auto list = (*log)->List(1000000);
  ASSERT_OK(list);
  int summaries = 0;
  for (const auto& r : *list) {
    if (r.action != serve::kAuditSuppressed) continue;
    ++summaries;
    EXPECT_EQ(r.detail["suppressed"], 9950);
    EXPECT_EQ(r.detail["message"], "9950 more denials suppressed");
    EXPECT_EQ(r.detail["last_action"], "predictions:Get");
    EXPECT_FALSE(r.allowed);
  }
  EXPECT_EQ(summaries, 1);
  // Within the same window: still counted, not written (a flush only summarises).
  for (int i = 0; i < 100; ++i) {
    (*log)->Record({.action = "predictions:Get", .remote_address = "10.0.0.9:1"});
  }
  ASSERT_OK((*log)->Flush());
  EXPECT_EQ(Rows(**log), 53 + 1);
  // A new window writes again.
  clock.AdvanceMicros(61LL * 1000000);
  for (int i = 0; i < 60; ++i) {
    (*log)->Record({.action = "predictions:Get", .remote_address = "10.0.0.9:1"});
  }
  ASSERT_OK((*log)->Flush());
  EXPECT_EQ(Rows(**log), 54 + 50 + 1);
}

TEST(AuditFloodTest, ClientsBeyondTheTrackedNumberShareOneWindow) {
  TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  auto log = serve::AuditLog::Open(
      dir.path() + "/meta.db", clock,
      {.max_denials_per_window = 2, .denial_window_ms = 60000, .max_denial_clients = 10});
  ASSERT_OK(log);
  for (int i = 0; i < 1000; ++i) {
    (*log)->Record({.action = "x:Y", .remote_address = "10.0.0." + std::to_string(i) + ":80"});
  }
  ASSERT_OK((*log)->Flush());
  // 10 tracked clients with 1 row each, then 2 rows and a summary for the rest together.
  EXPECT_EQ(Rows(**log), 10 + 2 + 1);
}

class AuditFloodApiTest : public LakeTest {};

TEST_F(AuditFloodApiTest, TenThousandBadKeyRequestsWriteAtMostTheBoundPlusASummary) {
  {
    auto opened = app::App::Open(home_, {.clock = &clock_});
    ASSERT_OK(opened);
    auto api = server::Api::Open(**opened, {});
    ASSERT_OK(api);
    for (int i = 0; i < 10000; ++i) {
      server::HttpRequest req;
      req.method = "GET";
      req.path = "/v1/customers/7/prediction";
      req.authorization = "Bearer ek_nosuchkey_" + std::to_string(i);
      req.remote = "192.0.2.1:" + std::to_string(2000 + i % 50000);
      server::HttpResponse res;
      (*api)->Handle(req, res);
      ASSERT_EQ(res.status, 401);
    }
  }  // closing the API flushes the audit log
  auto log = serve::AuditLog::Open(home_.meta_db(), clock_);
  ASSERT_OK(log);
  auto list = (*log)->List(1000000);
  ASSERT_OK(list);
  const int64_t bound = serve::AuditLogOptions{}.max_denials_per_window;
  EXPECT_LE(static_cast<int64_t>(list->size()), bound + 1);
  ASSERT_FALSE(list->empty());
  EXPECT_EQ(list->front().action, serve::kAuditSuppressed);
  EXPECT_EQ(list->front().detail["suppressed"], 10000 - bound);
  EXPECT_EQ(list->front().remote_address.substr(0, 10), "192.0.2.1:");
}

}  // namespace
}  // namespace engage::testing
