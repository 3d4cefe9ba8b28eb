#include "engage/core/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "testing/temp_dir.h"

namespace engage {
namespace {

// Every code other than kOk, for mapping checks that must hold for all of them.
std::vector<StatusCode> AllErrorCodes() {
  std::vector<StatusCode> out;
  for (int c = static_cast<int>(StatusCode::kCancelled);
       c <= static_cast<int>(StatusCode::kUnauthenticated); ++c) {
    out.push_back(static_cast<StatusCode>(c));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Status

TEST(StatusTest, DefaultConstructedIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, ErrorHelpersSetCodeAndMessage) {
  struct Case {
    Status s;
    StatusCode code;
  } cases[] = {
      {InvalidArgumentError("m"), StatusCode::kInvalidArgument},
      {NotFoundError("m"), StatusCode::kNotFound},
      {AlreadyExistsError("m"), StatusCode::kAlreadyExists},
      {PermissionDeniedError("m"), StatusCode::kPermissionDenied},
      {ResourceExhaustedError("m"), StatusCode::kResourceExhausted},
      {FailedPreconditionError("m"), StatusCode::kFailedPrecondition},
      {InternalError("m"), StatusCode::kInternal},
      {UnavailableError("m"), StatusCode::kUnavailable},
      {DataLossError("m"), StatusCode::kDataLoss},
      {AbortedError("m"), StatusCode::kAborted},
      {UnimplementedError("m"), StatusCode::kUnimplemented},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(c.s.ok()) << CodeName(c.code);
    EXPECT_EQ(c.s.code(), c.code) << CodeName(c.code);
    EXPECT_EQ(c.s.message(), "m") << CodeName(c.code);
  }
}

TEST(StatusTest, ToStringPrefixesTheCodeName) {
  EXPECT_EQ(NotFoundError("table 'x' is not defined").ToString(),
            "NOT_FOUND: table 'x' is not defined");
  EXPECT_EQ(UnavailableError("busy").ToString(), "UNAVAILABLE: busy");
}

TEST(StatusTest, OkToStringIsOk) { EXPECT_EQ(Status::Ok().ToString(), "OK"); }

TEST(StatusTest, WithContextPrefixesTheMessageAndKeepsTheCode) {
  Status s = NotFoundError("no table").WithContext("ingest");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "ingest: no table");
  EXPECT_EQ(s.ToString(), "NOT_FOUND: ingest: no table");
}

TEST(StatusTest, WithContextLeavesOkUnchanged) {
  Status s = Status::Ok().WithContext("ingest");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(NotFoundError("a"), NotFoundError("a"));
  EXPECT_FALSE(NotFoundError("a") == NotFoundError("b"));
  EXPECT_FALSE(NotFoundError("a") == InvalidArgumentError("a"));
  EXPECT_EQ(Status(), Status::Ok());
}

// ---------------------------------------------------------------------------------------------
// Code names and mappings

TEST(CodeMappingTest, CodeNamesAreStableAndDistinct) {
  EXPECT_EQ(CodeName(StatusCode::kOk), "OK");
  EXPECT_EQ(CodeName(StatusCode::kNotFound), "NOT_FOUND");
  EXPECT_EQ(CodeName(StatusCode::kInvalidArgument), "INVALID_ARGUMENT");
  EXPECT_EQ(CodeName(StatusCode::kUnavailable), "UNAVAILABLE");
  EXPECT_EQ(CodeName(StatusCode::kResourceExhausted), "RESOURCE_EXHAUSTED");
  std::set<std::string_view> names{CodeName(StatusCode::kOk)};
  for (StatusCode c : AllErrorCodes()) {
    EXPECT_TRUE(names.insert(CodeName(c)).second) << "duplicate name " << CodeName(c);
  }
}

TEST(CodeMappingTest, OkIsHttp200AndExit0) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kOk), 200);
  EXPECT_EQ(ExitCodeFor(StatusCode::kOk), 0);
  EXPECT_EQ(AslErrorNameFor(StatusCode::kOk), "");
}

TEST(CodeMappingTest, NotFoundIs404AndExit3) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(ExitCodeFor(StatusCode::kNotFound), 3);
  EXPECT_EQ(AslErrorNameFor(StatusCode::kNotFound), "Engage.NotFound");
}

TEST(CodeMappingTest, InvalidArgumentIs400AndExit2) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(ExitCodeFor(StatusCode::kInvalidArgument), 2);
  EXPECT_EQ(AslErrorNameFor(StatusCode::kInvalidArgument), "Engage.InvalidArgument");
}

TEST(CodeMappingTest, UnavailableIs503AndRetryableAslName) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(ExitCodeFor(StatusCode::kUnavailable), 8);
  EXPECT_EQ(AslErrorNameFor(StatusCode::kUnavailable), "Engage.Unavailable");
}

TEST(CodeMappingTest, DeadlineExceededIsStatesTimeout) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(AslErrorNameFor(StatusCode::kDeadlineExceeded), "States.Timeout");
}

TEST(CodeMappingTest, HttpStatusesForClientErrors) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
}

// The exit codes README.md documents for the CLI.
TEST(CodeMappingTest, ExitCodesMatchTheReadme) {
  EXPECT_EQ(ExitCodeFor(StatusCode::kOutOfRange), 2);
  EXPECT_EQ(ExitCodeFor(StatusCode::kAlreadyExists), 4);
  EXPECT_EQ(ExitCodeFor(StatusCode::kPermissionDenied), 5);
  EXPECT_EQ(ExitCodeFor(StatusCode::kResourceExhausted), 6);
  EXPECT_EQ(ExitCodeFor(StatusCode::kFailedPrecondition), 7);
  EXPECT_EQ(ExitCodeFor(StatusCode::kUnavailable), 8);
  EXPECT_EQ(ExitCodeFor(StatusCode::kInternal), 1);
  EXPECT_EQ(ExitCodeFor(StatusCode::kUnknown), 1);
}

TEST(CodeMappingTest, EveryErrorCodeMapsToAnErrorEverywhere) {
  for (StatusCode c : AllErrorCodes()) {
    EXPECT_GE(HttpStatusFor(c), 400) << CodeName(c);
    EXPECT_LT(HttpStatusFor(c), 600) << CodeName(c);
    EXPECT_NE(ExitCodeFor(c), 0) << CodeName(c);
    EXPECT_FALSE(AslErrorNameFor(c).empty()) << CodeName(c);
  }
}

// ---------------------------------------------------------------------------------------------
// Result<T>

TEST(ResultTest, HoldsAValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
}

TEST(ResultTest, HoldsAnErrorStatus) {
  Result<int> r = NotFoundError("gone");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status(), NotFoundError("gone"));
}

TEST(ResultTest, ArrowReachesTheValuesMembers) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
  r->push_back('d');
  EXPECT_EQ(*r, "abcd");
}

TEST(ResultTest, MoveOnlyValueCanBeMovedOut) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

// ---------------------------------------------------------------------------------------------
// Propagation macros

Result<int> Half(int x) {
  if (x % 2) return InvalidArgumentError("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x, int* steps) {
  ENGAGE_ASSIGN_OR_RETURN(int h, Half(x));
  ++*steps;
  ENGAGE_ASSIGN_OR_RETURN(int q, Half(h));
  ++*steps;
  return q;
}

Status CheckEven(int x, int* after) {
  ENGAGE_RETURN_IF_ERROR(Half(x));
  ++*after;
  return Status::Ok();
}

Status CheckStatuses(const Status& first, const Status& second, int* reached) {
  ENGAGE_RETURN_IF_ERROR(first);
  ++*reached;
  ENGAGE_RETURN_IF_ERROR(second);
  ++*reached;
  return Status::Ok();
}

TEST(MacrosTest, AssignOrReturnAssignsValues) {
  int steps = 0;
  auto r = Quarter(8, &steps);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 2);
  EXPECT_EQ(steps, 2);
}

TEST(MacrosTest, AssignOrReturnPropagatesTheFirstErrorAndStops) {
  int steps = 0;
  auto r = Quarter(6, &steps);  // 6 -> 3, then 3 is odd
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_EQ(steps, 1);

  steps = 0;
  auto r2 = Quarter(5, &steps);
  EXPECT_EQ(r2.status().message(), "odd: 5");
  EXPECT_EQ(steps, 0);
}

TEST(MacrosTest, AssignOrReturnMovesMoveOnlyValues) {
  auto make = [](bool ok) -> Result<std::unique_ptr<int>> {
    if (!ok) return UnavailableError("later");
    return std::make_unique<int>(5);
  };
  auto use = [&](bool ok) -> Result<int> {
    ENGAGE_ASSIGN_OR_RETURN(std::unique_ptr<int> p, make(ok));
    return *p + 1;
  };
  EXPECT_EQ(*use(true), 6);
  EXPECT_EQ(use(false).status().code(), StatusCode::kUnavailable);
}

TEST(MacrosTest, ReturnIfErrorPassesOkThroughForResults) {
  int after = 0;
  EXPECT_TRUE(CheckEven(4, &after).ok());
  EXPECT_EQ(after, 1);
}

TEST(MacrosTest, ReturnIfErrorReturnsTheErrorOfAResult) {
  int after = 0;
  Status s = CheckEven(3, &after);
  EXPECT_EQ(s, InvalidArgumentError("odd: 3"));
  EXPECT_EQ(after, 0);
}

TEST(MacrosTest, ReturnIfErrorReturnsTheFirstFailingStatus) {
  int reached = 0;
  EXPECT_TRUE(CheckStatuses(Status::Ok(), Status::Ok(), &reached).ok());
  EXPECT_EQ(reached, 2);

  reached = 0;
  EXPECT_EQ(CheckStatuses(Status::Ok(), NotFoundError("b"), &reached), NotFoundError("b"));
  EXPECT_EQ(reached, 1);

  reached = 0;
  EXPECT_EQ(CheckStatuses(DataLossError("a"), NotFoundError("b"), &reached), DataLossError("a"));
  EXPECT_EQ(reached, 0);
}

TEST(MacrosTest, ReturnIfErrorEvaluatesItsExpressionOnce) {
  int calls = 0;
  auto f = [&]() -> Status {
    ENGAGE_RETURN_IF_ERROR(([&] {
      ++calls;
      return Status::Ok();
    })());
    return Status::Ok();
  };
  EXPECT_TRUE(f().ok());
  EXPECT_EQ(calls, 1);
}

TEST(MacrosTest, TestingMacrosAcceptStatusAndResult) {
  EXPECT_STATUS_CODE(NotFoundError("x"), StatusCode::kNotFound);
  EXPECT_STATUS_CODE(Result<int>(AbortedError("x")), StatusCode::kAborted);
  EXPECT_OK(Result<int>(1));
  ASSERT_OK(Status::Ok());
}

}  // namespace
}  // namespace engage
