// The JSONata tree-walking evaluator and the interface between it and the function library.
//
// One Evaluator runs one Evaluate call. Variables live in Frames (a block, a lambda call or a
// tuple of focus/index/parent bindings opens one). Function values are lambdas (closures over a
// Frame), built-ins, partial applications, `~>` chains, regex matchers and transforms. Tail calls
// in lambda bodies return a "thunk" that Apply unrolls in a loop, so tail recursion does not grow
// the C++ stack; every other nested lambda call counts against EvalOptions::max_depth.
//
// Thread-safety: an Evaluator and its Values belong to one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engage/jsonata/jsonata.h"
#include "jsonata/ast_internal.h"
#include "jsonata/value_internal.h"

namespace engage::jsonata::internal {

struct Frame {
  std::shared_ptr<Frame> parent;
  std::vector<std::pair<std::string, Value>> vars;

  void Bind(std::string_view name, Value v) {
    for (auto& [k, val] : vars) {
      if (k == name) {
        val = std::move(v);
        return;
      }
    }
    vars.emplace_back(std::string(name), std::move(v));
  }
  const Value* Lookup(std::string_view name) const {
    for (const Frame* f = this; f != nullptr; f = f->parent.get()) {
      for (const auto& [k, val] : f->vars) {
        if (k == name) return &val;
      }
    }
    return nullptr;
  }
};
using Env = std::shared_ptr<Frame>;

class Evaluator;

using BuiltinFn = Value (*)(Evaluator& ev, std::vector<Value>& args, const Value& input,
                            const Env& env);

struct Builtin {
  std::string name;
  std::string signature_text;
  BuiltinFn fn = nullptr;
  int arity = 0;  // parameters a higher-order function passes to it
  std::shared_ptr<const Signature> signature;
  Value value;  // the function value handed out for $name
};

// The built-in named `name` ("sum" for $sum), or nullptr. AWS additions only when `aws`.
const Builtin* FindBuiltin(std::string_view name, bool aws);

struct Function {
  enum class Kind { kLambda, kBuiltin, kPartial, kRegex, kChain, kTransform, kThunk };
  Kind kind = Kind::kLambda;
  const Node* node = nullptr;  // lambda / transform / thunk call node
  Env env;
  Value input;
  const Builtin* builtin = nullptr;
  Value base;                     // partial: the function; chain: first function
  Value second;                   // chain: second function
  std::vector<Value> args;        // partial: bound arguments
  std::vector<bool> placeholder;  // partial: which arguments are '?'
  std::shared_ptr<const RegexLiteral> regex;

  int Arity() const;
};

// Stack budgets at or above this run on the dedicated big-stack thread.
constexpr size_t kBigStackThreshold = 128ull * 1024 * 1024;
// Estimated stack std::regex needs to match a subject of `n` bytes.
inline size_t RegexStackBytes(size_t n) { return 64 * 1024 + n * 512; }

// Internal signal: the C++ stack budget of this thread is used up (retried on a bigger stack).
struct StackExhausted {};

// Resource guards beyond max_depth and time_limit_ms. A value may be built from shared parts (an
// array holding the same array twice), so a few steps can make something huge: a tail-recursive
// function doubling an array or string, or a result that shares sub-arrays and expands when
// copied out. Limits on single values stop that with U1001 before memory runs out.
//
// The most items an array or sequence may hold: JSONata's own limit for ranges (D2014).
constexpr size_t kMaxItems = 10'000'000;
// The longest string (bytes) an evaluation may build.
constexpr size_t kMaxStringBytes = size_t{1} << 27;
// The most JSON nodes a result may expand to.
constexpr size_t kMaxResultNodes = 2 * kMaxItems;
// Bulk work done inside one evaluation step (items copied or compared; a unit of string is
// kStringBytesPerUnit bytes) counts towards the time guard like steps do, so a big copy or a
// quadratic loop is stopped by EvalOptions::time_limit_ms as well. A no-op when no evaluation
// runs on this thread.
constexpr size_t kStringBytesPerUnit = 16;
void ChargeWork(size_t units);
// U1001 when an array of `items` items or a string of `bytes` bytes would exceed the limits.
void CheckItems(size_t items);
void CheckStringBytes(size_t bytes);

// A position in a regex subject that charges character reads as work: std::regex backtracks
// without bound ((a|a)*$ on "aaaa...!" is exponential), and reading the subject through this
// iterator puts its matching under the time guard. Random access, so that match positions stay
// O(1).
class ChargedIter {
 public:
  using iterator_category = std::random_access_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  ChargedIter() = default;
  ChargedIter(const char* p, uint64_t* reads) : p_(p), reads_(reads) {}

  reference operator*() const {
    if ((++*reads_ & (kReadsPerCharge - 1)) == 0) ChargeWork(kReadsPerCharge / kStringBytesPerUnit);
    return *p_;
  }
  reference operator[](difference_type n) const { return *(*this + n); }
  ChargedIter& operator++() {
    ++p_;
    return *this;
  }
  ChargedIter operator++(int) {
    ChargedIter t = *this;
    ++p_;
    return t;
  }
  ChargedIter& operator--() {
    --p_;
    return *this;
  }
  ChargedIter operator--(int) {
    ChargedIter t = *this;
    --p_;
    return t;
  }
  ChargedIter& operator+=(difference_type n) {
    p_ += n;
    return *this;
  }
  ChargedIter& operator-=(difference_type n) {
    p_ -= n;
    return *this;
  }
  friend ChargedIter operator+(ChargedIter it, difference_type n) { return it += n; }
  friend ChargedIter operator+(difference_type n, ChargedIter it) { return it += n; }
  friend ChargedIter operator-(ChargedIter it, difference_type n) { return it -= n; }
  friend difference_type operator-(const ChargedIter& a, const ChargedIter& b) {
    return a.p_ - b.p_;
  }
  friend bool operator==(const ChargedIter& a, const ChargedIter& b) { return a.p_ == b.p_; }
  friend auto operator<=>(const ChargedIter& a, const ChargedIter& b) { return a.p_ <=> b.p_; }

 private:
  static constexpr uint64_t kReadsPerCharge = 16384;  // a power of two
  const char* p_ = nullptr;
  uint64_t* reads_ = nullptr;
};
using ChargedMatch = std::match_results<ChargedIter>;

class Evaluator {
 public:
  Evaluator(const EvalOptions& options, uintptr_t stack_base, size_t stack_budget);
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // The evaluator running on this thread, or nullptr (see ChargeWork).
  static Evaluator* Current();
  // Counts `units` of work; checks the time guard every kStepsPerTimeCheck units.
  void Charge(uint64_t units);

  Value Eval(const Node* expr, const Value& input, const Env& env);
  // Calls `proc` with `args` (JSONata's apply, including the tail-call trampoline).
  Value Apply(const Value& proc, std::vector<Value> args, const Value& input, const Env& env);
  // Calls a function passed to a higher-order built-in with as many of (a, b, c) as it takes.
  Value CallHof(const Value& fn, const Value& a, const Value& b, const Value& c, const Env& env);

  // Validates arguments against a signature (T0410, T0411, T0412); may insert the context.
  std::vector<Value> Validate(const Signature& sig, std::vector<Value>& args, const Value& context);

  // Parses and evaluates `text` for $eval.
  Value EvalText(const std::string& text, const Value& input, const Env& env);

  void RegisterCycleFrame(const Env& env) { cycle_frames_.push_back(env); }
  // Clears frames that may be part of a reference cycle (closures bound in their own frame).
  void BreakCycles();

  // std::regex matches recursively (stack grows with the subject length). Makes sure `bytes`
  // of stack are available: else moves evaluation to a big stack, or fails with U1001 there.
  void ReserveStack(size_t bytes);

  const EvalOptions& options() const { return options_; }
  int64_t now_millis() const { return now_millis_; }
  uint64_t NextRandom();

 private:
  void CheckGuards();
  Value EvalPath(const Node* expr, const Value& input, const Env& env);
  Value EvalStep(const Node* step, const Value& input, const Env& env, bool last_step);
  Value EvalTupleStep(const Node* step, const Value& input, const Value& tuples, const Env& env);
  Value EvalStages(const std::vector<Stage>& stages, Value input, const Env& env);
  Value EvalFilter(const Node* pred, const Value& input, const Env& env);
  Value EvalSort(const Node* sort, const Value& input, const Env& env);
  Value EvalGroup(const std::vector<std::pair<NodePtr, NodePtr>>& pairs, const Value& input,
                  const Env& env);
  Value EvalBinary(const Node* expr, const Value& input, const Env& env);
  Value EvalArray(const Node* expr, const Value& input, const Env& env);
  Value EvalBlock(const Node* expr, const Value& input, const Env& env);
  Value EvalFunctionCall(const Node* expr, const Value& input, const Env& env,
                         const Value* apply_to);
  Value EvalPartial(const Node* expr, const Value& input, const Env& env);
  Value EvalApply(const Node* expr, const Value& input, const Env& env);
  Value EvalVariable(const Node* expr, const Value& input, const Env& env);
  Value ApplyInner(const Value& proc, std::vector<Value>& args, const Value& input, const Env& env);
  Value ApplyTransform(const Function& f, const Value& obj, const Env& env);
  Value ApplyRegex(const Function& f, const std::vector<Value>& args);

  const EvalOptions& options_;
  const Clock* clock_;
  int64_t start_micros_ = 0;
  int64_t now_millis_ = 0;
  uintptr_t stack_base_ = 0;
  size_t stack_budget_ = 0;
  uint64_t steps_ = 0;  // work done so far (evaluation steps + charged units)
  uint64_t next_time_check_ = 0;
  Evaluator* outer_ = nullptr;  // the evaluator this one shadows on this thread
  int depth_ = 0;
  uint64_t rng_state_ = 0;
  std::vector<std::weak_ptr<Frame>> cycle_frames_;
  std::vector<std::shared_ptr<Node>> eval_asts_;
};

// Tuple frames: bind every entry of a tuple object in a new frame under `env`.
Env FrameFromTuple(const Env& env, const Value& tuple);

// JSONata semantics shared by the evaluator and the library.
Value Truthy(const Value& v);  // $boolean: undefined stays undefined
bool Boolize(const Value& v);  // undefined -> false
bool DeepEqual(const Value& a, const Value& b);
Value LookupField(const Value& input, std::string_view key);
Value AppendValues(const Value& a, const Value& b);  // $append
// JSON.stringify as $string does it (numbers to 15 significant digits, functions as "").
std::string Stringify(const Value& v, bool pretty);
// $string of any defined value.
std::string ToStringValue(const Value& v);
// Number check that reports non-finite values as D1001.
bool IsNumeric(const Value& v);
Value CloneValue(const Value& v);
char TypeSymbol(const Value& v);
Value TupleGet(const Value& tuple, std::string_view key);
// Stable merge sort; `greater(a, b)` true means a goes after b.
void SortValues(std::vector<Value>& v,
                const std::function<bool(const Value&, const Value&)>& greater);

}  // namespace engage::jsonata::internal
