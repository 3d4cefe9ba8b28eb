#include "engage/serve/ab.h"

#include <gtest/gtest.h>

#include <string>

namespace engage::testing {
namespace {

using serve::TrafficSplit;

TEST(TrafficSplitTest, ParsesArmsAndRefs) {
  auto s = TrafficSplit::Parse("engagement", {"champion=90", "new:7=10"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->arms.size(), 2u);
  EXPECT_EQ(s->arms[0].name, "champion");
  EXPECT_EQ(s->arms[0].ref, "champion");
  EXPECT_EQ(s->arms[1].name, "new");
  EXPECT_EQ(s->arms[1].ref, "7");
  EXPECT_EQ(s->arms[1].weight, 10);
  EXPECT_EQ(s->salt, "engagement");
  auto round = TrafficSplit::FromJson(s->ToJson());
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->ToJson(), s->ToJson());
}

TEST(TrafficSplitTest, RejectsBadSplitsClearly) {
  auto msg = [](std::vector<std::string> arms) {
    auto s = TrafficSplit::Parse("m", arms);
    EXPECT_FALSE(s.ok());
    return s.ok() ? std::string() : s.status().message();
  };
  EXPECT_NE(msg({"a=100"}).find("2 to 10 arms"), std::string::npos);
  EXPECT_NE(msg({"a=50", "b=40"}).find("sum to 90"), std::string::npos);
  EXPECT_NE(msg({"a=50", "a=50"}).find("listed twice"), std::string::npos);
  EXPECT_NE(msg({"a=50", "b"}).find("name=weight"), std::string::npos);
  EXPECT_NE(msg({"a=50", "b=x"}).find("not a number"), std::string::npos);
  EXPECT_NE(msg({"a=110", "b=-10"}).find("weight"), std::string::npos);
}

TEST(TrafficSplitTest, AssignmentIsDeterministicAndFollowsTheWeights) {
  auto s = TrafficSplit::Parse("engagement", {"champion=90", "challenger=10"});
  ASSERT_TRUE(s.ok());
  int challenger = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    std::string id = "customer-" + std::to_string(i);
    size_t a = s->Assign(id);
    EXPECT_EQ(a, s->Assign(id));
    challenger += a == 1 ? 1 : 0;
  }
  // 10% within 5 standard errors (sd = sqrt(0.09 / n) ~ 0.095%).
  EXPECT_NEAR(challenger / static_cast<double>(n), 0.10, 0.005);
  // Another salt reshuffles customers.
  auto other = TrafficSplit::Parse("engagement", {"champion=90", "challenger=10"}, "round-2");
  int moved = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string id = "customer-" + std::to_string(i);
    moved += s->Assign(id) != other->Assign(id) ? 1 : 0;
  }
  EXPECT_GT(moved, 50);
}

}  // namespace
}  // namespace engage::testing
