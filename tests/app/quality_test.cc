// The pipeline's data-quality step: the built-in checks plus those declared on the events table,
// which are recorded like `engage check`'s.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "engage/app/app.h"
#include "engage/monitor/checks.h"
#include "lake/lake_fixture.h"

namespace engage::app {
namespace {

class QualityTest : public engage::testing::LakeTest {};

TEST_F(QualityTest, DeclaredChecksOfTheEventsTableRunWithTheBuiltInOnes) {
  AppendConfig(R"(
[[tables.events.checks]]
type = "not_null"
column = "channel"
name = "channel_known"
)");
  std::string csv = engage::testing::EventsHeader();
  for (int i = 1; i <= 6; ++i) {
    csv += fmt::format("{},1,2024-05-0{} 12:00:00,purchase,{},,\n", i, i, i == 3 ? "" : "web");
  }
  ASSERT_TRUE(IngestFiles("events", {dir_.WriteFile("e.csv", csv)}).ok());
  auto lake = Open(false);
  auto engine = sql::QueryEngine::Open(*lake, 1);
  ASSERT_TRUE(engine.ok());
  auto report = RunQualityChecks(*lake, **engine);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE((*report)["passed"].get<bool>());
  const Json* declared = nullptr;
  for (const Json& c : (*report)["checks"]) {
    if (c.value("check", "") == "channel_known") declared = &c;
  }
  ASSERT_NE(declared, nullptr) << report->dump();
  EXPECT_EQ((*declared)["failing_rows"], 1);
  EXPECT_EQ((*declared)["declared"], true);
  EXPECT_TRUE((*report)["checks"][0].contains("check"));  // the built-in ones stay first
  auto store = monitor::CheckStore::Open(home_.meta_db());
  ASSERT_TRUE(store.ok());
  auto history = (*store)->History(5);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].table, "events");
}

}  // namespace
}  // namespace engage::app
