// JSONPath as Amazon States Language uses it (the Jayway dialect AWS Step Functions runs):
// `$` the input, `$$` the context object, `$name` a variable; `.field`, `['field']`,
// `[index]` (negative counts from the end), `[start:end:step]`, `[*]`, `..` (descendants),
// `[a,b]` unions, `[?(@.x > 1 && @.y == 'z')]` filters and a trailing `.length()`.
//
//   ENGAGE_ASSIGN_OR_RETURN(JsonPath p, JsonPath::Parse("$.orders[*].total"));
//   std::vector<const Json*> hits = p.Select(input);
//
// A path is *definite* when it names at most one node (no wildcard, slice, filter, union or
// descendant step). ASL returns a definite path's value as is and an indefinite path's matches
// as an array (empty when nothing matches).
//
// Thread-safety: a parsed JsonPath is immutable and safe to share.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"

namespace engage::flow {

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

  // The nodes the path selects under `root`, in document order.
  std::vector<const Json*> Select(const Json& root) const;

  // ASL evaluation: a definite path yields its single node (NotFound if absent); an
  // indefinite one yields an array of its matches. `.length()` yields a number.
  Result<Json> Evaluate(const Json& root) const;

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
