// JSONata: a native C++ implementation of the JSONata query and transformation language
// (https://docs.jsonata.org), as used by Amazon States Language (`QueryLanguage: "JSONata"`).
//
//   auto expr = jsonata::Expression::Compile("$sum(orders.(price * qty))");
//   if (!expr.ok()) return expr.error();          // e.g. {"S0202", "Expected ..."}
//   auto out = expr->Evaluate(&input, {{"limit", 10}});
//   if (!out.ok()) ...                            // e.g. {"T2001", "..."}
//   if (!out->has_value()) ...                    // the expression yielded no value (undefined)
//
// Values cross the API as engage::Json. Numbers come back as integers when they are integral
// and within +/-2^53, else as doubles (JSONata numbers are doubles; this matches what
// JSON.stringify prints). Errors carry JSONata's error codes (S0xxx syntax, T0xxx/T1xxx/T2xxx
// type, D1xxx/D2xxx/D3xxx dynamic, U1001 depth/time guard) rather than engage::Status, because
// callers (the ASL engine, the conformance runner) need the code itself.
//
// Thread-safety: a compiled Expression is immutable; Evaluate may run concurrently on one
// Expression from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "engage/core/clock.h"
#include "engage/core/json.h"

namespace engage::jsonata {

// A compile or evaluation failure.
struct Error {
  std::string code;       // JSONata error code, e.g. "T2001"
  std::string message;    // human-readable text (jsonata-js wording where practical)
  int64_t position = -1;  // character offset in the expression, -1 when unknown
  std::string token;      // offending token or function name, when known
};

// A value or the Error explaining why there is none.
template <typename T>
class [[nodiscard]] Outcome {
 public:
  Outcome(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Outcome(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design
  bool ok() const { return v_.index() == 0; }
  const Error& error() const { return std::get<Error>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> v_;
};

// Variables bound before evaluation: key "x" is read as $x.
using Bindings = std::map<std::string, Json, std::less<>>;

struct EvalOptions {
  // Guard against runaway evaluation: exceeding either fails with U1001.
  // Tail calls do not count. An evaluation that outgrows the calling thread's stack is re-run
  // (it has no side effects) on a helper thread with a large reserved stack.
  int max_depth = 1000;           // nested (non-tail) function-call depth
  int64_t time_limit_ms = 10000;  // wall time for one Evaluate call; <= 0 means none
  // Source of $now() and $millis(); nullptr means SystemClock::Default().
  const Clock* clock = nullptr;
  // Adds the functions AWS Step Functions defines on top of JSONata: $partition, $range,
  // $hash, $random (optionally seeded), $uuid, $parse.
  bool aws_functions = false;
  // A function is not a JSON value: with false, an expression yielding one fails with code
  // "F0001" ("returned a function") instead of yielding "" as JSON.stringify would.
  bool allow_function_result = true;
  // A result whose JSON text would be longer than this fails with kResultTooLargeCode before
  // it is converted to JSON (a sequence of shared subtrees, as `**` yields, grows when copied
  // out). <= 0: no bound (kMaxResultNodes still applies).
  int64_t max_result_bytes = 0;
};

// The error code of a result longer than EvalOptions::max_result_bytes.
inline constexpr char kResultTooLargeCode[] = "U1002";

class Expression {
 public:
  // Parses `text`. Syntax errors use JSONata's S0xxx codes.
  static Outcome<Expression> Compile(std::string_view text);

  // Evaluates against `input` (nullptr means no input at all, JSONata's `undefined`; a Json
  // null is the JSON value null). Returns std::nullopt when the result is undefined.
  Outcome<std::optional<Json>> Evaluate(const Json* input, const Bindings& bindings = {},
                                        const EvalOptions& options = {}) const;

  // The source text this expression was compiled from.
  const std::string& text() const;

  struct Impl;  // the parsed tree; defined in src/jsonata/

 private:
  explicit Expression(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace engage::jsonata
