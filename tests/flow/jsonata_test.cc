// Unit tests of the native JSONata engine, one per behaviour.

#include "engage/flow/jsonata.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "engage/core/clock.h"
#include "engage/core/json.h"

namespace engage::flow::jsonata {
namespace {

// Compiles and evaluates `expr` against `input` (JSON text, "" for no input).
Outcome<std::optional<Json>> RunExpr(const std::string& expr, const std::string& input = "",
                                     const Bindings& bindings = {}, const EvalOptions& opts = {}) {
  auto e = Expression::Compile(expr);
  if (!e.ok()) return e.error();
  if (input.empty()) return e->Evaluate(nullptr, bindings, opts);
  Json in = Json::parse(input);
  return e->Evaluate(&in, bindings, opts);
}

Json Eval(const std::string& expr, const std::string& input = "") {
  auto r = RunExpr(expr, input);
  EXPECT_TRUE(r.ok()) << expr << ": " << (r.ok() ? "" : r.error().code + " " + r.error().message);
  if (!r.ok() || !r->has_value()) return Json("<undefined>");
  return **r;
}

std::string ErrorCode(const std::string& expr, const std::string& input = "") {
  auto r = RunExpr(expr, input);
  return r.ok() ? "ok" : r.error().code;
}

TEST(JsonataTest, ArithmeticOnInputFields) {
  EXPECT_EQ(Eval("a + 1", R"({"a": 41})"), Json(42));
  EXPECT_EQ(Eval("$states.input.x * 2"), Json("<undefined>"));
}

TEST(JsonataTest, BindingsAreVariables) {
  Bindings b{{"states", Json::parse(R"({"input": {"x": 4}})")}};
  auto r = RunExpr("$states.input.x + 1", "", b);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json(5));
}

TEST(JsonataTest, IntegralNumbersComeBackAsIntegers) {
  auto r = RunExpr("6 / 2");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)->is_number_integer());
  EXPECT_EQ(Eval("1 / 4"), Json(0.25));
}

TEST(JsonataTest, MissingFieldIsUndefinedNotNull) {
  auto r = RunExpr("nothing", R"({"a": 1})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(Eval("a", R"({"a": null})"), Json(nullptr));
}

TEST(JsonataTest, PathMapsOverArraysAndFlattens) {
  EXPECT_EQ(Eval("a.b", R"({"a": [{"b": [1, 2]}, {"b": 3}]})"), Json::parse("[1,2,3]"));
}

TEST(JsonataTest, SingletonSequenceIsUnwrappedUnlessKeepArray) {
  EXPECT_EQ(Eval("a.b", R"({"a": [{"b": 1}]})"), Json(1));
  EXPECT_EQ(Eval("a.b[]", R"({"a": [{"b": 1}]})"), Json::parse("[1]"));
}

TEST(JsonataTest, PredicateIndexAndFilter) {
  EXPECT_EQ(Eval("a[-1]", R"({"a": [1, 2, 3]})"), Json(3));
  EXPECT_EQ(Eval("a[$ > 1]", R"({"a": [1, 2, 3]})"), Json::parse("[2,3]"));
}

TEST(JsonataTest, StringConcatenationFormatsNumbersLikeJavaScript) {
  EXPECT_EQ(Eval("'x' & 1e21"), Json("x1e+21"));
  EXPECT_EQ(Eval("$string(0.1 + 0.2)"), Json("0.3"));
}

TEST(JsonataTest, OrderByAndGroupBy) {
  EXPECT_EQ(Eval("a^(>v).v", R"({"a": [{"v": 1}, {"v": 3}, {"v": 2}]})"), Json::parse("[3,2,1]"));
  EXPECT_EQ(Eval("a{k: $sum(v)}", R"({"a": [{"k": "x", "v": 1}, {"k": "x", "v": 2}]})"),
            Json::parse(R"({"x": 3})"));
}

TEST(JsonataTest, LambdaClosuresAndPartialApplication) {
  EXPECT_EQ(Eval("($add := function($a, $b) { $a + $b }; $inc := $add(?, 1); $inc(41))"), Json(42));
}

TEST(JsonataTest, TailRecursionDoesNotGrowTheStack) {
  EXPECT_EQ(Eval("($loop := function($n) { $n = 0 ? 'done' : $loop($n - 1) }; $loop(100000))"),
            Json("done"));
}

TEST(JsonataTest, DeepNonTailRecursionFailsWithU1001) {
  EXPECT_EQ(ErrorCode("($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))"), "U1001");
}

TEST(JsonataTest, RecursionWithinMaxDepthSucceeds) {
  EXPECT_EQ(Eval("($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(900))"), Json(900));
}

TEST(JsonataTest, TimeLimitFailsWithU1001) {
  EvalOptions opts;
  opts.time_limit_ms = 50;
  auto r = RunExpr("($f := function($n) { $f($n + 1) }; $f(0))", "", {}, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "U1001");
}

TEST(JsonataTest, SyntaxErrorsUseSCodes) {
  EXPECT_EQ(ErrorCode("a +"), "S0207");
  EXPECT_EQ(ErrorCode("'abc"), "S0101");
}

TEST(JsonataTest, TypeErrorsUseTCodes) {
  EXPECT_EQ(ErrorCode("'a' + 1"), "T2001");
  EXPECT_EQ(ErrorCode("1 < 'a'"), "T2009");
  EXPECT_EQ(ErrorCode("$length(1)"), "T0410");
}

TEST(JsonataTest, TransformCopiesAndUpdates) {
  EXPECT_EQ(Eval("$ ~> |a|{'y': 2}, ['x']|", R"({"a": {"x": 1}})"),
            Json::parse(R"({"a": {"y": 2}})"));
}

TEST(JsonataTest, RegexMatchAndReplace) {
  EXPECT_EQ(Eval("$replace('abc', /b/, 'X')"), Json("aXc"));
  EXPECT_EQ(Eval("$contains('hello', /l+/)"), Json(true));
}

TEST(JsonataTest, AwsFunctionsNeedTheOption) {
  EXPECT_EQ(ErrorCode("$partition([1,2,3], 2)"), "T1006");
  EvalOptions opts;
  opts.aws_functions = true;
  auto r = RunExpr("$partition([1,2,3], 2)", "", {}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json::parse("[[1,2],[3]]"));
  r = RunExpr("$hash('abc', 'SHA-256')", "", {}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  r = RunExpr("$range(0, 10, 5)", "", {}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json::parse("[0,5,10]"));
  r = RunExpr("$parse('{\"a\": [1]}').a", "", {}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json::parse("[1]"));
  r = RunExpr("$length($uuid())", "", {}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json(36));
}

TEST(JsonataTest, ExpressionIsReusableAcrossEvaluations) {
  auto e = Expression::Compile("x * 2");
  ASSERT_TRUE(e.ok());
  for (int i = 0; i < 3; ++i) {
    Json in = {{"x", i}};
    auto r = e->Evaluate(&in);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(**r, Json(i * 2));
  }
}

TEST(JsonataTest, ConcurrentEvaluationOfOneExpression) {
  auto e = Expression::Compile("$sum(items.(price * qty)) & ' ' & $uppercase(name)");
  ASSERT_TRUE(e.ok());
  Json in =
      Json::parse(R"({"name": "x", "items": [{"price": 2, "qty": 3}, {"price": 1, "qty": 4}]})");
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        auto r = e->Evaluate(&in);
        if (r.ok() && r->has_value() && **r == Json("10 X")) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 2000);
}

TEST(JsonataTest, NowAndMillisUseTheInjectedClock) {
  FakeClock clock(1521801216617000);  // 2018-03-23T10:33:36.617Z
  EvalOptions opts;
  opts.clock = &clock;
  auto r = RunExpr("$millis()", "", {}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json(1521801216617));
  r = RunExpr("$now() = $now()", "", {}, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, Json(true));
}

TEST(JsonataTest, TimeLimitAppliesEvenWithAFakeClock) {
  FakeClock clock(0);
  EvalOptions opts;
  opts.clock = &clock;
  opts.time_limit_ms = 50;
  auto r = RunExpr("($inf := function() { $inf() }; $inf())", "", {}, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "U1001");
}

TEST(JsonataTest, TopLevelArrayInputIsWrapped) {
  EXPECT_EQ(Eval("$[0]", "[1, 2, 3]"), Json(1));
  EXPECT_EQ(Eval("$count($)", "[1, 2, 3]"), Json(3));
}

TEST(JsonataTest, FocusIndexAndParentBindings) {
  const std::string in =
      R"({"o": [{"id": "a", "p": [{"n": 1}, {"n": 2}]}, {"id": "b", "p": [{"n": 3}]}]})";
  EXPECT_EQ(Eval("o.p.{'n': n, 'id': %.id}", in),
            Json::parse(R"([{"n":1,"id":"a"},{"n":2,"id":"a"},{"n":3,"id":"b"}])"));
  EXPECT_EQ(Eval("o#$i.p.($i)", in), Json::parse("[0,0,1]"));
  EXPECT_EQ(Eval("o@$x.p[n > 1].n", in), Json("<undefined>"));
}

TEST(JsonataTest, CoalescingAndDefaultOperators) {
  EXPECT_EQ(Eval("missing ?? 'd'", "{}"), Json("d"));
  EXPECT_EQ(Eval("null ?? 'd'"), Json(nullptr));
  EXPECT_EQ(Eval("0 ?: 'd'"), Json("d"));
}

TEST(JsonataTest, EvalFunctionParsesAtRuntime) {
  EXPECT_EQ(Eval("$eval('[1,2,3].($ * 2)')"), Json::parse("[2,4,6]"));
  EXPECT_EQ(ErrorCode("$eval('1 +')"), "D3120");
}

TEST(JsonataTest, LongRegexSubjectDoesNotCrash) {
  std::string big(200000, 'a');
  Json in = {{"s", big}};
  auto e = Expression::Compile("$length($replace(s, /a+/, 'b'))");
  ASSERT_TRUE(e.ok());
  auto r = e->Evaluate(&in);
  // either a result (matched on the big stack) or a clean U1001, never a crash
  if (r.ok()) {
    EXPECT_EQ(**r, Json(1));
  } else {
    EXPECT_EQ(r.error().code, "U1001");
  }
}

TEST(JsonataTest, LargeRangeIsFastEnough) {
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Eval("$count([1..10000000])"), Json(10000000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(ErrorCode("[1..10000001]"), "D2014");
}

TEST(JsonataTest, UnicodeStringFunctionsCountCodePoints) {
  EXPECT_EQ(Eval("$length('\U0001D11E\U0001F4A9')"), Json(2));
  EXPECT_EQ(Eval("$substring('\U0001F602\U0001F601\U0001F600', -2, 1)"), Json("\U0001F601"));
}

TEST(JsonataTest, NumbersFormatLikeJavaScript) {
  EXPECT_EQ(Eval("$string(1e21)"), Json("1e+21"));
  EXPECT_EQ(Eval("$string(1e-7)"), Json("1e-7"));
  EXPECT_EQ(Eval("$string(5890840712243076)"), Json("5890840712243076"));
  EXPECT_EQ(Eval("$string(1/3)"), Json("0.333333333333333"));
  EXPECT_EQ(ErrorCode("$string(1/0)"), "D3001");
}

TEST(JsonataTest, RoundIsBankers) {
  EXPECT_EQ(Eval("[$round(0.5), $round(1.5), $round(2.5), $round(1.255, 2)]"),
            Json::parse("[0,2,2,1.26]"));
}

TEST(JsonataTest, SignatureValidation) {
  EXPECT_EQ(ErrorCode("λ($a)<n>{$a}('x')"), "T0410");
  EXPECT_EQ(ErrorCode("λ($a)<a<n>>{$a}(['x'])"), "T0412");
  EXPECT_EQ(ErrorCode("λ($a)<n<n>>{$a}(1)"), "S0401");
  EXPECT_EQ(ErrorCode("$uppercase()"), "ok");
}

TEST(JsonataTest, ErrorsNeverThrowAcrossTheApi) {
  for (const char* expr : {"(", ")", "[1,2", "{'a'}", "a..b", "/x", "%", "1 ? : 2", "function($x){",
                           "$x := ", "|a|b", "a[", "a{", "'\\u12'"}) {
    auto r = RunExpr(expr);
    EXPECT_FALSE(r.ok()) << expr;
  }
}

}  // namespace
}  // namespace engage::flow::jsonata
