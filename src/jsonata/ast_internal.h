// Internal syntax tree of a compiled JSONata expression, the parser entry point, function
// signatures and the private exception type used for JSONata errors inside the engine.
//
// The parser produces the tree in two passes, as JSONata defines it: a Pratt parser builds the
// raw operator tree, then a rewriting pass turns `.` chains into path nodes with steps, attaches
// predicates/stages, focus (`@`), index (`#`) and group-by (`{}`) to steps, resolves the parent
// operator (`%`) to the step that binds the ancestor, and marks tail calls in lambda bodies.
//
// Thread-safety: a finished tree is immutable and may be evaluated from several threads.
#pragma once

#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engage/jsonata/jsonata.h"

namespace engage::jsonata::internal {

// A JSONata error thrown inside the engine; never escapes Compile/Evaluate.
struct JsonataError {
  std::string code;
  std::string message;
  int64_t position = -1;
  std::string token;
};

[[noreturn]] void Throw(std::string code, std::string message = "", int64_t position = -1,
                        std::string token = "");

// Parsed function signature such as "<s-nn?:s>".
//
// jsonata-js checks arguments by matching their type symbols (one letter per argument, 'm' for
// undefined) against a regular expression ^(p1)(p2)...$ built from the parameters. Each
// parameter is a symbol class with an optional quantifier, so the match is computed directly
// (MatchSignature) with the same outcome, in time linear in the number of arguments: a
// backtracking regex engine takes exponential time on signatures with several '?' or '+'.
struct Signature {
  struct Param {
    char type = 0;         // s n b l o a f j x, or '(' for a choice
    std::string regex;     // symbol-class regex of this parameter ("[sm]", "[asnblfom]+", ...)
    std::string subtype;   // for a<..> / f<..>
    bool context = false;  // '-' : use the context value when omitted
    std::string context_regex;
    // `regex` taken apart: the symbols of its class, how many arguments it takes and whether
    // it takes as few as possible ('??', '+?'). Quantifiers after the second are ignored.
    std::string symbols;
    size_t min_count = 1;
    size_t max_count = 1;  // SIZE_MAX for '+'
    bool lazy = false;
    std::string context_symbols;  // the class of context_regex
  };
  std::vector<Param> params;
  std::string text;
};
// Throws S0401/S0402 on a malformed signature.
std::shared_ptr<const Signature> ParseSignature(std::string_view text);

// How many arguments each of the first `k` parameters takes, when their type symbols
// (`supplied`) fit ^(p1)...(pk)$ (or ^(p1)...(pk) when !anchored): the choice a backtracking
// regex engine makes (greedy counts longest first, lazy shortest first). nullopt: no fit.
std::optional<std::vector<size_t>> MatchSignature(const Signature& sig, size_t k,
                                                  std::string_view supplied, bool anchored);
// How many leading arguments the longest fitting prefix of the parameters accounts for (to name
// the first argument that does not fit, as jsonata-js's T0410 does).
size_t SignatureFitLength(const Signature& sig, std::string_view supplied);

// A compiled regular expression literal.
struct RegexLiteral {
  std::string source;
  std::string flags;
  std::regex re;
};

struct Slot {
  std::string label;
  int level = 1;
  int index = 0;
};

enum class NodeType {
  kPath,
  kBinary,
  kNegate,
  kArrayCons,
  kObjectCons,
  kName,
  kString,
  kNumber,
  kValue,  // true / false / null
  kWildcard,
  kDescendant,
  kParent,
  kCondition,
  kCoalesce,  // a ?? b
  kDefault,   // a ?: b
  kBlock,
  kBind,
  kRegex,
  kFunction,
  kPartial,
  kVariable,
  kLambda,
  kApply,
  kTransform,
  kSort,
  kPlaceholder,   // '?' in a partial application
  kOperator,      // raw operator token used as a term (and/or/in become names)
  kGroupRaw,      // raw parse: lhs{pairs}
  kSortRaw,       // raw parse: lhs^(terms)
  kPredicateRaw,  // raw parse: lhs[rhs]
  kFocusRaw,      // raw parse: lhs@$v
  kIndexRaw,      // raw parse: lhs#$i
  kDotRaw,        // raw parse: lhs.rhs
  kEnd,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Stage {
  bool is_index = false;  // #$i after a predicate
  NodePtr expr;           // filter expression
  std::string index_var;
  int64_t position = -1;
};

struct SortTerm {
  bool descending = false;
  NodePtr expr;
};

struct GroupSpec {
  std::vector<std::pair<NodePtr, NodePtr>> pairs;
  int64_t position = -1;
};

struct Node {
  NodeType type = NodeType::kEnd;
  int64_t position = -1;
  std::string value;  // name, string literal, variable name, operator
  double number = 0;
  int literal = 0;  // kValue: 0 null, 1 true, 2 false

  NodePtr lhs, rhs, third;     // binary operands; condition (cond/then/else); transform
  std::vector<NodePtr> steps;  // path steps
  std::vector<NodePtr> items;  // array items, block expressions, call arguments
  std::vector<std::pair<NodePtr, NodePtr>> pairs;  // object constructor
  std::vector<SortTerm> terms;                     // sort
  std::unique_ptr<GroupSpec> group;
  std::vector<Stage> predicate;  // filters on a non-path expression
  std::vector<Stage> stages;     // filters/index on a path step
  NodePtr procedure;             // call target

  // Lambda.
  std::vector<std::string> params;
  std::shared_ptr<const Signature> signature;
  NodePtr body;
  bool thunk = false;

  std::shared_ptr<const RegexLiteral> regex;

  // Path / step flags.
  bool keep_array = false;
  bool keep_singleton_array = false;
  bool cons_array = false;
  bool tuple = false;
  std::string focus;  // @$focus variable name (without '$')
  std::string index;  // #$index variable name
  bool has_focus = false;
  bool has_index = false;
  std::shared_ptr<Slot> ancestor;
  std::shared_ptr<Slot> slot;  // kParent
  std::vector<std::shared_ptr<Slot>> seeking_parent;
};

// Parses and post-processes `text`. Throws JsonataError (S0xxx) on syntax errors.
NodePtr Parse(std::string_view text);

}  // namespace engage::jsonata::internal
