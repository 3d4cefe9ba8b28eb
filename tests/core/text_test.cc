// Text for people: tables, bytes and dollars.
#include "engage/core/text.h"

#include <gtest/gtest.h>

namespace engage {
namespace {

TEST(TextTest, TablesAlignColumnsUnderARule) {
  EXPECT_EQ(FormatTable({"a", "name"}, {{"1", "x"}, {"22", "yy"}}),
            "a   name\n"
            "--  ----\n"
            "1   x\n"
            "22  yy\n");
}

TEST(TextTest, LongCellsAreCutButNotTheLastColumn) {
  std::string longer(100, 'x');
  std::string t = FormatTable({"a", "b"}, {{longer, longer}});
  EXPECT_NE(t.find(std::string(57, 'x') + "..."), std::string::npos) << t;
  EXPECT_NE(t.find(longer + "\n"), std::string::npos) << t;  // the last column is whole
}

TEST(TextTest, ControlCharactersAreShownNotSentToTheTerminal) {
  std::string t = FormatTable({"v"}, {{"\x1b[31mred\nnext\tcol"}});
  EXPECT_EQ(t.find('\x1b'), std::string::npos) << t;
  EXPECT_NE(t.find("\\x1b[31mred\\nnext\\tcol"), std::string::npos) << t;
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 3);  // header, rule, one row
}

TEST(TextTest, MissingCellsAreEmpty) {
  EXPECT_EQ(FormatTable({"a", "b"}, {{"1"}}), "a  b\n-  -\n1\n");
}

TEST(TextTest, BytesAndDollars) {
  EXPECT_EQ(HumanBytes(812), "812 B");
  EXPECT_EQ(HumanBytes(1'200'000), "1.2 MB");
  EXPECT_EQ(Usd(0), "$0");
  EXPECT_EQ(Usd(0.000123), "$0.000123");
  EXPECT_EQ(Usd(1.23456), "$1.2346");
}

TEST(TextTest, EscapePieces) {
  EXPECT_EQ(ControlEscape('n'), '\n');
  EXPECT_EQ(ControlEscape('t'), '\t');
  EXPECT_EQ(ControlEscape('b'), '\b');
  EXPECT_EQ(ControlEscape('x'), 0);
  EXPECT_EQ(ControlEscape('"'), 0);
  EXPECT_EQ(ParseHex4("\\u00e9", 2), 0xe9);
  EXPECT_EQ(ParseHex4("FFff", 0), 0xffff);
  EXPECT_EQ(ParseHex4("12g4", 0), -1);
  EXPECT_EQ(ParseHex4("123", 0), -1);   // too short
  EXPECT_EQ(ParseHex4("1234", 3), -1);  // runs past the end
  EXPECT_EQ(ParseHex4("1234", 9), -1);  // starts past the end
}

}  // namespace
}  // namespace engage
