// The JSONata behaviours ASL relies on beyond the reference suite: AWS's $range as a sequence
// and refusing function results (EvalOptions::allow_function_result).
#include <gtest/gtest.h>

#include "engage/jsonata/jsonata.h"

namespace engage::jsonata {
namespace {

Outcome<std::optional<Json>> RunAws(const std::string& expr, bool allow_functions = true) {
  auto e = Expression::Compile(expr);
  if (!e.ok()) return e.error();
  EvalOptions o;
  o.aws_functions = true;
  o.allow_function_result = allow_functions;
  return e->Evaluate(nullptr, {}, o);
}

TEST(JsonataAwsTest, RangeWithOneItemIsUnwrapped) {
  auto r = RunAws("$range(1, 9, 9)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(**r, Json(1));
  r = RunAws("$range(1, 3)");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json::parse("[1,2,3]"));
}

TEST(JsonataAwsTest, FunctionResultIsRefusedWhenAsked) {
  auto r = RunAws("$fn := function($x){$x}", false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "F0001");
  // By default a function serializes as "" (JSON.stringify drops it inside objects).
  r = RunAws("$fn := function($x){$x}", true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json(""));
}

}  // namespace
}  // namespace engage::jsonata
