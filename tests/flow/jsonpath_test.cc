#include "engage/flow/jsonpath.h"

#include <gtest/gtest.h>

#include <chrono>

#include "engage/flow/intrinsics.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

const Json kDoc = Json::parse(R"j({"store":{"book":[
  {"title":"A","price":8,"tags":["x"]},{"title":"B","price":12},{"title":"C","price":30}],
  "name":"shop"},"weird-key":1,"n":null})j");

Json Eval(const std::string& path, const Json& doc = kDoc) {
  auto p = JsonPath::Parse(path);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  auto v = p->Evaluate(doc);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : Json("<error>");
}

TEST(JsonPathTest, DefinitePathReturnsValue) {
  EXPECT_EQ(Eval("$.store.name"), "shop");
  EXPECT_EQ(Eval("$['store']['book'][1].title"), "B");
  EXPECT_EQ(Eval("$.store.book[-1].price"), 30);
  EXPECT_EQ(Eval("$.weird-key"), 1);
  EXPECT_EQ(Eval("$.n"), nullptr);
}

TEST(JsonPathTest, IndefinitePathsReturnArrays) {
  EXPECT_EQ(Eval("$.store.book[*].title"), Json({"A", "B", "C"}));
  EXPECT_EQ(Eval("$.store.book[1:].price"), Json({12, 30}));
  EXPECT_EQ(Eval("$.store.book[:2].price"), Json({8, 12}));
  EXPECT_EQ(Eval("$..price"), Json({8, 12, 30}));
  EXPECT_EQ(Eval("$.store.book[0,2].title"), Json({"A", "C"}));
  EXPECT_EQ(Eval("$.missing[*]"), Json::array());
}

TEST(JsonPathTest, FiltersCompareAndCombine) {
  EXPECT_EQ(Eval("$.store.book[?(@.price > 10)].title"), Json({"B", "C"}));
  EXPECT_EQ(Eval("$.store.book[?(@.price > 10 && @.title != 'C')].title"), Json({"B"}));
  EXPECT_EQ(Eval("$.store.book[?(@.tags)].title"), Json({"A"}));
  EXPECT_EQ(Eval("$.store.book[?(@.title =~ /[AB]/)].price"), Json({8, 12}));
}

TEST(JsonPathTest, LengthFunctionCountsArray) { EXPECT_EQ(Eval("$.store.book.length()"), 3); }

TEST(JsonPathTest, MissingDefinitePathIsNotFoundWithNormalizedPath) {
  auto p = JsonPath::Parse("$.store.nope");
  ASSERT_TRUE(p.ok());
  auto v = p->Evaluate(kDoc);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
  EXPECT_NE(v.status().message().find("$['store']['nope']"), std::string::npos);
}

TEST(JsonPathTest, RootsForContextAndVariables) {
  auto ctx = JsonPath::Parse("$$.Execution.Id");
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->root(), JsonPath::Root::kContext);
  auto var = JsonPath::Parse("$myVar.a[0]");
  ASSERT_TRUE(var.ok());
  EXPECT_EQ(var->root(), JsonPath::Root::kVariable);
  EXPECT_EQ(var->variable(), "myVar");
}

TEST(JsonPathTest, SyntaxErrorsNameThePosition) {
  for (const char* bad : {"store", "$.a[", "$.a[?(@.x >)]", "$.", "$[1:2:0]", "$.a.length().b"}) {
    auto p = JsonPath::Parse(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_NE(p.status().message().find("character"), std::string::npos) << bad;
    }
  }
}

// Found by fuzz_jsonpath: libstdc++'s regex compiler reads a back-reference or repetition count
// into a long without an overflow check (UBSan: signed integer overflow).
TEST(JsonPathTest, RegexWithHugeCountIsASyntaxError) {
  for (const char* bad :
       {"$[?(@=~/\\30000000000100213303/)]", "$[?(@.a =~ /a{99999999999999999999}/)]",
        "$[?(@.a =~ /a{1,99999999999999999999}/)]"}) {
    auto p = JsonPath::Parse(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.status().message().find("invalid regular expression"), std::string::npos) << bad;
  }
  EXPECT_EQ(Eval("$.store.book[?(@.title =~ /^[A-C]{1,2}$/)].price"), Json({8, 12, 30}));
  EXPECT_EQ(Eval("$.store.book[?(@.title =~ /\\{12345678901234567890/)].price"), Json::array());
}

// The filter regex ran on std::regex's backtracking matcher: exponential time on this 41-byte
// string (a hang), and a stack overflow on a long one.
TEST(JsonPathTest, FilterRegexMatchingIsPolynomial) {
  Json doc = {{"items", {{{"s", std::string(40, 'a') + "!"}}, {{"s", std::string(40, 'a')}}}}};
  EXPECT_EQ(Eval("$.items[?(@.s =~ /^(a|a)*$/)].s", doc), Json({std::string(40, 'a')}));
  Json big = {{"items", {{{"s", std::string(2000000, 'x')}}}}};
  EXPECT_EQ(Eval("$.items[?(@.s =~ /^x+$/)].length()", big), 1);
  EXPECT_EQ(Eval("$.store.book[?(@.title =~ /a|B/i)].price"), Json({8, 12}));
  auto p = JsonPath::Parse("$[?(@.a =~ /(a)\\1/)]");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("back-references"), std::string::npos);
}

// Found by fuzz_jsonpath (ASan: stack-overflow): each '(' of a filter recursed; ~1900 of them
// exhausted the stack.
TEST(JsonPathTest, DeeplyNestedFilterIsASyntaxError) {
  for (const char* open : {"(", "!", "@[?("}) {
    std::string deep = "$[?(";
    for (int i = 0; i < 5000; ++i) deep += open;
    auto p = JsonPath::Parse(deep);
    ASSERT_FALSE(p.ok()) << open;
    EXPECT_NE(p.status().message().find("nested too deeply"), std::string::npos) << open;
  }
  std::string ok =
      "$.store.book[?(" + std::string(50, '(') + "@.price > 10" + std::string(50, ')') + ")].title";
  EXPECT_EQ(Eval(ok), Json({"B", "C"}));
}

TEST(JsonPathTest, WriteCreatesIntermediateObjects) {
  Json doc = Json::object();
  auto p = JsonPath::Parse("$.a.b.c");
  ASSERT_TRUE(p.ok());
  ASSERT_OK(p->Write(doc, 5));
  EXPECT_EQ(doc, Json::parse(R"j({"a":{"b":{"c":5}}})j"));
  Json scalar = Json::object({{"a", 1}});
  EXPECT_FALSE(p->Write(scalar, 5).ok());
}

// AWS reads JSONPath with Jayway JsonPath: a bracketed name may hold its quote and a backslash
// escaped with a backslash, and \b \f \n \r \t \uXXXX stand for their characters.
TEST(JsonPathTest, BracketNamesUnescapeQuotesAndBackslashes) {
  const Json doc = Json::parse(R"j({"a\"b":1,"a\\b":2,"a'b":3,"it's \"x\"":4,"tab\there":5,
                                    "A\u00e9":6,"trail\\":7})j");
  EXPECT_EQ(Eval(R"($['a\"b'])", doc), 1);
  EXPECT_EQ(Eval(R"($["a\"b"])", doc), 1);
  EXPECT_EQ(Eval(R"($["a\\b"])", doc), 2);
  EXPECT_EQ(Eval(R"($['a\\b'])", doc), 2);
  EXPECT_EQ(Eval(R"($['a\'b'])", doc), 3);
  EXPECT_EQ(Eval(R"($['it\'s \"x\"'])", doc), 4);
  EXPECT_EQ(Eval(R"($['tab\there'])", doc), 5);
  EXPECT_EQ(Eval(R"($['\u0041\u00E9'])", doc), 6);
  EXPECT_EQ(Eval(R"($['trail\\'])", doc), 7);
  EXPECT_EQ(Eval(R"($['a\"b','a\'b'])", doc), Json({1, 3}));
  // A \r is a carriage return, not the letter r.
  EXPECT_EQ(Eval(R"($['x\ry'])", Json{{"x\ry", 8}}), 8);
  EXPECT_FALSE(JsonPath::Parse(R"($['\u00'])").ok());
}

TEST(JsonPathTest, EscapedBracketNamesWriteAndNormalize) {
  auto p = JsonPath::Parse(R"($['a\'b']["c\\d"])");
  ASSERT_TRUE(p.ok());
  Json doc = Json::object();
  ASSERT_OK(p->Write(doc, 1));
  EXPECT_EQ(doc, Json::parse(R"j({"a'b":{"c\\d":1}})j"));
  // The normalized path (in "No results for path" messages) parses back to the same names.
  auto again = JsonPath::Parse(p->Normalized());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again->Evaluate(doc), 1);
}

Result<Json> CallIntrinsic(const std::string& text, const Json& input = Json::object()) {
  ENGAGE_ASSIGN_OR_RETURN(Intrinsic f, Intrinsic::Parse(text));
  return f.Evaluate([&](const JsonPath& p) { return p.Evaluate(input); });
}

TEST(IntrinsicsTest, FormatRendersValuesLikeAws) {
  auto r = CallIntrinsic("States.Format('{} and {} \\{x\\}', $.a, $.b)",
                         Json{{"a", "s"}, {"b", {{"k", 1}}}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "s and {k=1} {x}");
}

TEST(IntrinsicsTest, ArrayFunctions) {
  EXPECT_EQ(*CallIntrinsic("States.ArrayPartition(States.Array(1,2,3,4,5), 2)"),
            Json::parse("[[1,2],[3,4],[5]]"));
  EXPECT_EQ(*CallIntrinsic("States.ArrayRange(1, 9, 4)"), Json::parse("[1,5,9]"));
  EXPECT_EQ(*CallIntrinsic("States.ArrayContains(States.Array(1,2), 2)"), true);
  EXPECT_EQ(*CallIntrinsic("States.ArrayUnique(States.Array(1,1,2))"), Json::parse("[1,2]"));
  EXPECT_EQ(*CallIntrinsic("States.ArrayGetItem(States.Array('a','b'), 1)"), "b");
  EXPECT_EQ(*CallIntrinsic("States.ArrayLength(States.Array(1,2,3))"), 3);
}

TEST(IntrinsicsTest, EncodingHashingAndJson) {
  EXPECT_EQ(*CallIntrinsic("States.Base64Encode('Data to encode')"), "RGF0YSB0byBlbmNvZGU=");
  EXPECT_EQ(*CallIntrinsic("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')"), "Data to encode");
  EXPECT_EQ(*CallIntrinsic("States.Hash('input data', 'SHA-1')"),
            "aaff4a450a104cd177d28d18d74485e8cae074b7");
  EXPECT_EQ(*CallIntrinsic("States.StringToJson('{\"a\":1}')"), Json({{"a", 1}}));
  EXPECT_EQ(*CallIntrinsic("States.JsonToString(States.Array(1))"), "[1]");
  EXPECT_EQ(*CallIntrinsic("States.StringSplit('a,b;c', ',;')"), Json({"a", "b", "c"}));
  EXPECT_EQ(*CallIntrinsic("States.MathAdd(2.5, -1)"), 2);
}

// Signed overflow (UBSan) found while fuzzing the intrinsics: the loop stepped past INT64_MAX and
// the sum of two in-range operands exceeded it.
TEST(IntrinsicsTest, ArrayRangeAndMathAddNearInt64LimitsDoNotOverflow) {
  EXPECT_EQ(*CallIntrinsic("States.ArrayRange(9223372036854775807, 9223372036854775807, 1)"),
            Json::parse("[9223372036854775807]"));
  EXPECT_EQ(*CallIntrinsic("States.ArrayRange(9223372036854775000, 9223372036854775807, 500)"),
            Json::parse("[9223372036854775000, 9223372036854775500]"));
  EXPECT_EQ(*CallIntrinsic("States.ArrayRange(-9223372036854775807, -9223372036854775807, -9)"),
            Json::parse("[-9223372036854775807]"));
  auto sum = CallIntrinsic("States.MathAdd(9000000000000000000, 9000000000000000000)");
  ASSERT_FALSE(sum.ok());
  EXPECT_NE(sum.status().message().find("out of range"), std::string::npos);
  EXPECT_EQ(*CallIntrinsic("States.MathAdd(9000000000000000000, -9000000000000000000)"), 0);
}

TEST(IntrinsicsTest, DeeplyNestedCallsAreAnError) {
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += "States.Array(";
  auto r = CallIntrinsic(deep + std::string(20000, ')'));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nested too deeply"), std::string::npos);
  std::string ok;
  for (int i = 0; i < 50; ++i) ok += "States.Array(";
  EXPECT_TRUE(CallIntrinsic(ok + "1" + std::string(50, ')')).ok());
}

TEST(IntrinsicsTest, UuidAndRandomHaveTheRightShape) {
  auto u = CallIntrinsic("States.UUID()");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->get<std::string>().size(), 36u);
  EXPECT_EQ(u->get<std::string>()[14], '4');
  auto r = CallIntrinsic("States.MathRandom(5, 7, 42)");
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->get<int64_t>(), 5);
  EXPECT_LE(r->get<int64_t>(), 7);
  EXPECT_EQ(*r, *CallIntrinsic("States.MathRandom(5, 7, 42)"));  // seeded: repeatable
}

TEST(IntrinsicsTest, PathArgumentsMayHoldEscapedQuotes) {
  // The argument's end is found past quotes escaped inside the bracketed name.
  const Json input = Json::parse(R"j({"a'b":"x","c\",d":"y"})j");
  auto r = CallIntrinsic(R"(States.Format('{}-{}', $['a\'b'], $["c\",d"]))", input);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "x-y");
}

TEST(IntrinsicsTest, MathRandomEndIsExclusive) {
  // AWS: from the start (inclusive) to the end (exclusive).
  for (int seed = 0; seed < 64; ++seed) {
    SCOPED_TRACE(seed);
    auto r = CallIntrinsic("States.MathRandom(3, 4, " + std::to_string(seed) + ")");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, Json(3));
  }
  EXPECT_FALSE(CallIntrinsic("States.MathRandom(3, 3)").ok());
}

TEST(IntrinsicsTest, MathRandomRoundsNonIntegerBoundsHalfUp) {
  // AWS rounds non-integer bounds to the nearest integer, halves up as for States.MathAdd:
  // 1.5..2.5 is 2..3 (so 2), -2.5..-1.5 is -2..-1 (so -2), 0.4..1.4 is 0..1 (so 0).
  for (int seed = 0; seed < 16; ++seed) {
    SCOPED_TRACE(seed);
    std::string s = ", " + std::to_string(seed) + ")";
    auto a = CallIntrinsic("States.MathRandom(1.5, 2.5" + s);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a, Json(2));
    auto b = CallIntrinsic("States.MathRandom(-2.5, -1.5" + s);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(*b, Json(-2));
    auto c = CallIntrinsic("States.MathRandom(0.4, 1.4" + s);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(*c, Json(0));
  }
  // A seed with a fraction is rounded too, so it repeats like its integer.
  EXPECT_EQ(*CallIntrinsic("States.MathRandom(0, 1000, 6.6)"),
            *CallIntrinsic("States.MathRandom(0, 1000, 7)"));
  EXPECT_FALSE(CallIntrinsic("States.MathRandom('1', 5)").ok());
  EXPECT_FALSE(CallIntrinsic("States.MathRandom(1, 1e300)").ok());
}

TEST(IntrinsicsTest, BadArgumentsAreErrors) {
  EXPECT_FALSE(CallIntrinsic("States.ArrayGetItem(States.Array(1), 5)").ok());
  EXPECT_FALSE(CallIntrinsic("States.Format('{} {}', 1)").ok());
  EXPECT_FALSE(CallIntrinsic("States.Hash('x', 'SHA-3')").ok());
  EXPECT_FALSE(Intrinsic::Parse("States.Nope(1)").ok());
  EXPECT_FALSE(Intrinsic::Parse("States.Format('unterminated)").ok());
}

}  // namespace
}  // namespace engage::flow
