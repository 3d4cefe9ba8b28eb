// The validator: every problem reported with state, field pointer and message.
#include "engage/flow/definition.h"

#include <gtest/gtest.h>

namespace engage::flow {
namespace {

std::vector<Diagnostic> Problems(const std::string& text) {
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(Json::parse(text), &problems);
  EXPECT_EQ(sm == nullptr, !problems.empty());
  return problems;
}

bool Has(const std::vector<Diagnostic>& ps, const std::string& pointer, const std::string& text) {
  for (const auto& p : ps) {
    if (p.pointer == pointer && p.message.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string Dump(const std::vector<Diagnostic>& ps) {
  std::string out;
  for (const auto& p : ps) out += p.ToString() + "\n";
  return out;
}

TEST(DefinitionTest, ValidDefinitionHasNoProblems) {
  EXPECT_TRUE(Problems(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}})j").empty());
}

TEST(DefinitionTest, UnknownNextTargetIsNamed) {
  auto ps = Problems(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nope"}}})j");
  EXPECT_TRUE(Has(ps, "/States/A/Next", "unknown state 'Nope'")) << Dump(ps);
}

TEST(DefinitionTest, UnreachableStateIsReported) {
  auto ps = Problems(R"j({"StartAt":"A","States":{"A":{"Type":"Succeed"},
                        "Orphan":{"Type":"Pass","End":true}}})j");
  EXPECT_TRUE(Has(ps, "/States/Orphan", "not reachable")) << Dump(ps);
}

TEST(DefinitionTest, MissingTerminalIsReported) {
  auto ps = Problems(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"},
                        "B":{"Type":"Pass","Next":"A"}}})j");
  EXPECT_TRUE(Has(ps, "/States", "no terminal state")) << Dump(ps);
}

TEST(DefinitionTest, EveryProblemIsReportedNotOnlyTheFirst) {
  auto ps = Problems(R"j({"StartAt":"A","States":{
    "A":{"Type":"Pass","InputPath":"$.[","Next":"B"},
    "B":{"Type":"Task","End":true,"Retry":[{"ErrorEquals":["States.ALL","X"]}]},
    "C":{"Type":"Bogus"}}})j");
  EXPECT_TRUE(Has(ps, "/States/A/InputPath", "invalid JSONPath")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "/States/B/Resource", "Resource")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "/States/B/Retry/0/ErrorEquals", "States.ALL must appear alone")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "/States/C/Type", "Type must be")) << Dump(ps);
}

TEST(DefinitionTest, BadIntrinsicCallIsReported) {
  auto ps = Problems(R"j({"StartAt":"A","States":{"A":{"Type":"Pass",
    "Parameters":{"x.$":"States.Formatt('{}', $.a)","y.$":"States.ArrayLength()"},
    "End":true}}})j");
  EXPECT_TRUE(Has(ps, "/States/A/Parameters/x.$", "unknown intrinsic function")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "/States/A/Parameters/y.$", "takes 1 argument")) << Dump(ps);
}

TEST(DefinitionTest, JsonPathFieldInJsonataStateIsReported) {
  auto ps = Problems(R"j({"QueryLanguage":"JSONata","StartAt":"A","States":{"A":{"Type":"Pass",
    "InputPath":"$.a","End":true}}})j");
  EXPECT_TRUE(Has(ps, "/States/A/InputPath", "JSONPath-only")) << Dump(ps);
}

TEST(DefinitionTest, JsonataFieldInJsonPathStateIsReported) {
  auto ps = Problems(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","Output":"{% 1 %}",
    "End":true}}})j");
  EXPECT_TRUE(Has(ps, "/States/A/Output", "JSONata-only")) << Dump(ps);
}

TEST(DefinitionTest, BadJsonataExpressionIsReported) {
  auto ps = Problems(R"j({"QueryLanguage":"JSONata","StartAt":"A","States":{"A":{"Type":"Pass",
    "Output":{"x":"{% $states.input.( %}"},"End":true}}})j");
  EXPECT_TRUE(Has(ps, "/States/A/Output/x", "invalid JSONata expression")) << Dump(ps);
}

TEST(DefinitionTest, InvalidRetryFieldsAreReported) {
  auto ps = Problems(R"j({"StartAt":"A","States":{"A":{"Type":"Task","Resource":"engage:x",
    "Retry":[{"ErrorEquals":["E"],"BackoffRate":0.5,"MaxAttempts":-1,"JitterStrategy":"SOME"}],
    "Catch":[{"ErrorEquals":["E"]}],"End":true}}})j");
  EXPECT_TRUE(Has(ps, "/States/A/Retry/0/BackoffRate", ">= 1.0")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "/States/A/Retry/0/MaxAttempts", "from 0 to 99999999")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "/States/A/Retry/0/JitterStrategy", "FULL or NONE")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "/States/A/Catch/0/Next", "needs Next")) << Dump(ps);
}

TEST(DefinitionTest, ChoiceRuleNeedsExactlyOneOperator) {
  auto ps = Problems(R"j({"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[
    {"Variable":"$.a","NumericEquals":1,"StringEquals":"x","Next":"D"}],"Default":"D"},
    "D":{"Type":"Succeed"}}})j");
  EXPECT_TRUE(Has(ps, "/States/C/Choices/0", "exactly one comparison")) << Dump(ps);
}

TEST(DefinitionTest, UnknownFieldIsReported) {
  auto ps = Problems(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","Nxt":"B","End":true}}})j");
  EXPECT_TRUE(Has(ps, "/States/A/Nxt", "not supported by Pass")) << Dump(ps);
}

TEST(DefinitionTest, NestedMachinesAreValidated) {
  auto ps = Problems(R"j({"StartAt":"M","States":{"M":{"Type":"Map","ItemProcessor":{
    "StartAt":"X","States":{"X":{"Type":"Pass","Next":"Y"}}},"End":true}}})j");
  EXPECT_TRUE(Has(ps, "/States/M/ItemProcessor/States/X/Next", "unknown state 'Y'")) << Dump(ps);
}

}  // namespace
}  // namespace engage::flow
