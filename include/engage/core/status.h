// Status and Result<T>: how every expected failure travels in Engage.
//
// Most failures are expected (a bad row, a missing table, a scan cutoff), so they are returned
// as values rather than thrown. One mapping turns a code into an HTTP status, a process exit code
// and an Amazon States Language error name, so the CLI, the server and pipelines agree.
//
//   Result<Table> t = catalog.Find("events");
//   if (!t.ok()) return t.status();
//   ENGAGE_ASSIGN_OR_RETURN(auto rows, CountRows(*t));
//
// Thread-safety: values; safe to copy between threads.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace engage {

enum class StatusCode {
  kOk = 0,
  kCancelled,
  kUnknown,
  kInvalidArgument,
  kDeadlineExceeded,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kResourceExhausted,
  kFailedPrecondition,
  kAborted,
  kOutOfRange,
  kUnimplemented,
  kInternal,
  kUnavailable,  // retryable
  kDataLoss,
  kUnauthenticated,
};

// Short stable name, e.g. "NOT_FOUND".
std::string_view CodeName(StatusCode code);
// HTTP status a handler answers with for `code` (e.g. kNotFound -> 404).
int HttpStatusFor(StatusCode code);
// Process exit code of the CLI for `code`: 0 for kOk, 2 for usage errors, 1..n otherwise.
int ExitCodeFor(StatusCode code);
// Amazon States Language error name a failed task reports, e.g. "Engage.NotFound";
// kUnavailable maps to "Engage.Unavailable" so Retry rules can match transient errors.
std::string AslErrorNameFor(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NOT_FOUND: table 'x' is not defined" (or "OK").
  std::string ToString() const;
  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status InternalError(std::string message);
Status UnavailableError(std::string message);
Status DataLossError(std::string message);
Status AbortedError(std::string message);
Status UnimplementedError(std::string message);

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> v_;
};

namespace internal {
inline Status AsStatus(const Status& s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace engage

#define ENGAGE_CONCAT_INNER_(a, b) a##b
#define ENGAGE_CONCAT_(a, b) ENGAGE_CONCAT_INNER_(a, b)

// Returns the Status of `expr` (a Status or Result) from the current function if it failed.
#define ENGAGE_RETURN_IF_ERROR(expr)                                      \
  do {                                                                    \
    ::engage::Status engage_status_ = ::engage::internal::AsStatus(expr); \
    if (!engage_status_.ok()) return engage_status_;                      \
  } while (0)

// Evaluates `rexpr` (a Result<T>); on failure returns its Status, else moves the value to `lhs`.
#define ENGAGE_ASSIGN_OR_RETURN(lhs, rexpr) \
  ENGAGE_ASSIGN_OR_RETURN_IMPL_(ENGAGE_CONCAT_(engage_result_, __LINE__), lhs, rexpr)
#define ENGAGE_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                  \
  if (!result.ok()) return result.status();               \
  lhs = std::move(result).value()
