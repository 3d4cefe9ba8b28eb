// JSONPath as Amazon States Language uses it (the Jayway dialect AWS Step Functions runs):
// `$` the input, `$$` the context object, `$name` a variable; `.field`, `['field']`,
// `[index]` (negative counts from the end), `[start:end:step]`, `[*]`, `..` (descendants),
// `[a,b]` unions, `[?(@.x > 1 && @.y == 'z')]` filters and a trailing `.length()`.
//
//   ENGAGE_ASSIGN_OR_RETURN(JsonPath p, JsonPath::Parse("$.orders[*].total"));
//   ENGAGE_ASSIGN_OR_RETURN(std::vector<const Json*> hits, p.Select(input));
//
// A path is *definite* when it names at most one node (no wildcard, slice, filter, union or
// descendant step). ASL returns a definite path's value as is and an indefinite path's matches
// as an array (empty when nothing matches).
//
// Evaluation is bounded: descendant steps and filters can make the work and the result grow
// far beyond the document (`$..*` on a deep document copies every subtree once per ancestor),
// so an evaluation stops with kResourceExhausted after kMaxPathWork steps or once its result
// would pass `max_result_bytes` (ASL's 256 KiB payload limit by default), before building it.
//
// Thread-safety: a parsed JsonPath is immutable and safe to share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"

namespace engage::flow {

// AWS's payload limit (256 KiB), the default bound on an evaluation's result.
inline constexpr int64_t kDefaultMaxPathResultBytes = 262144;
// Nodes one evaluation may visit (descendant steps, filters, filter operands' copies).
inline constexpr int64_t kMaxPathWork = 20'000'000;

class JsonPath {
 public:
  enum class Root { kInput, kContext, kVariable };

  // kInvalidArgument naming the path and the offending character on a syntax error.
  static Result<JsonPath> Parse(std::string_view text);

  Root root() const { return root_; }
  // The variable name for Root::kVariable ("x" for "$x.a").
  const std::string& variable() const { return variable_; }
  bool definite() const { return definite_; }
  const std::string& text() const { return text_; }
  // True for the bare root ("$", "$$" or "$x").
  bool is_root() const;

  // The nodes the path selects under `root`, in document order. kResourceExhausted when the
  // evaluation passes kMaxPathWork steps or selects more nodes than a result of
  // `max_result_bytes` can hold (<= 0: no bound on the nodes).
  Result<std::vector<const Json*>> Select(
      const Json& root, int64_t max_result_bytes = kDefaultMaxPathResultBytes) const;

  // ASL evaluation: a definite path yields its single node (NotFound if absent); an
  // indefinite one yields an array of its matches. `.length()` yields a number.
  // kResourceExhausted (building nothing) when an indefinite path's array would be larger
  // than `max_result_bytes` (<= 0: unbounded) or the work passes kMaxPathWork.
  Result<Json> Evaluate(const Json& root,
                        int64_t max_result_bytes = kDefaultMaxPathResultBytes) const;

  // Writes `value` at this (definite, field/index-only) path below `root`, creating objects
  // for missing fields, as ResultPath does. kInvalidArgument when the path cannot be written.
  Status Write(Json& root, Json value) const;

  // Jayway's normalised form of the path, e.g. "$['a'][0]", used in AWS error texts.
  std::string Normalized() const;

  struct Step;

 private:
  Root root_ = Root::kInput;
  std::string variable_;
  std::string text_;
  bool definite_ = true;
  bool length_fn_ = false;
  std::shared_ptr<const std::vector<Step>> steps_;
};

}  // namespace engage::flow
