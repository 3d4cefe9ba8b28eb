// Tests for the XPath picture-string functions behind $formatInteger, $parseInteger,
// $formatNumber, $fromMillis and $toMillis: unit tests per behaviour, plus the JSONata
// conformance cases that are a single direct call with literal arguments, run against the
// functions directly (the full engine runs the rest).
#include <gtest/gtest.h>

#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "jsonata/picture.h"
#include "testing/temp_dir.h"

namespace engage::jsonata::picture {
namespace {

// "text" for a value, "error:CODE" for an error, so one EXPECT_EQ shows both.
std::string Str(const Outcome<std::string>& out) {
  return out.ok() ? out.value() : "error:" + out.error().code;
}

std::string Num(const Outcome<std::optional<double>>& out) {
  if (!out.ok()) return "error:" + out.error().code;
  if (!out.value()) return "undefined";
  // Integers in full (timestamps), anything else in shortest round-trip form.
  const double v = *out.value();
  std::array<char, 64> buf{};
  auto res = std::fabs(v) < 1e18 && v == std::floor(v)
                 ? std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed)
                 : std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
}

std::string FI(double v, std::string_view pic) { return Str(FormatInteger(v, pic)); }
std::string PI(std::string_view s, std::string_view pic) { return Num(ParseInteger(s, pic)); }
std::string FN(double v, std::string_view pic, const DecimalFormat& f = {}) {
  return Str(FormatNumber(v, pic, f));
}
std::string FM(double ms, std::optional<std::string_view> pic = std::nullopt,
               std::optional<std::string_view> tz = std::nullopt) {
  return Str(FromMillis(ms, pic, tz));
}
// 2018-03-23T10:33:36.617Z, a Friday.
constexpr double kFriday = 1521801216617;
// A fixed "now" for components a picture leaves out: 2020-06-15T08:30:00Z.
constexpr double kNow = 1592209800000;
std::string TM(std::string_view s, std::optional<std::string_view> pic = std::nullopt) {
  return Num(ToMillis(s, pic, kNow));
}

// ---------------------------------------------------------------------------------------------
// $formatInteger

TEST(FormatIntegerTest, PadsToMandatoryDigits) {
  EXPECT_EQ(FI(123, "0000"), "0123");
  EXPECT_EQ(FI(123, "000"), "123");
  EXPECT_EQ(FI(12, "###0"), "12");
}

TEST(FormatIntegerTest, NegativeSignPrecedesPadding) { EXPECT_EQ(FI(-3, "0000"), "-0003"); }

TEST(FormatIntegerTest, FractionIsFloored) {
  EXPECT_EQ(FI(12.6, "0"), "12");
  EXPECT_EQ(FI(-2.5, "0"), "-3");
}

TEST(FormatIntegerTest, RegularGroupingRepeatsBeyondPicture) {
  EXPECT_EQ(FI(1234567890, "#,##0"), "1,234,567,890");
  EXPECT_EQ(FI(12, "#,##0"), "12");
  EXPECT_EQ(FI(1234567890, "#,###,##0"), "1,234,567,890");
}

TEST(FormatIntegerTest, IrregularGroupingKeepsPicturePositions) {
  EXPECT_EQ(FI(1234567890, "#:###,##0"), "1234:567,890");
  EXPECT_EQ(FI(1234567890, "##,##,##0"), "12345,67,890");
}

TEST(FormatIntegerTest, SeparatorWithoutDigitToItsLeftIsDropped) {
  EXPECT_EQ(FI(5, "#:###,##0"), "5");
}

TEST(FormatIntegerTest, OtherDigitFamilies) {
  EXPECT_EQ(FI(12340, "###١"), "١٢٣٤٠");
  EXPECT_EQ(FI(12340, "###０"), "１２３４０");
  EXPECT_EQ(FI(7, "𝟎𝟎"), "𝟎𝟕");  // mathematical bold digits, outside the BMP
}

TEST(FormatIntegerTest, MixedDigitFamiliesAreD3131) {
  EXPECT_EQ(FI(12340, "##0０"), "error:D3131");
}

TEST(FormatIntegerTest, OrdinalSuffixes) {
  EXPECT_EQ(FI(1, "0;o"), "1st");
  EXPECT_EQ(FI(2, "0;o"), "2nd");
  EXPECT_EQ(FI(123, "000;o"), "123rd");
  EXPECT_EQ(FI(11, "0;o"), "11th");
  EXPECT_EQ(FI(12, "0;o"), "12th");
  EXPECT_EQ(FI(113, "0;o"), "113th");
  EXPECT_EQ(FI(21, "0;o"), "21st");
  EXPECT_EQ(FI(28, "#0;o"), "28th");
}

TEST(FormatIntegerTest, RomanNumerals) {
  EXPECT_EQ(FI(1984, "I"), "MCMLXXXIV");
  EXPECT_EQ(FI(99, "i"), "xcix");
  EXPECT_EQ(FI(2018, "i"), "mmxviii");
}

TEST(FormatIntegerTest, LettersCountLikeSpreadsheetColumns) {
  EXPECT_EQ(FI(1, "A"), "A");
  EXPECT_EQ(FI(26, "a"), "z");
  EXPECT_EQ(FI(27, "a"), "aa");
  EXPECT_EQ(FI(300, "A"), "KN");
  EXPECT_EQ(FI(123456, "A"), "FZPH");
}

TEST(FormatIntegerTest, WordsInCardinalForm) {
  EXPECT_EQ(FI(0, "w"), "zero");
  EXPECT_EQ(FI(34, "w"), "thirty-four");
  EXPECT_EQ(FI(919, "w"), "nine hundred and nineteen");
  EXPECT_EQ(FI(327730, "w"), "three hundred and twenty-seven thousand, seven hundred and thirty");
  EXPECT_EQ(FI(1000000000001, "w"), "one trillion and one");
}

TEST(FormatIntegerTest, WordsInOrdinalForm) {
  EXPECT_EQ(FI(12, "w;o"), "twelfth");
  EXPECT_EQ(FI(20, "w;o"), "twentieth");
  EXPECT_EQ(FI(100, "w;o"), "one hundredth");
  EXPECT_EQ(FI(3731, "w;o"), "three thousand, seven hundred and thirty-first");
  EXPECT_EQ(FI(1000, "w;o"), "one thousandth");
}

TEST(FormatIntegerTest, WordsUpperAndTitleCase) {
  EXPECT_EQ(FI(555, "W"), "FIVE HUNDRED AND FIFTY-FIVE");
  EXPECT_EQ(FI(555, "Ww"), "Five Hundred and Fifty-Five");
  EXPECT_EQ(FI(99, "W;o"), "NINETY-NINTH");
}

TEST(FormatIntegerTest, WordsJustBelowAPowerOfAThousand) {
  EXPECT_EQ(FI(999999999999, "w"),
            "nine hundred and ninety-nine billion, nine hundred and ninety-nine million, nine "
            "hundred and ninety-nine thousand, nine hundred and ninety-nine");
}

TEST(FormatIntegerTest, WordsBeyondTrillionRepeatTrillion) {
  EXPECT_EQ(FI(1e15, "w"), "one thousand trillion");
}

TEST(FormatIntegerTest, NegativeWords) { EXPECT_EQ(FI(-5, "w"), "-five"); }

TEST(FormatIntegerTest, UnsupportedSequenceIsD3130) {
  EXPECT_EQ(FI(123456, "α"), "error:D3130");
  EXPECT_EQ(FI(1, "#"), "error:D3130");
}

// ---------------------------------------------------------------------------------------------
// $parseInteger

TEST(ParseIntegerTest, DecimalWithGroupingSeparators) {
  EXPECT_EQ(PI("0123", "0000"), "123");
  EXPECT_EQ(PI("12,345,678", "#,##0"), "12345678");
  EXPECT_EQ(PI("1234:567,890", "#:###,##0"), "1234567890");
}

TEST(ParseIntegerTest, OrdinalSuffixIsIgnored) { EXPECT_EQ(PI("1234th", "###0;o"), "1234"); }

TEST(ParseIntegerTest, OtherDigitFamily) { EXPECT_EQ(PI("١٢٣٤٠", "###١"), "12340"); }

TEST(ParseIntegerTest, RomanNumerals) {
  EXPECT_EQ(PI("MCMLXXXIV", "I"), "1984");
  EXPECT_EQ(PI("xcix", "i"), "99");
}

TEST(ParseIntegerTest, Letters) {
  EXPECT_EQ(PI("aa", "a"), "27");
  EXPECT_EQ(PI("FZPH", "A"), "123456");
}

TEST(ParseIntegerTest, Words) {
  EXPECT_EQ(PI("Five Hundred and Fifty-Five", "Ww"), "555");
  EXPECT_EQ(PI("nineteen hundred and eighty-four", "w"), "1984");
  EXPECT_EQ(PI("one thousand, nine hundred and eighty-four", "w"), "1984");
  EXPECT_EQ(PI("ten billion trillion trillion trillion", "w"), "1e+46");
}

TEST(ParseIntegerTest, WordsInOrdinalForm) {
  EXPECT_EQ(PI("Seven Hundred and Thirty-Third", "Ww;o"), "733");
  EXPECT_EQ(PI("one hundredth", "w;o"), "100");
}

TEST(ParseIntegerTest, TextNotFittingThePictureIsUndefined) {
  EXPECT_EQ(PI("abc", "0"), "undefined");
  EXPECT_EQ(PI("twelve bananas", "w"), "undefined");
  EXPECT_EQ(PI("MCQ", "I"), "undefined");
}

TEST(ParseIntegerTest, UnsupportedSequenceIsD3130) { EXPECT_EQ(PI("x", "α"), "error:D3130"); }

TEST(ParseIntegerTest, InvertsFormatInteger) {
  for (double v : {0.0, 1.0, 19.0, 20.0, 99.0, 101.0, 999.0, 1001.0, 123456.0, 4327732.0}) {
    for (std::string_view pic : {"w", "W;o", "Ww", "I", "a", "#,##0", "0;o"}) {
      if (v == 0 && (pic == "I" || pic == "a")) continue;  // no zero in these systems
      EXPECT_EQ(PI(FI(v, pic), pic), Num(std::optional<double>(v))) << v << " " << pic;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// $formatNumber

TEST(FormatNumberTest, GroupingAndMandatoryFraction) {
  EXPECT_EQ(FN(12345678.9, "9,999.99"), "12,345,678.90");
  EXPECT_EQ(FN(1234.56789, "9,999.999,999"), "1,234.567,890");
  EXPECT_EQ(FN(2, "000.000"), "002.000");
}

TEST(FormatNumberTest, IrregularGrouping) {
  EXPECT_EQ(FN(123412345678.9, "9,9,99.99"), "123412345,6,78.90");
}

TEST(FormatNumberTest, RoundsHalfToEvenOnDecimalDigits) {
  EXPECT_EQ(FN(0.125, "0.00"), "0.12");
  EXPECT_EQ(FN(0.135, "0.00"), "0.14");  // 0.135 is below .135 in binary; JSONata uses digits
  EXPECT_EQ(FN(2.5, "0"), "2");
  EXPECT_EQ(FN(123.9, "9999"), "0124");
}

TEST(FormatNumberTest, OptionalFractionDigits) {
  EXPECT_EQ(FN(2.14 * 86.58, "PREFIX##00.000###SUFFIX"), "PREFIX185.2812SUFFIX");
  EXPECT_EQ(FN(1.5, "#.##"), "1.5");
  // With no mandatory digit at all, one fractional digit is kept (jsonata-js's reading).
  EXPECT_EQ(FN(1, "#.##"), "1.0");
}

TEST(FormatNumberTest, PercentAndPerMille) {
  EXPECT_EQ(FN(0.4857, "###.###‰"), "485.7‰");
  EXPECT_EQ(FN(0.25, "#0%"), "25%");
}

TEST(FormatNumberTest, ExponentNotation) {
  EXPECT_EQ(FN(1234.5678, "00.000e0"), "12.346e2");
  EXPECT_EQ(FN(1234.5678, "00.000e000"), "12.346e002");
  EXPECT_EQ(FN(0.234, "0.0e0"), "2.3e-1");
  EXPECT_EQ(FN(0.123, "#.e9"), "0.1e0");
  EXPECT_EQ(FN(0.234, ".00e0"), ".23e0");
  EXPECT_EQ(FN(0, "0.00e0"), "0.00e0");
  EXPECT_EQ(FN(-42, "0e0"), "-4e1");
}

TEST(FormatNumberTest, NegativeUsesSecondSubPicture) {
  EXPECT_EQ(FN(2392.14 * -36.58, "000,000.000###;###,###.000###"), "87,504.4812");
  EXPECT_EQ(FN(-5, "0;(0)"), "(5)");
}

TEST(FormatNumberTest, NegativeDefaultsToMinusSign) {
  EXPECT_EQ(FN(-6, "000"), "-006");
  DecimalFormat f;
  f.minus_sign = "−";
  EXPECT_EQ(FN(-6, "0", f), "−6");
}

TEST(FormatNumberTest, ZeroDigitOption) {
  DecimalFormat f;
  f.zero_digit = "⑟";
  EXPECT_EQ(FN(1234.5678, "①①.①①①e①", f), "①②.③④⑥e②");
  DecimalFormat a;
  a.zero_digit = "A";
  EXPECT_EQ(FN(2, "AAA.AAA", a), "AAC.AAA");
  EXPECT_EQ(FN(0.1, "AeAAA", a), "Be-AAB");
}

TEST(FormatNumberTest, SeparatorOptions) {
  DecimalFormat f;
  f.decimal_separator = ",";
  f.grouping_separator = ".";
  EXPECT_EQ(FN(1234567.891, "#.##0,00", f), "1.234.567,89");
}

TEST(FormatNumberTest, NanAndInfinity) {
  EXPECT_EQ(FN(std::nan(""), "0"), "NaN");
  EXPECT_EQ(FN(HUGE_VAL, "$0"), "$Infinity");
  EXPECT_EQ(FN(-HUGE_VAL, "0"), "-Infinity");
}

TEST(FormatNumberTest, LargeNumbersKeepAllDigits) {
  EXPECT_EQ(FN(1e20, "#,######"), "100,000000,000000,000000");
}

TEST(FormatNumberTest, InvalidPicturesReportTheRuleBroken) {
  EXPECT_EQ(FN(20, "#;#;#"), "error:D3080");
  EXPECT_EQ(FN(20, "0.0.0"), "error:D3081");
  EXPECT_EQ(FN(20, "#0%%"), "error:D3082");
  EXPECT_EQ(FN(20, "#0‰‰"), "error:D3083");
  EXPECT_EQ(FN(20, "#0%‰"), "error:D3084");
  EXPECT_EQ(FN(20, ".e0"), "error:D3085");
  EXPECT_EQ(FN(20, "0x0"), "error:D3086");
  EXPECT_EQ(FN(42, "---"), "error:D3086");
  EXPECT_EQ(FN(42, "%%"), "error:D3086");
  EXPECT_EQ(FN(20, "0,.e0"), "error:D3087");
  EXPECT_EQ(FN(20, "0,"), "error:D3088");
  EXPECT_EQ(FN(20, "0,,0"), "error:D3089");
  EXPECT_EQ(FN(20, "0#"), "error:D3090");
  EXPECT_EQ(FN(20, "#0.#0e0"), "error:D3091");
  EXPECT_EQ(FN(20, "0.0e0%"), "error:D3092");
  EXPECT_EQ(FN(20, "0e"), "error:D3093");
}

// ---------------------------------------------------------------------------------------------
// $fromMillis

TEST(FromMillisTest, DefaultIsIso8601WithMilliseconds) {
  EXPECT_EQ(FM(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(FM(1509380732935), "2017-10-30T16:25:32.935Z");
}

TEST(FromMillisTest, BeforeTheEpoch) {
  EXPECT_EQ(FM(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FM(-2777932800000), "1881-12-21T00:00:00.000Z");
}

TEST(FromMillisTest, FractionalMillisAreTruncated) { EXPECT_EQ(FM(1.9), FM(1)); }

TEST(FromMillisTest, DefaultWithTimezoneShowsOffset) {
  EXPECT_EQ(FM(1540127100000, std::nullopt, "-0500"), "2018-10-21T08:05:00.000-05:00");
  EXPECT_EQ(FM(1540127100000, std::nullopt, "0000"), "2018-10-21T13:05:00.000Z");
}

TEST(FromMillisTest, LiteralTextAndEscapedBrackets) {
  EXPECT_EQ(FM(kFriday, "Hello"), "Hello");
  EXPECT_EQ(FM(kFriday, "[[Year]]: [[[Y0001]]]"), "[Year]: [2018]");
}

TEST(FromMillisTest, NumericComponents) {
  EXPECT_EQ(FM(kFriday, "[M01]/[D01]/[Y0001] at [H01]:[m01]:[s01].[f001]"),
            "03/23/2018 at 10:33:36.617");
  EXPECT_EQ(FM(kFriday, "[Y]-[ M01]-[D 01]T[H01 ]:[ m   ]:[s]"), "2018-03-23T10:33:36");
}

TEST(FromMillisTest, WidthModifiers) {
  EXPECT_EQ(FM(kFriday, "[D#1,2]/[M1,2]/[Y,2]"), "23/03/18");
  EXPECT_EQ(FM(kFriday, "[Y0001,2]"), "2018");
  EXPECT_EQ(FM(kFriday, "[Y0001,2-2]"), "18");
  EXPECT_EQ(FM(kFriday, "[Y9,999,*]"), "2,018");
}

TEST(FromMillisTest, NamesOfMonthsAndDays) {
  EXPECT_EQ(FM(kFriday, "[FNn], [D1o] [MNn] [Y]"), "Friday, 23rd March 2018");
  EXPECT_EQ(FM(kFriday, "[MN] [Fn]"), "MARCH friday");
  EXPECT_EQ(FM(kFriday, "[FNn,3-3] [MNn,3-3]"), "Fri Mar");
}

TEST(FromMillisTest, WordsLettersAndRomanComponents) {
  EXPECT_EQ(FM(kFriday, "[Dwo] [Yw]"), "twenty-third two thousand and eighteen");
  EXPECT_EQ(FM(kFriday, "[Da] [MA] [Yi]"), "w C mmxviii");
}

TEST(FromMillisTest, TwelveHourClockAndAmPm) {
  EXPECT_EQ(FM(kFriday, "[h]:[m] [P] [PN]"), "10:33 am AM");
  EXPECT_EQ(FM(1204405500000, "[h]:[m] [P]"), "9:05 pm");
  EXPECT_EQ(FM(1204329600000, "[h] [P]"), "12 am");  // midnight
}

TEST(FromMillisTest, CalendarAndEra) { EXPECT_EQ(FM(kFriday, "[C] [E]"), "ISO ISO"); }

TEST(FromMillisTest, DayOfYearAndDayOfWeek) {
  EXPECT_EQ(FM(1546257600000, "[d]"), "365");
  EXPECT_EQ(FM(1483185600000, "[d]"), "366");
  EXPECT_EQ(FM(1522616700000, "[F0] [FNn]"), "7 Sunday");
  EXPECT_EQ(FM(1522703100000, "[F0] [FNn]"), "1 Monday");
}

TEST(FromMillisTest, IsoWeekOfYear) {
  EXPECT_EQ(FM(1514808000000, "[W]"), "1");   // 2018-01-01
  EXPECT_EQ(FM(1451304000000, "[W]"), "53");  // 2015-12-28
  EXPECT_EQ(FM(1419768000000, "[W]"), "52");  // 2014-12-28
}

TEST(FromMillisTest, IsoWeekDate) {
  // [X] is the year the ISO week belongs to (the corpus's isoWeekDate cases, which go through
  // a variable and so are not run as direct calls).
  const std::vector<std::pair<std::string_view, std::string_view>> dates = {
      {"2005-01-01", "2004-W53-6"}, {"2005-12-31", "2005-W52-6"}, {"2006-01-01", "2005-W52-7"},
      {"2006-01-02", "2006-W01-1"}, {"2007-12-31", "2008-W01-1"}, {"2008-12-28", "2008-W52-7"},
      {"2008-12-30", "2009-W01-2"}, {"2008-12-31", "2009-W01-3"}, {"2009-12-31", "2009-W53-4"},
      {"2010-01-01", "2009-W53-5"}, {"2010-01-02", "2009-W53-6"}};
  for (const auto& [date, week_date] : dates) {
    auto millis = ToMillis(date, "[Y]-[M]-[D]", kNow);
    ASSERT_TRUE(millis.ok() && millis.value().has_value()) << date;
    EXPECT_EQ(FM(**millis, "[X0001]-W[W01]-[F1]"), week_date) << date;
  }
}

TEST(FromMillisTest, WeekOfMonth) {
  EXPECT_EQ(FM(1359460800000, "[w] of [xNn]"), "5 of January");  // 2013-01-29
  EXPECT_EQ(FM(1533038400000, "[w] of [xNn]"), "1 of August");   // 2018-07-31
}

TEST(FromMillisTest, TimezoneShiftsTheTime) {
  const double noon = 1531310400000;  // 2018-07-11T12:00:00Z
  EXPECT_EQ(FM(noon, "[H01]:[m][Z]", "-0500"), "07:00-05:00");
  EXPECT_EQ(FM(noon, "[H01]:[m][Z]", "+1000"), "22:00+10:00");
  EXPECT_EQ(FM(noon, "[H01]:[m][Z0]", "+0530"), "17:30+5:30");
  EXPECT_EQ(FM(noon, "[H01]:[m][Z0]", "-0500"), "07:00-5");
}

TEST(FromMillisTest, NegativeHalfHourOffsetKeepsItsSign) {
  const double noon = 1531310400000;
  EXPECT_EQ(FM(noon, "[H01]:[m][Z]", "-0530"), "06:30-05:30");
  EXPECT_EQ(FM(noon, "[H01]:[m][Z0]", "-0030"), "11:30-0:30");
}

TEST(FromMillisTest, ZoneFormats) {
  const double noon = 1531310400000;
  EXPECT_EQ(FM(noon, "[Z01:01]"), "+00:00");
  EXPECT_EQ(FM(noon, "[Z01:01t]"), "Z");
  EXPECT_EQ(FM(noon, "[Z0101t]", "+0100"), "+0100");
  EXPECT_EQ(FM(noon, "[z]", "-0500"), "GMT-05:00");
}

TEST(FromMillisTest, TooManyZoneDigitsIsD3134) {
  EXPECT_EQ(FM(0, "[Z010101t]", "+0530"), "error:D3134");
}

TEST(FromMillisTest, UnclosedMarkerIsD3135) { EXPECT_EQ(FM(0, "[YN]-[M"), "error:D3135"); }

TEST(FromMillisTest, UnknownComponentIsD3132) {
  EXPECT_EQ(FM(0, "[q]"), "error:D3132");
  EXPECT_EQ(FM(0, "[q1]"), "error:D3132");
}

TEST(FromMillisTest, MarkerWithoutComponentIsD3132) {
  EXPECT_EQ(FM(0, "[]"), "error:D3132");
  EXPECT_EQ(FM(0, "[,2]"), "error:D3132");
}

TEST(FromMillisTest, NameOfNumericComponentIsD3133) { EXPECT_EQ(FM(0, "[YN]"), "error:D3133"); }

// ---------------------------------------------------------------------------------------------
// $toMillis

TEST(ToMillisTest, Iso8601WithoutPicture) {
  EXPECT_EQ(TM("1970-01-01T00:00:00.001Z"), "1");
  EXPECT_EQ(TM("2018-02-01T09:42:13.123+0000"), "1517478133123");
  EXPECT_EQ(TM("2018-02-01T09:42:13.123-01:30"), "1517483533123");
  EXPECT_EQ(TM("2018"), "1514764800000");
  EXPECT_EQ(TM("2018-03-27"), "1522108800000");
}

TEST(ToMillisTest, NonIsoTextIsD3110) {
  EXPECT_EQ(TM("foo"), "error:D3110");
  EXPECT_EQ(TM("01-02-2018"), "error:D3110");
  EXPECT_EQ(TM("2018-02-03 11:15:33"), "error:D3110");
}

TEST(ToMillisTest, ImpossibleIsoDateIsUndefined) { EXPECT_EQ(TM("2018-02-30"), "undefined"); }

TEST(ToMillisTest, NumericPicture) {
  EXPECT_EQ(TM("2018-03-27", "[Y1]-[M01]-[D01]"), "1522108800000");
  EXPECT_EQ(TM("2018-03-27T14:03:00.123Z", "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001]Z"),
            "1522159380123");
}

TEST(ToMillisTest, AdjacentMarkersUseFixedWidths) {
  EXPECT_EQ(TM("20180205", "[Y0001][M01][D01]"), "1517788800000");
  EXPECT_EQ(TM("201802", "[Y,*-4][M01]"), "1517443200000");
}

TEST(ToMillisTest, OrdinalsRomanLettersAndWords) {
  EXPECT_EQ(TM("21st 12 1881", "[D1o] [M01] [Y0001]"), "-2777932800000");
  EXPECT_EQ(TM("27 iii MMXVIII", "[D1] [Mi] [YI]"), "1522108800000");
  EXPECT_EQ(TM("ae C mmxviii", "[Da] [MA] [Yi]"), "1522454400000");
  EXPECT_EQ(TM("twenty-first August two thousand and seventeen", "[Dw] [MNn] [Yw]"),
            "1503273600000");
  EXPECT_EQ(TM("Twentieth of August, two thousand and seventeen", "[DW] of [MNn], [Yw]"),
            "1503187200000");
}

TEST(ToMillisTest, WordsThatArePrefixesOfOthers) {
  // "seven" is tried before "seventeen"; the matcher must back off and take the longer word.
  EXPECT_EQ(TM("seventeen March 2018", "[Dw] [MNn] [Y]"), TM("17 March 2018", "[D] [MNn] [Y]"));
}

TEST(ToMillisTest, MonthAndDayNames) {
  EXPECT_EQ(TM("27th April 2008", "[D1o] [MNn] [Y0001]"), "1209254400000");
  EXPECT_EQ(TM("2 Feb 2012", "[D1] [MNn,3-3] [Y0001]"), "1328140800000");
  EXPECT_EQ(TM("Wednesday, 14th November 2018", "[FNn], [D1o] [MNn] [Y]"), "1542153600000");
}

TEST(ToMillisTest, TwelveHourClock) {
  EXPECT_EQ(TM("4/4/2018 12:06 am", "[D1]/[M1]/[Y0001] [h]:[m] [P]"), "1522800360000");
  EXPECT_EQ(TM("4/4/2018 12:06 pm", "[D1]/[M1]/[Y0001] [h]:[m] [P]"), "1522843560000");
  EXPECT_EQ(TM("4/4/2018 11:30 pm", "[D1]/[M1]/[Y0001] [h]:[m] [P]"), "1522884600000");
}

TEST(ToMillisTest, DayOfYear) {
  EXPECT_EQ(TM("2018-094", "[Y0001]-[d001]"), "1522800000000");
  EXPECT_EQ(TM("three hundred and sixty-fifth day of 2018", "[dwo] day of [Y]"), "1546214400000");
}

TEST(ToMillisTest, LeadingComponentsComeFromNow) {
  EXPECT_EQ(TM("13:45", "[H]:[m]"), "1592228700000");  // 2020-06-15T13:45:00Z
  EXPECT_EQ(TM("3 1", "[M] [D]"), "1583020800000");    // 2020-03-01
}

TEST(ToMillisTest, TimeZones) {
  EXPECT_EQ(TM("2020-09-09 08:00:00 +02:00", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z]"),
            "1599631200000");
  EXPECT_EQ(TM("2020-09-09 08:00:00 GMT-05:00", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [z]"),
            "1599656400000");
  EXPECT_EQ(TM("2020-09-09 12:00:00 +0530", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z0001]"),
            "1599633000000");  // 06:30Z
  EXPECT_EQ(TM("2020-09-09 12:00:00 -0530", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z0001]"),
            "1599672600000");  // 17:30Z
}

TEST(ToMillisTest, FractionalSecondsAreADecimalFraction) {
  EXPECT_EQ(TM("19:05:04.01987", "[H01]:[m01]:[s01].[f1]"),
            TM("19:05:04.019", "[H01]:[m01]:[s01].[f001]"));
  EXPECT_EQ(TM("2020-01-01 00:00:00.5", "[Y]-[M]-[D] [H]:[m]:[s].[f]"), "1577836800500");
}

TEST(ToMillisTest, NoMatchIsUndefined) {
  EXPECT_EQ(TM("irrelevent string", "[Y]-[M]-[D]"), "undefined");
  EXPECT_EQ(TM("Hello", "Hello"), "undefined");  // matches, but gives no component
}

TEST(ToMillisTest, GapBetweenComponentsIsD3136) {
  EXPECT_EQ(TM("2018-22", "[Y]-[D]"), "error:D3136");
  EXPECT_EQ(TM("5-22 23:59", "[M]-[D] [m]:[s]"), "error:D3136");
}

TEST(ToMillisTest, WeekBasedDatesAreD3136) {
  EXPECT_EQ(TM("2018-3-2-5", "[X]-[x]-[w]-[F1]"), "error:D3136");
  EXPECT_EQ(TM("2018-32-5", "[X]-[W]-[F1]"), "error:D3136");
}

TEST(ToMillisTest, NameOfNumericComponentIsD3133) {
  EXPECT_EQ(TM("2018-05-22", "[YN]-[M]-[D]"), "error:D3133");
}

TEST(ToMillisTest, RoundTripsFromMillis) {
  const std::string_view pic = "[FNn], [D1o] [MNn] [Y] [h]:[m01]:[s01].[f001] [P] [Z]";
  for (double ms : {0.0, kFriday, 1204405500000.0, -2777932800000.0, 4102444799999.0}) {
    EXPECT_EQ(TM(FM(ms, pic), pic), Num(std::optional<double>(ms))) << ms;
  }
}

// ---------------------------------------------------------------------------------------------
// Conformance corpus: cases that are one direct call with literal arguments.

struct Literal {
  enum class Kind { kNumber, kString, kObject } kind = Kind::kNumber;
  double number = 0;
  std::string text;
  std::map<std::string, std::string> object;  // string-valued properties only
};

// A small parser for `$name(arg, ...)` with number, string and flat object literals, and an
// optional `~> $fromMillis()` applied to the result. Not a JSONata parser: anything else makes
// the case unselected.
class CallParser {
 public:
  explicit CallParser(std::string_view s) : s_(s) {}

  bool Parse(std::string* name, std::vector<Literal>* args, bool* then_from_millis) {
    Skip();
    if (!Eat('$')) return false;
    *name = Identifier();
    Skip();
    if (!Eat('(')) return false;
    Skip();
    if (!Eat(')')) {
      while (true) {
        Literal lit;
        if (!Value(&lit)) return false;
        args->push_back(std::move(lit));
        Skip();
        if (Eat(')')) break;
        if (!Eat(',')) return false;
      }
    }
    Skip();
    *then_from_millis = false;
    if (s_.substr(i_, 2) == "~>") {
      i_ += 2;
      Skip();
      if (!Eat('$') || Identifier() != "fromMillis") return false;
      Skip();
      if (!Eat('(')) return false;
      Skip();
      if (!Eat(')')) return false;
      *then_from_millis = true;
      Skip();
    }
    return i_ == s_.size();
  }

 private:
  void Skip() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::string Identifier() {
    size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) {
      ++i_;
    }
    return std::string(s_.substr(start, i_ - start));
  }
  bool String(std::string* out) {
    if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) return false;
    const char quote = s_[i_++];
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\') {
        if (i_ + 1 >= s_.size()) return false;
        const char e = s_[i_ + 1];
        if (e == 'u') return false;  // no corpus case needs \u escapes here
        out->push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        i_ += 2;
      } else {
        out->push_back(s_[i_++]);
      }
    }
    return Eat(quote);
  }
  bool Number(double* out) {
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    size_t digits = i_;
    while (i_ < s_.size() &&
           (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == 'e' ||
            s_[i_] == 'E' ||
            ((s_[i_] == '+' || s_[i_] == '-') && (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E')))) {
      ++i_;
    }
    if (i_ == digits) return false;
    std::string text(s_.substr(start, i_ - start));
    char* end = nullptr;
    *out = std::strtod(text.c_str(), &end);  // digits only: the locale's decimal point is '.'
    return end == text.c_str() + text.size();
  }
  bool Value(Literal* lit) {
    Skip();
    if (i_ < s_.size() && (s_[i_] == '"' || s_[i_] == '\'')) {
      lit->kind = Literal::Kind::kString;
      return String(&lit->text);
    }
    if (Eat('{')) {
      lit->kind = Literal::Kind::kObject;
      Skip();
      if (Eat('}')) return true;
      while (true) {
        Skip();
        std::string key;
        std::string value;
        if (!String(&key)) return false;
        Skip();
        if (!Eat(':')) return false;
        Skip();
        if (!String(&value)) return false;
        lit->object[key] = value;
        Skip();
        if (Eat('}')) return true;
        if (!Eat(',')) return false;
      }
    }
    lit->kind = Literal::Kind::kNumber;
    return Number(&lit->number);
  }

  std::string_view s_;
  size_t i_ = 0;
};

struct CorpusCase {
  std::string id;
  std::string group;
  std::string expr;
  nlohmann::json expected;  // {"result": x} | {"undefined": true} | {"error": code}
};

std::string CorpusPath() {
  std::string dir = engage::testing::SharedDir("conformance/jsonata");
  return (dir.empty() ? std::string(ENGAGE_SOURCE_DIR) + "/../shared/conformance/jsonata" : dir) +
         "/cases.jsonl";
}

std::map<std::string, std::string> KnownFailures() {
  std::map<std::string, std::string> known;
  std::ifstream in(ENGAGE_SOURCE_DIR "/tests/jsonata/jsonata_picture_known_failures.txt");
  std::string line;
  while (std::getline(in, line)) {
    const size_t hash = line.find('#');
    std::string id = line.substr(0, hash);
    id.erase(id.find_last_not_of(" \t\r") + 1);
    id.erase(0, id.find_first_not_of(" \t"));
    if (id.empty()) continue;
    known[id] = hash == std::string::npos ? "" : line.substr(hash + 1);
  }
  return known;
}

const std::set<std::string>& PictureFunctions() {
  static const std::set<std::string> names = {"formatInteger", "parseInteger", "formatNumber",
                                              "fromMillis", "toMillis"};
  return names;
}

std::vector<CorpusCase> LoadSelectedCases() {
  std::vector<CorpusCase> cases;
  std::ifstream in(CorpusPath());
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("expr")) continue;  // e.g. lone surrogates
    std::string name;
    std::vector<Literal> args;
    bool then_from_millis = false;
    const std::string expr = j["expr"].get<std::string>();
    if (!CallParser(expr).Parse(&name, &args, &then_from_millis)) continue;
    if (PictureFunctions().count(name) == 0) continue;
    if (then_from_millis && name != "toMillis") continue;
    CorpusCase c;
    c.id = j["id"].get<std::string>();
    c.group = j.value("group", "");
    c.expr = expr;
    if (j.contains("error")) {
      c.expected["error"] = j["error"];
    } else if (j.contains("undefined")) {
      c.expected["undefined"] = true;
    } else if (j.contains("result")) {
      c.expected["result"] = j["result"];
    } else {
      continue;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

// What running the case gives, in the corpus's terms, or a reason it could not run.
nlohmann::json RunCase(const CorpusCase& c, std::string* problem) {
  std::string name;
  std::vector<Literal> args;
  bool then_from_millis = false;
  CallParser(c.expr).Parse(&name, &args, &then_from_millis);
  using Kind = Literal::Kind;
  auto is = [&args](size_t i, Kind k) { return i < args.size() && args[i].kind == k; };
  auto from_string = [](const Outcome<std::string>& out) {
    nlohmann::json r;
    if (out.ok()) {
      r["result"] = out.value();
    } else {
      r["error"] = out.error().code;
    }
    return r;
  };
  auto from_number = [](const Outcome<std::optional<double>>& out) {
    nlohmann::json r;
    if (!out.ok()) {
      r["error"] = out.error().code;
    } else if (!out.value()) {
      r["undefined"] = true;
    } else {
      r["result"] = *out.value();
    }
    return r;
  };
  if (name == "formatInteger" && args.size() == 2 && is(0, Kind::kNumber) && is(1, Kind::kString)) {
    return from_string(FormatInteger(args[0].number, args[1].text));
  }
  if (name == "parseInteger" && args.size() == 2 && is(0, Kind::kString) && is(1, Kind::kString)) {
    return from_number(ParseInteger(args[0].text, args[1].text));
  }
  if (name == "formatNumber" && (args.size() == 2 || args.size() == 3) && is(0, Kind::kNumber) &&
      is(1, Kind::kString) && (args.size() == 2 || is(2, Kind::kObject))) {
    DecimalFormat f;
    if (args.size() == 3) {
      const std::map<std::string, std::string*> fields = {
          {"decimal-separator", &f.decimal_separator},
          {"grouping-separator", &f.grouping_separator},
          {"exponent-separator", &f.exponent_separator},
          {"minus-sign", &f.minus_sign},
          {"infinity", &f.infinity},
          {"NaN", &f.nan},
          {"percent", &f.percent},
          {"per-mille", &f.per_mille},
          {"zero-digit", &f.zero_digit},
          {"digit", &f.digit},
          {"pattern-separator", &f.pattern_separator}};
      for (const auto& [key, value] : args[2].object) {
        auto it = fields.find(key);
        if (it == fields.end()) {
          *problem = "unknown option " + key;
          return {};
        }
        *it->second = value;
      }
    }
    return from_string(FormatNumber(args[0].number, args[1].text, f));
  }
  if (name == "fromMillis" && !args.empty() && args.size() <= 3 && is(0, Kind::kNumber) &&
      (args.size() < 2 || is(1, Kind::kString)) && (args.size() < 3 || is(2, Kind::kString))) {
    std::optional<std::string_view> pic;
    std::optional<std::string_view> tz;
    if (args.size() >= 2) pic = args[1].text;
    if (args.size() >= 3) tz = args[2].text;
    return from_string(FromMillis(args[0].number, pic, tz));
  }
  if (name == "toMillis" && !args.empty() && args.size() <= 2 && is(0, Kind::kString) &&
      (args.size() < 2 || is(1, Kind::kString))) {
    std::optional<std::string_view> pic;
    if (args.size() == 2) pic = args[1].text;
    auto out = ToMillis(args[0].text, pic);
    if (!then_from_millis || !out.ok() || !out.value()) return from_number(out);
    return from_string(FromMillis(*out.value(), std::nullopt, std::nullopt));
  }
  *problem = "argument shape not supported by the direct-call runner";
  return {};
}

bool SameOutcome(const nlohmann::json& expected, const nlohmann::json& actual) {
  if (expected.contains("result") && actual.contains("result")) {
    const auto& e = expected["result"];
    const auto& a = actual["result"];
    if (e.is_number() && a.is_number()) return e.get<double>() == a.get<double>();
    return e == a;
  }
  return expected == actual;
}

class PictureConformanceTest : public ::testing::TestWithParam<CorpusCase> {};

TEST_P(PictureConformanceTest, MatchesReference) {
  const CorpusCase& c = GetParam();
  if (c.id.empty()) GTEST_SKIP() << "conformance corpus not found at " << CorpusPath();
  static const std::map<std::string, std::string> known = KnownFailures();
  std::string problem;
  const nlohmann::json actual = RunCase(c, &problem);
  const bool pass = problem.empty() && SameOutcome(c.expected, actual);
  auto it = known.find(c.id);
  if (it != known.end()) {
    if (pass) {
      std::cout << "[ NOTE ] " << c.id << " passes now; remove it from the known failures\n";
    } else {
      GTEST_SKIP() << "known failure:" << it->second;
    }
    return;
  }
  EXPECT_TRUE(pass) << c.id << "\n  expr:     " << c.expr << "\n  expected: " << c.expected.dump()
                    << "\n  actual:   " << (problem.empty() ? actual.dump() : problem);
}

std::vector<CorpusCase> CasesOrPlaceholder() {
  std::vector<CorpusCase> cases = LoadSelectedCases();
  if (cases.empty()) cases.push_back(CorpusCase{});  // reported as skipped
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Corpus, PictureConformanceTest, ::testing::ValuesIn(CasesOrPlaceholder()),
                         [](const ::testing::TestParamInfo<CorpusCase>& param_info) {
                           std::string name =
                               param_info.param.id.empty() ? "CorpusMissing" : param_info.param.id;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name + "_" + std::to_string(param_info.index);
                         });

// Prints the pass count per group (for the record; failures are reported above).
TEST(PictureConformanceSummary, PassCountsPerGroup) {
  const std::vector<CorpusCase> cases = LoadSelectedCases();
  if (cases.empty()) GTEST_SKIP() << "conformance corpus not found at " << CorpusPath();
  std::map<std::string, std::pair<int, int>> counts;  // group -> (passed, selected)
  for (const CorpusCase& c : cases) {
    std::string problem;
    const nlohmann::json actual = RunCase(c, &problem);
    auto& [passed, selected] = counts[c.group];
    ++selected;
    if (problem.empty() && SameOutcome(c.expected, actual)) ++passed;
  }
  for (const auto& [group, count] : counts) {
    std::cout << "[ SUMMARY ] " << group << ": " << count.first << "/" << count.second
              << " selected cases pass\n";
  }
}

}  // namespace
}  // namespace engage::jsonata::picture
