// ASL intrinsic functions (`States.Format(...)`, `States.Array(...)`, ... in JSONPath mode).
//
//   ENGAGE_ASSIGN_OR_RETURN(Intrinsic f, Intrinsic::Parse("States.Format('Hi {}', $.name)"));
//   ENGAGE_ASSIGN_OR_RETURN(Json v, f.Evaluate(resolve_path));
//
// Arguments are string literals in single quotes (with \' \{ \} \\ escapes), numbers, true,
// false, null, JSONPaths ($..., $$..., $var...) and nested intrinsic calls. Parse checks the
// function name and argument count; Evaluate checks types and values. Evaluate errors are
// kInvalidArgument with AWS-like wording; the engine reports them as States.IntrinsicFailure.
//
// Thread-safety: a parsed Intrinsic is immutable and safe to share.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/flow/jsonpath.h"

namespace engage::flow {

// Resolves a JSONPath argument to its value (the engine knows input, context and variables).
using PathResolver = std::function<Result<Json>(const JsonPath&)>;

class Intrinsic {
 public:
  // True when `text` looks like an intrinsic call ("States.Xxx(").
  static bool Looks(std::string_view text);
  // kInvalidArgument naming the function and position on syntax errors, unknown functions
  // or a wrong number of arguments.
  static Result<Intrinsic> Parse(std::string_view text);

  // kResourceExhausted when a call's result would pass `max_result_bytes` (<= 0: unbounded);
  // kOutOfRange when States.StringToJson meets text nested deeper than kMaxJsonDepth; the
  // resolver's errors as they are; kInvalidArgument for bad arguments.
  Result<Json> Evaluate(const PathResolver& resolve, int64_t max_result_bytes = 262144) const;

  const std::string& text() const { return text_; }

  struct Call;

 private:
  std::string text_;
  std::shared_ptr<const Call> call_;
};

// Renders a value the way States.Format does: strings raw, objects as {k=v, ...}.
std::string FormatIntrinsicArg(const Json& v);

}  // namespace engage::flow
