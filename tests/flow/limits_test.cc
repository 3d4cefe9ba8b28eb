// AWS Step Functions' limits as the engine enforces them (issue 13): time fields within AWS's
// bounds, the history quota, the maximum execution duration, the payload limit on JSONPath and
// JSONata results, and the nesting limit on inputs and on values states build.
#include <gtest/gtest.h>

#include <string>

#include "engage/flow/definition.h"
#include "engage/flow/engine.h"
#include "engage/flow/intrinsics.h"
#include "engage/flow/jsonpath.h"
#include "engage/jsonata/jsonata.h"
#include "flow/item_io_internal.h"

namespace engage::flow {
namespace {

std::vector<Diagnostic> Problems(const std::string& text) {
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(Json::parse(text), &problems);
  EXPECT_EQ(sm == nullptr, !problems.empty());
  return problems;
}

bool Has(const std::vector<Diagnostic>& ps, const std::string& state, const std::string& pointer) {
  for (const auto& p : ps) {
    if (p.state == state && p.pointer == pointer) return true;
  }
  return false;
}

std::string Dump(const std::vector<Diagnostic>& ps) {
  std::string out;
  for (const auto& p : ps) out += p.ToString() + "\n";
  return out;
}

std::shared_ptr<const StateMachine> Parse(const std::string& text) {
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(Json::parse(text), &problems);
  EXPECT_NE(sm, nullptr) << Dump(problems);
  return sm;
}

class Sink : public EventSink {
 public:
  Status Append(const Event& e) override {
    events.push_back(e);
    return Status::Ok();
  }
  std::vector<Event> events;
};

// Runs on a virtual clock: sleeping advances it.
struct Harness {
  FakeClock clock{1700000000LL * 1000000};
  Sink sink;
  int64_t slept_micros = 0;
  EngineOptions options;

  Harness() {
    options.clock = &clock;
    options.sleep = [this](int64_t us) {
      slept_micros += us;
      clock.AdvanceMicros(us);
    };
    options.events = &sink;
  }

  ExecutionResult Run(const StateMachine& sm, const Json& input) {
    Engine engine(options);
    return engine.Run(sm, input, "test");
  }
};

// [[[...]]] `depth` levels deep, built without recursion.
Json Nested(int depth) {
  Json v = Json::array();
  for (int i = 1; i < depth; ++i) {
    Json outer = Json::array();
    outer.push_back(std::move(v));
    v = std::move(outer);
  }
  return v;
}

constexpr int64_t kYearMicros = 31536000LL * 1000000;

// ---- F11: time fields ----

TEST(LimitsTest, WaitSecondsBeyondAwsMaximumAreProblemsNamingStateAndField) {
  for (const char* seconds : {"9500000000", "99999999999999", "100000000", "1e300", "-1"}) {
    auto ps = Problems(std::string(R"j({"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":)j") +
                       seconds + R"j(,"End":true}}})j");
    EXPECT_TRUE(Has(ps, "W", "/States/W/Seconds")) << seconds << "\n" << Dump(ps);
  }
  EXPECT_TRUE(Problems(R"j({"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":99999999,
                           "End":true}}})j")
                  .empty());
}

TEST(LimitsTest, TimeoutAndHeartbeatAboveAwsMaximumAreProblems) {
  auto ps = Problems(R"j({"StartAt":"T","TimeoutSeconds":9223372036854775807,"States":{
    "T":{"Type":"Task","Resource":"engage:x","TimeoutSeconds":100000000,
         "HeartbeatSeconds":18446744073709551615,"End":true}}})j");
  EXPECT_TRUE(Has(ps, "", "/TimeoutSeconds")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "T", "/States/T/TimeoutSeconds")) << Dump(ps);
  EXPECT_TRUE(Has(ps, "T", "/States/T/HeartbeatSeconds")) << Dump(ps);
}

TEST(LimitsTest, RetryAndMapFieldsOutOfRangeAreProblems) {
  auto ps = Problems(R"j({"StartAt":"M","States":{
    "M":{"Type":"Map","MaxConcurrency":1e20,"ToleratedFailureCount":99999999999,
         "ToleratedFailurePercentage":1e300,
         "ItemProcessor":{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}},
         "Retry":[{"ErrorEquals":["X"],"IntervalSeconds":9500000000,"MaxAttempts":1e12,
                   "MaxDelaySeconds":99999999999999}],
         "End":true}}})j");
  for (const char* field :
       {"/States/M/MaxConcurrency", "/States/M/ToleratedFailureCount",
        "/States/M/ToleratedFailurePercentage", "/States/M/Retry/0/IntervalSeconds",
        "/States/M/Retry/0/MaxAttempts", "/States/M/Retry/0/MaxDelaySeconds"}) {
    EXPECT_TRUE(Has(ps, "M", field)) << field << "\n" << Dump(ps);
  }
}

TEST(LimitsTest, TimestampsBeyondTheMaximumWaitAreReportedAtAnyDepth) {
  auto sm = Parse(R"j({"StartAt":"W","States":{
    "W":{"Type":"Wait","Timestamp":"9999-12-31T23:59:59Z","Next":"P"},
    "P":{"Type":"Parallel","End":true,"Branches":[{"StartAt":"N","States":{
      "N":{"Type":"Wait","Timestamp":"2024-01-01T00:00:00Z","Next":"F"},
      "F":{"Type":"Wait","Timestamp":"2100-01-01T00:00:00Z","End":true}}}]}}})j");
  int64_t now = 1700000000LL * 1000000;  // 2023-11-14
  std::vector<Diagnostic> far = FarTimestamps(*sm, now);
  ASSERT_EQ(far.size(), 2u) << Dump(far);
  EXPECT_TRUE(Has(far, "W", "/States/W/Timestamp")) << Dump(far);
  EXPECT_TRUE(Has(far, "F", "/States/P/Branches/0/States/F/Timestamp")) << Dump(far);
}

TEST(LimitsTest, WaitUntilAFarTimestampTimesOutAtTheMaximumDuration) {
  auto sm = Parse(R"j({"StartAt":"W","States":{"W":{"Type":"Wait",
    "Timestamp":"9999-12-31T23:59:59Z","End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut) << r.cause.value_or("");
  EXPECT_EQ(r.error, std::optional<std::string>("States.Timeout"));
  // It waited (a year, on the virtual clock), then timed out: it did not succeed at once.
  EXPECT_GE(h.slept_micros, kYearMicros);
  EXPECT_LE(h.slept_micros, kYearMicros + 1000000);
  ASSERT_FALSE(h.sink.events.empty());
  EXPECT_EQ(h.sink.events.back().type, "ExecutionTimedOut");
}

TEST(LimitsTest, WaitOnSecondsPathAboveTheMaximumFailsWithStatesRuntime) {
  auto sm = Parse(R"j({"StartAt":"W","States":{"W":{"Type":"Wait","SecondsPath":"$.s",
    "End":true}}})j");
  for (Json s : {Json(9500000000LL), Json(99999999999999LL), Json(1e300)}) {
    Harness h;
    ExecutionResult r = h.Run(*sm, Json{{"s", s}});
    EXPECT_EQ(r.status, ExecutionStatus::kFailed) << s;
    EXPECT_EQ(r.error, std::optional<std::string>("States.Runtime")) << s;
    EXPECT_NE(r.cause.value_or("").find("'W'"), std::string::npos) << r.cause.value_or("");
    EXPECT_NE(r.cause.value_or("").find("SecondsPath"), std::string::npos) << r.cause.value_or("");
    EXPECT_EQ(h.slept_micros, 0);
  }
}

TEST(LimitsTest, WaitOnAFarTimestampPathTimesOutInsteadOfSucceeding) {
  auto sm = Parse(R"j({"StartAt":"W","States":{"W":{"Type":"Wait","TimestampPath":"$.t",
    "End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json{{"t", "9999-12-31T23:59:59Z"}});
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut) << r.cause.value_or("");
}

TEST(LimitsTest, TaskTimeoutSecondsPathAboveTheMaximumFailsWithStatesRuntime) {
  auto sm = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task","Resource":"engage:x",
    "TimeoutSecondsPath":"$.t","End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json{{"t", 9223372036854775807LL}});
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.Runtime"));
  EXPECT_NE(r.cause.value_or("").find("TimeoutSecondsPath"), std::string::npos)
      << r.cause.value_or("");
}

TEST(LimitsTest, LargestTimeoutSecondsDoesNotTimeOutAtOnce) {
  auto sm = Parse(R"j({"StartAt":"W","TimeoutSeconds":99999999,"States":{
    "W":{"Type":"Wait","Seconds":10,"End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kSucceeded) << r.cause.value_or("");
  EXPECT_EQ(h.slept_micros, 10 * 1000000LL);
}

TEST(LimitsTest, RetryBackoffThatGrowsWithoutBoundIsCappedByTheDeadline) {
  // A Task with no runner fails with States.TaskFailed; BackoffRate 1e300 overflows any delay.
  auto t = Parse(R"j({"StartAt":"T","States":{"T":{"Type":"Task","Resource":"engage:none",
    "Retry":[{"ErrorEquals":["States.ALL"],"IntervalSeconds":1,"BackoffRate":1e300,
              "MaxAttempts":5}],"End":true}}})j");
  Harness h;
  h.options.max_execution_seconds = 100;
  ExecutionResult r = h.Run(*t, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut) << r.cause.value_or("");
  EXPECT_LE(h.slept_micros, 101 * 1000000LL);
}

// ---- F12: history quota and maximum duration ----

constexpr const char* kEndlessLoop = R"j({"StartAt":"P","States":{
  "P":{"Type":"Pass","Next":"C"},
  "C":{"Type":"Choice","Choices":[{"Variable":"$.stop","IsPresent":true,"Next":"Done"}],
       "Default":"P"},
  "Done":{"Type":"Succeed"}}})j";

TEST(LimitsTest, EndlessPassChoiceLoopFailsAtTheHistoryQuota) {
  auto sm = Parse(kEndlessLoop);
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.Runtime"));
  EXPECT_EQ(r.cause, std::optional<std::string>(
                         "The execution reached the maximum number of history events (25000)."));
  ASSERT_EQ(h.sink.events.size(), 25000u);
  EXPECT_EQ(h.sink.events.back().type, "ExecutionFailed");
  EXPECT_EQ(h.sink.events.back().id, 25000);
}

TEST(LimitsTest, HistoryQuotaIsConfigurableAndNotCaughtOrRetried) {
  auto loop = Parse(R"j({"StartAt":"P","States":{
    "P":{"Type":"Task","Resource":"engage:none",
         "Retry":[{"ErrorEquals":["States.Runtime"],"MaxAttempts":99999999}],
         "Catch":[{"ErrorEquals":["States.Runtime","States.TaskFailed"],"Next":"P"}],
         "End":true}}})j");
  Harness h;
  h.options.max_history_events = 100;
  ExecutionResult r = h.Run(*loop, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.Runtime"));
  EXPECT_NE(r.cause.value_or("").find("(100)"), std::string::npos) << r.cause.value_or("");
  EXPECT_EQ(h.sink.events.size(), 100u);
}

TEST(LimitsTest, ExecutionSucceededMayBeTheLastEventTheQuotaAllows) {
  auto sm = Parse(R"j({"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"},
    "B":{"Type":"Pass","End":true}}})j");
  Harness h;
  h.options.max_history_events = 6;  // started, 2 x (entered, exited), succeeded
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kSucceeded) << r.cause.value_or("");
  EXPECT_EQ(h.sink.events.size(), 6u);

  Harness tight;
  tight.options.max_history_events = 5;
  r = tight.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(tight.sink.events.size(), 5u);
  EXPECT_EQ(tight.sink.events.back().type, "ExecutionFailed");
}

TEST(LimitsTest, ExecutionLongerThanTheMaximumDurationTimesOut) {
  auto sm = Parse(R"j({"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":100,"End":true}}})j");
  Harness h;
  h.options.max_execution_seconds = 10;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kTimedOut);
  EXPECT_EQ(r.error, std::optional<std::string>("States.Timeout"));
  EXPECT_NE(r.cause.value_or("").find("maximum execution duration"), std::string::npos)
      << r.cause.value_or("");
  EXPECT_EQ(h.sink.events.back().type, "ExecutionTimedOut");
  EXPECT_LE(h.slept_micros, 11 * 1000000LL);
}

// ---- F13: bounded JSONPath, intrinsic and JSONata results ----

// {"a": {"a": ... {"s": "xxx..."}}}, `depth` levels, with a 1 KB string at the bottom: each of
// the `depth` subtrees `$..*` selects holds the string, so the result is ~depth KB.
Json DeepWithPayload(int depth) {
  Json v = Json{{"s", std::string(1024, 'x')}};
  for (int i = 0; i < depth; ++i) v = Json{{"a", std::move(v)}};
  return v;
}

TEST(LimitsTest, RecursiveWildcardStopsBeforeBuildingAnOversizedResult) {
  auto p = JsonPath::Parse("$..*");
  ASSERT_TRUE(p.ok());
  Json input = DeepWithPayload(500);  // over 500 KB of result
  Result<Json> r = p->Evaluate(input);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  // The same path on a small document still works.
  Result<Json> small = p->Evaluate(DeepWithPayload(3));
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(small->size(), 4u);
}

TEST(LimitsTest, SelectingMoreNodesThanTheResultCanHoldStops) {
  Json many = Json::array();
  for (int i = 0; i < 200000; ++i) many.push_back(i % 10);
  auto p = JsonPath::Parse("$[*]");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Select(many, 1000).status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(p->Select(many, 0).ok());
}

TEST(LimitsTest, PassWithRecursiveWildcardFailsWithDataLimitExceeded) {
  auto sm = Parse(R"j({"StartAt":"P","States":{"P":{"Type":"Pass",
    "Parameters":{"all.$":"$..*"},"End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, DeepWithPayload(200));
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.DataLimitExceeded"));
  EXPECT_NE(r.cause.value_or("").find("'P'"), std::string::npos) << r.cause.value_or("");
}

TEST(LimitsTest, NestedIntrinsicCallsStopAtThePayloadLimit) {
  auto call = Intrinsic::Parse("States.Array(States.Array($.s, $.s, $.s), $.s)");
  ASSERT_TRUE(call.ok());
  Json s(std::string(100000, 'x'));
  PathResolver resolve = [&](const JsonPath&) -> Result<Json> { return s; };
  EXPECT_EQ(call->Evaluate(resolve, 262144).status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(call->Evaluate(resolve, 0).ok());
}

TEST(LimitsTest, JsonataDescendantsStopAtTheResultLimit) {
  auto e = jsonata::Expression::Compile("$.**");
  ASSERT_TRUE(e.ok());
  Json input = DeepWithPayload(300);
  jsonata::EvalOptions o;
  o.max_result_bytes = 262144;
  auto r = e->Evaluate(&input, {}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, jsonata::kResultTooLargeCode);
}

TEST(LimitsTest, JsonataStateWithAnOversizedResultFailsWithDataLimitExceeded) {
  auto sm = Parse(R"j({"QueryLanguage":"JSONata","StartAt":"P","States":{"P":{"Type":"Pass",
    "Output":"{% $states.input.** %}","End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, DeepWithPayload(200));
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.DataLimitExceeded"))
      << r.cause.value_or("");
}

// ---- Nesting ----

TEST(LimitsTest, ExecutionInputDeeperThanTheLimitFailsWithStatesRuntime) {
  auto sm = Parse(R"j({"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Nested(kMaxJsonDepth + 10));
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.Runtime"));
  EXPECT_NE(r.cause.value_or("").find("nested deeper"), std::string::npos) << r.cause.value_or("");
}

TEST(LimitsTest, PassThatWrapsItsInputInALoopFailsCleanlyAtTheDepthLimit) {
  auto sm = Parse(R"j({"StartAt":"Init","States":{
    "Init":{"Type":"Pass","Assign":{"n":0},"Next":"Wrap"},
    "Wrap":{"Type":"Pass","Parameters":{"a.$":"$"},"Assign":{"n.$":"States.MathAdd($n, 1)"},
            "Next":"Loop"},
    "Loop":{"Type":"Choice","Choices":[{"Variable":"$n","NumericLessThan":2000,"Next":"Wrap"}],
            "Default":"Done"},
    "Done":{"Type":"Succeed"}}})j");
  Harness h;
  ExecutionResult r = h.Run(*sm, Json::object());
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.Runtime"));
  EXPECT_NE(r.cause.value_or("").find("'Wrap'"), std::string::npos) << r.cause.value_or("");
  EXPECT_NE(r.cause.value_or("").find("deeper than 512"), std::string::npos)
      << r.cause.value_or("");
}

TEST(LimitsTest, StringToJsonOfDeeplyNestedTextFailsWithStatesRuntime) {
  auto sm = Parse(R"j({"StartAt":"P","States":{"P":{"Type":"Pass",
    "Parameters":{"v.$":"States.StringToJson($.s)"},"End":true}}})j");
  Harness h;
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ExecutionResult r = h.Run(*sm, Json{{"s", deep}});
  EXPECT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, std::optional<std::string>("States.Runtime")) << r.cause.value_or("");
}

TEST(LimitsTest, ItemReaderRefusesDeeplyNestedItems) {
  std::string deep = "[" + std::string(100000, '[') + std::string(100000, ']') + "]";
  EXPECT_EQ(internal::ParseJsonItems(deep, false, -1, "items.json").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      internal::ParseJsonItems(std::string(100000, '['), true, -1, "items.jsonl").status().code(),
      StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace engage::flow
