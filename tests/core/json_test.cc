#include "engage/core/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

namespace engage {
namespace {

// nlohmann's own compact dump: the text DumpJson must reproduce byte for byte.
std::string Reference(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

TEST(DumpJsonTest, ScalarsMatchNlohmann) {
  for (const Json& j : {Json(),
                        Json(true),
                        Json(false),
                        Json(0),
                        Json(-1),
                        Json(42),
                        Json(std::numeric_limits<int64_t>::min()),
                        Json(std::numeric_limits<int64_t>::max()),
                        Json(std::numeric_limits<uint64_t>::max()),
                        Json(0.0),
                        Json(-0.0),
                        Json(1.5),
                        Json(2.0),
                        Json(1e20),
                        Json(1e-7),
                        Json(123456789012345680000.0),
                        Json(0.1),
                        Json(1.0 / 3),
                        Json(5e-324),
                        Json(std::numeric_limits<double>::max()),
                        Json(std::numeric_limits<double>::quiet_NaN()),
                        Json(std::numeric_limits<double>::infinity()),
                        Json(-std::numeric_limits<double>::infinity())}) {
    EXPECT_EQ(DumpJson(j), Reference(j)) << Reference(j);
  }
}

TEST(DumpJsonTest, StringsEscapeAsNlohmannDoes) {
  std::string all_bytes;
  for (int c = 0; c < 128; ++c) all_bytes.push_back(static_cast<char>(c));
  for (const std::string& s :
       {std::string(), std::string("plain text that is longer than eight bytes"),
        std::string("quote \" backslash \\ slash / tab \t newline \n"), std::string(1, '\0'),
        all_bytes, std::string("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 mixed ascii tail"),
        std::string("\x7F\x1F\x01"), std::string("{\"a\":\"b\\\"c\"}")}) {
    EXPECT_EQ(DumpJson(Json(s)), Reference(Json(s))) << Reference(Json(s));
  }
}

TEST(DumpJsonTest, InvalidUtf8IsReplacedAsNlohmannReplacesIt) {
  for (const std::string& s :
       {std::string("\xFF"), std::string("abc\xC3"), std::string("\xC0\xAF overlong"),
        std::string("\xED\xA0\x80 surrogate"), std::string("\xF4\x90\x80\x80 too big"),
        std::string("\xE2\x82 truncated in the middle of a long ascii run"),
        std::string("\x80\x80\x80\x80\x80\x80\x80\x80\x80")}) {
    EXPECT_EQ(DumpJson(Json(s)), Reference(Json(s))) << Reference(Json(s));
  }
}

TEST(DumpJsonTest, NestedValuesKeepKeyOrder) {
  Json j = Json::parse(
      R"({"z": 1, "a": [1, 2.5, "x", null, {"k\"ey": true}], "m": {}, "e": [], "n": -3})");
  EXPECT_EQ(DumpJson(j), Reference(j));
  EXPECT_EQ(DumpJson(j), R"({"z":1,"a":[1,2.5,"x",null,{"k\"ey":true}],"m":{},"e":[],"n":-3})");
  std::string appended = "prefix ";
  AppendJson(&appended, j);
  EXPECT_EQ(appended, "prefix " + Reference(j));
  EXPECT_EQ(DumpJson(j, 2), j.dump(2));  // indented output is nlohmann's
}

// Random documents of random bytes and numbers: the two serializers agree on every one.
Json RandomValue(std::mt19937_64& rng, int depth) {
  int kind = static_cast<int>(rng() % (depth > 3 ? 6 : 8));
  switch (kind) {
    case 0:
      return Json();
    case 1:
      return Json(rng() % 2 == 0);
    case 2:
      return Json(static_cast<int64_t>(rng()));
    case 3: {
      double d;
      uint64_t bits = rng();
      std::memcpy(&d, &bits, sizeof d);
      return Json(rng() % 2 == 0 ? d : static_cast<double>(static_cast<int32_t>(rng())) / 8);
    }
    case 4:
    case 5: {
      std::string s(rng() % 40, ' ');
      bool ascii = rng() % 2 == 0;
      for (char& c : s) c = static_cast<char>(ascii ? rng() % 128 : rng() % 256);
      return Json(s);
    }
    case 6: {
      Json a = Json::array();
      for (int i = static_cast<int>(rng() % 5); i > 0; --i)
        a.push_back(RandomValue(rng, depth + 1));
      return a;
    }
    default: {
      Json o = Json::object();
      for (int i = static_cast<int>(rng() % 5); i > 0; --i) {
        o[std::to_string(rng() % 100) + "\xC3\xA9\""] = RandomValue(rng, depth + 1);
      }
      return o;
    }
  }
}

TEST(DumpJsonTest, RandomDocumentsMatchNlohmann) {
  std::mt19937_64 rng(20261202);
  for (int i = 0; i < 20000; ++i) {
    Json j = RandomValue(rng, 0);
    std::string ref = Reference(j);
    ASSERT_EQ(DumpJson(j), ref) << "document " << i;
    ASSERT_EQ(CompactJsonSize(j), ref.size()) << "document " << i;
  }
}

TEST(ParseJsonTest, RefusesNestingDeeperThanTheLimitBeforeBuildingIt) {
  std::string deep =
      "{\"features\":{\"x\":" + std::string(50000, '[') + std::string(50000, ']') + "}}";
  auto r = ParseJson(deep, "request body");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("request body: JSON nested deeper than 512 levels"),
            std::string::npos)
      << r.status().message();
}

TEST(ParseJsonTest, AcceptsNestingAtTheLimit) {
  std::string at = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  auto r = ParseJson(at, "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(JsonDepth(*r), kMaxJsonDepth);
  std::string over = "[" + at + "]";
  EXPECT_FALSE(ParseJson(over, "x").ok());
}

TEST(ParseJsonTest, BracketsInsideStringsDoNotCount) {
  std::string text = "{\"a\":\"" + std::string(2000, '[') + "\\\"" + std::string(2000, '{') + "\"}";
  auto r = ParseJson(text, "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(JsonTextDepth(text), 1);
}

TEST(JsonDepthTest, CountsLevelsWithoutRecursion) {
  EXPECT_EQ(JsonDepth(Json(1)), 0);
  EXPECT_EQ(JsonDepth(Json::array()), 1);
  EXPECT_EQ(JsonDepth(Json{{"a", Json{{"b", Json::array({1, 2})}}}}), 3);
  // A value built deeper than the limit (not parsed) is measured up to the limit and no further.
  Json v = Json::array();
  for (int i = 0; i < 2000; ++i) v = Json::array({std::move(v)});
  EXPECT_GT(JsonDepth(v), kMaxJsonDepth);
  EXPECT_EQ(JsonDepth(v, 1 << 20), 2001);
  // Destroying it must not recurse either (nlohmann destroys iteratively).
}

}  // namespace
}  // namespace engage
