// The JSONata evaluator (see evaluator_internal.h) and the public Expression API.

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>

#include "engage/jsonata/jsonata.h"
#include "jsonata/evaluator_internal.h"
#include "jsonata/text_internal.h"

namespace engage::jsonata {

struct Expression::Impl {
  std::string text;
  internal::NodePtr root;
};

namespace internal {

namespace {

inline uintptr_t StackPointer() { return reinterpret_cast<uintptr_t>(__builtin_frame_address(0)); }

// The time guard measures real elapsed time even when a fake clock feeds $now()/$millis(), so
// a runaway expression stops in tests too.
int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Value UnwrapOuter(const Value& v) {
  if (v.is_array() && v.arr().outer_wrapper && !v.arr().empty()) return v.arr()[0];
  return v;
}

// A sequence holding one value (possibly undefined), as JSONata's createSequence(x).
Value SequenceOf(const Value& v) { return MakeSequence({v}); }

// Work units between two reads of the clock for the time guard.
constexpr uint64_t kStepsPerTimeCheck = 1024;

thread_local Evaluator* current_evaluator = nullptr;

}  // namespace

void ChargeWork(size_t units) {
  if (Evaluator* ev = Evaluator::Current()) ev->Charge(units);
}

void CheckItems(size_t items) {
  if (items > kMaxItems) {
    Throw("U1001",
          "Result too large: an array may hold at most " + std::to_string(kMaxItems) + " items");
  }
}

void CheckStringBytes(size_t bytes) {
  if (bytes > kMaxStringBytes) {
    Throw("U1001", "Result too large: a string may hold at most " +
                       std::to_string(kMaxStringBytes) + " bytes");
  }
}

// ---------------------------------------------------------------- shared semantics

bool IsNumeric(const Value& v) {
  if (!v.is_number()) return false;
  double d = v.num();
  if (std::isnan(d)) return false;
  if (!std::isfinite(d)) Throw("D1001", "Number out of range");
  return true;
}

Value Truthy(const Value& arg) {
  switch (arg.type()) {
    case VType::kUndefined:
      return Value();
    case VType::kArray: {
      auto& items = arg.arr().items();
      if (items.size() == 1) return Truthy(items[0]);
      for (const auto& it : items) {
        if (Boolize(it)) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    case VType::kString:
      return Value::Bool(!arg.str().empty());
    case VType::kNumber:
      return Value::Bool(!std::isnan(arg.num()) && arg.num() != 0);
    case VType::kObject:
      return Value::Bool(arg.obj().size() > 0);
    case VType::kBool:
      return Value::Bool(arg.boolean());
    default:
      return Value::Bool(false);
  }
}

bool Boolize(const Value& v) {
  Value b = Truthy(v);
  return b.defined() && b.boolean();
}

bool DeepEqual(const Value& a, const Value& b) {
  ChargeWork(1);
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case VType::kUndefined:
    case VType::kNull:
      return true;
    case VType::kBool:
      return a.boolean() == b.boolean();
    case VType::kNumber:
      return a.num() == b.num();
    case VType::kString:
      return a.str() == b.str();
    case VType::kArray: {
      auto& x = a.arr().items();
      auto& y = b.arr().items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!DeepEqual(x[i], y[i])) return false;
      }
      return true;
    }
    case VType::kObject: {
      auto& x = a.obj();
      auto& y = b.obj();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries()) {
        const Value* o = y.Get(k);
        if (o == nullptr || !DeepEqual(v, *o)) return false;
      }
      return true;
    }
    case VType::kFunction:
      return a.identity() == b.identity();
  }
  return false;
}

Value LookupField(const Value& input, std::string_view key) {
  if (input.is_array()) {
    Value result = MakeSequence();
    auto& out = result.arr().items();
    for (const auto& item : input.arr().items()) {
      Value res = LookupField(item, key);
      if (res.undefined()) continue;
      if (res.is_array()) {
        auto& ri = res.arr().items();
        CheckItems(out.size() + ri.size());
        ChargeWork(ri.size());
        out.insert(out.end(), ri.begin(), ri.end());
      } else {
        out.push_back(std::move(res));
      }
    }
    return result;
  }
  if (input.is_object()) {
    const Value* v = input.obj().Get(key);
    if (v != nullptr) return *v;
  }
  return Value();
}

Value AppendValues(const Value& a, const Value& b) {
  if (a.undefined()) return b;
  if (b.undefined()) return a;
  size_t total = (a.is_array() ? a.arr().size() : 1) + (b.is_array() ? b.arr().size() : 1);
  CheckItems(total);
  ChargeWork(total);
  std::vector<Value> out;
  if (a.is_array()) {
    out = a.arr().items();
  } else {
    out.push_back(a);
  }
  if (b.is_array()) {
    auto& bi = b.arr().items();
    out.insert(out.end(), bi.begin(), bi.end());
  } else {
    out.push_back(b);
  }
  return MakeArray(std::move(out));
}

Value CloneValue(const Value& v) {
  ChargeWork(1);
  if (v.is_array()) {
    auto a = std::make_shared<Array>();
    for (const auto& item : v.arr().items()) a->items().push_back(CloneValue(item));
    a->sequence = v.arr().sequence;
    return Value::FromArray(std::move(a));
  }
  if (v.is_object()) {
    auto o = std::make_shared<Object>();
    for (const auto& [k, item] : v.obj().entries()) o->Set(k, CloneValue(item));
    return Value::FromObject(std::move(o));
  }
  return v;
}

char TypeSymbol(const Value& v) {
  switch (v.type()) {
    case VType::kFunction:
      return 'f';
    case VType::kString:
      return 's';
    case VType::kNumber:
      return 'n';
    case VType::kBool:
      return 'b';
    case VType::kNull:
      return 'l';
    case VType::kArray:
      return 'a';
    case VType::kObject:
      return 'o';
    default:
      return 'm';
  }
}

Value TupleGet(const Value& tuple, std::string_view key) {
  if (!tuple.is_object()) return Value();
  const Value* v = tuple.obj().Get(key);
  return v ? *v : Value();
}

Env FrameFromTuple(const Env& env, const Value& tuple) {
  auto frame = std::make_shared<Frame>();
  frame->parent = env;
  if (tuple.is_object()) {
    for (const auto& [k, v] : tuple.obj().entries()) frame->vars.emplace_back(k, v);
  }
  return frame;
}

int Function::Arity() const {
  switch (kind) {
    case Kind::kLambda:
      return static_cast<int>(node->params.size());
    case Kind::kBuiltin:
      return builtin->arity;
    case Kind::kPartial: {
      int n = 0;
      for (bool p : placeholder) n += p ? 1 : 0;
      return n;
    }
    default:
      return 1;
  }
}

// ---------------------------------------------------------------- evaluator

Evaluator::Evaluator(const EvalOptions& options, uintptr_t stack_base, size_t stack_budget)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : &SystemClock::Default()),
      stack_base_(stack_base),
      stack_budget_(stack_budget) {
  start_micros_ = SteadyMicros();
  now_millis_ = clock_->NowMicros() / 1000;
  rng_state_ = static_cast<uint64_t>(clock_->NowMicros()) * 0x9E3779B97F4A7C15ULL + 1;
  next_time_check_ = kStepsPerTimeCheck;
  outer_ = current_evaluator;
  current_evaluator = this;
}

Evaluator::~Evaluator() { current_evaluator = outer_; }

Evaluator* Evaluator::Current() { return current_evaluator; }

void Evaluator::Charge(uint64_t units) {
  steps_ += units;
  if (steps_ < next_time_check_) return;
  next_time_check_ = steps_ + kStepsPerTimeCheck;
  if (options_.time_limit_ms > 0 &&
      SteadyMicros() - start_micros_ > options_.time_limit_ms * 1000) {
    Throw("U1001", "Evaluation timed out");
  }
}

uint64_t Evaluator::NextRandom() {
  // splitmix64
  uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void Evaluator::BreakCycles() {
  for (auto& w : cycle_frames_) {
    if (auto f = w.lock()) {
      std::vector<std::pair<std::string, Value>> vars;
      vars.swap(f->vars);
    }
  }
  cycle_frames_.clear();
}

void Evaluator::ReserveStack(size_t bytes) {
  uintptr_t sp = StackPointer();
  size_t used = stack_base_ > sp ? stack_base_ - sp : 0;
  if (used + bytes <= stack_budget_) return;
  if (stack_budget_ < kBigStackThreshold) throw StackExhausted{};
  Throw("U1001", "Input too large for regular expression matching");
}

void Evaluator::CheckGuards() {
  uintptr_t sp = StackPointer();
  if (stack_base_ > sp && stack_base_ - sp > stack_budget_) throw StackExhausted{};
  Charge(1);
}

Value Evaluator::Eval(const Node* expr, const Value& input, const Env& env) {
  CheckGuards();
  Value result;
  switch (expr->type) {
    case NodeType::kPath:
      result = EvalPath(expr, input, env);
      break;
    case NodeType::kBinary:
      result = EvalBinary(expr, input, env);
      break;
    case NodeType::kNegate: {
      Value v = Eval(expr->lhs.get(), input, env);
      if (v.undefined()) break;
      if (!IsNumeric(v)) {
        Throw("D1002", "Cannot negate a non-numeric value", expr->position, "-");
      }
      result = Value::Number(-v.num());
      break;
    }
    case NodeType::kArrayCons:
      result = EvalArray(expr, input, env);
      break;
    case NodeType::kObjectCons:
      result = EvalGroup(expr->pairs, input, env);
      break;
    case NodeType::kName:
      result = LookupField(input, expr->value);
      break;
    case NodeType::kString:
      result = Value::String(expr->value);
      break;
    case NodeType::kNumber:
      result = Value::Number(expr->number);
      break;
    case NodeType::kValue:
      result = expr->literal == 0 ? Value::Null() : Value::Bool(expr->literal == 1);
      break;
    case NodeType::kWildcard: {
      result = MakeSequence();
      Value in = UnwrapOuter(input);
      if (in.is_array()) {
        // JavaScript arrays are objects keyed by index
        auto& out = result.arr().items();
        std::function<void(const Value&)> flat = [&](const Value& x) {
          if (x.is_array()) {
            for (const auto& y : x.arr().items()) flat(y);
          } else {
            out.push_back(x);
          }
        };
        flat(in);
      } else if (in.is_object()) {
        auto& out = result.arr().items();
        for (const auto& [k, v] : in.obj().entries()) {
          if (v.is_array()) {
            // flatten nested arrays completely
            std::function<void(const Value&)> flat = [&](const Value& x) {
              if (x.is_array()) {
                for (const auto& y : x.arr().items()) flat(y);
              } else {
                out.push_back(x);
              }
            };
            flat(v);
          } else {
            out.push_back(v);
          }
        }
      }
      break;
    }
    case NodeType::kDescendant: {
      if (input.undefined()) break;
      Value seq = MakeSequence();
      auto& out = seq.arr().items();
      std::function<void(const Value&)> rec = [&](const Value& v) {
        if (!v.is_array()) out.push_back(v);
        if (v.is_array()) {
          for (const auto& m : v.arr().items()) rec(m);
        } else if (v.is_object()) {
          for (const auto& [k, m] : v.obj().entries()) rec(m);
        }
      };
      rec(input);
      result = out.size() == 1 ? out[0] : seq;
      break;
    }
    case NodeType::kParent: {
      const Value* v = env->Lookup(expr->slot->label);
      if (v != nullptr) result = *v;
      break;
    }
    case NodeType::kCondition: {
      Value cond = Eval(expr->lhs.get(), input, env);
      if (Boolize(cond)) {
        result = Eval(expr->rhs.get(), input, env);
      } else if (expr->third) {
        result = Eval(expr->third.get(), input, env);
      }
      break;
    }
    case NodeType::kCoalesce: {
      result = Eval(expr->lhs.get(), input, env);
      if (result.undefined()) result = Eval(expr->rhs.get(), input, env);
      break;
    }
    case NodeType::kDefault: {
      result = Eval(expr->lhs.get(), input, env);
      if (!Boolize(result)) result = Eval(expr->rhs.get(), input, env);
      break;
    }
    case NodeType::kBlock:
      result = EvalBlock(expr, input, env);
      break;
    case NodeType::kBind: {
      result = Eval(expr->rhs.get(), input, env);
      env->Bind(expr->lhs->value, result);
      if (result.is_function() || result.is_object() || result.is_array()) {
        RegisterCycleFrame(env);
      }
      break;
    }
    case NodeType::kRegex: {
      auto f = std::make_shared<Function>();
      f->kind = Function::Kind::kRegex;
      f->regex = expr->regex;
      result = Value::FromFunction(std::move(f));
      break;
    }
    case NodeType::kFunction:
      result = EvalFunctionCall(expr, input, env, nullptr);
      break;
    case NodeType::kPartial:
      result = EvalPartial(expr, input, env);
      break;
    case NodeType::kVariable:
      result = EvalVariable(expr, input, env);
      break;
    case NodeType::kLambda: {
      auto f = std::make_shared<Function>();
      f->kind = expr->thunk ? Function::Kind::kThunk : Function::Kind::kLambda;
      f->node = expr->thunk ? expr->body.get() : expr;
      f->env = env;
      f->input = input;
      result = Value::FromFunction(std::move(f));
      break;
    }
    case NodeType::kApply:
      result = EvalApply(expr, input, env);
      break;
    case NodeType::kTransform: {
      auto f = std::make_shared<Function>();
      f->kind = Function::Kind::kTransform;
      f->node = expr;
      f->env = env;
      result = Value::FromFunction(std::move(f));
      break;
    }
    case NodeType::kSort:
      result = EvalSort(expr, input.is_array() ? input : SequenceOf(input), env);
      break;
    default:
      Throw("S0201", "Syntax error", expr->position);
  }

  for (const auto& stage : expr->predicate) {
    result = EvalFilter(stage.expr.get(), result, env);
  }
  if (expr->type != NodeType::kPath && expr->group) {
    result = EvalGroup(expr->group->pairs, result, env);
  }
  if (result.is_array()) {
    Array& a = result.arr();
    if (a.sequence && !a.tuple_stream) {
      if (expr->keep_array) a.keep_singleton = true;
      if (a.empty()) return Value();
      if (a.size() == 1 && !a.keep_singleton) return a[0];
    }
  }
  return result;
}

Value Evaluator::EvalVariable(const Node* expr, const Value& input, const Env& env) {
  if (expr->value.empty()) return UnwrapOuter(input);
  const Value* v = env->Lookup(expr->value);
  if (v != nullptr) return *v;
  const Builtin* b = FindBuiltin(expr->value, options_.aws_functions);
  if (b != nullptr) return b->value;
  return Value();
}

Value Evaluator::EvalPath(const Node* expr, const Value& input, const Env& env) {
  Value input_seq;
  if (input.is_array() && expr->steps[0]->type != NodeType::kVariable) {
    input_seq = input;
  } else {
    input_seq = SequenceOf(input);
  }
  Value result_seq;
  bool is_tuple = false;
  Value tuples;
  const size_t n = expr->steps.size();
  for (size_t i = 0; i < n; ++i) {
    const Node* step = expr->steps[i].get();
    if (step->tuple) is_tuple = true;
    if (i == 0 && step->cons_array) {
      result_seq = Eval(step, input_seq, env);
    } else if (is_tuple) {
      tuples = EvalTupleStep(step, input_seq, tuples, env);
    } else {
      result_seq = EvalStep(step, input_seq, env, i == n - 1);
    }
    if (!is_tuple &&
        (result_seq.undefined() || (result_seq.is_array() && result_seq.arr().empty()))) {
      break;
    }
    if (!step->has_focus) input_seq = result_seq;
  }
  if (is_tuple) {
    if (expr->tuple) {
      result_seq = tuples;
    } else {
      result_seq = MakeSequence();
      if (tuples.is_array()) {
        for (const auto& t : tuples.arr().items()) result_seq.arr().push_back(TupleGet(t, "@"));
      }
    }
  }
  if (expr->keep_singleton_array) {
    if (result_seq.is_array() && result_seq.arr().cons && !result_seq.arr().sequence) {
      result_seq = SequenceOf(result_seq);
    }
    if (result_seq.is_array()) {
      result_seq.arr().keep_singleton = true;
    } else if (result_seq.defined()) {
      // a scalar from a consarray first step; wrap so [] keeps it an array
      Value s = SequenceOf(result_seq);
      s.arr().keep_singleton = true;
      result_seq = s;
    }
  }
  if (expr->group) {
    result_seq = EvalGroup(expr->group->pairs, is_tuple ? tuples : result_seq, env);
  }
  return result_seq;
}

Value Evaluator::EvalStep(const Node* step, const Value& input, const Env& env, bool last_step) {
  if (step->type == NodeType::kSort) {
    Value result = EvalSort(step, input, env);
    if (!step->stages.empty()) result = EvalStages(step->stages, result, env);
    return result;
  }
  // jsonata-js loops over `input.length`: a step after an array constructor whose predicate
  // picked a single non-array value (`[x][0].y`) has nothing to iterate over.
  if (!input.is_array()) return MakeSequence();
  std::vector<Value> results;
  auto& in = input.arr().items();
  results.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    Value res = Eval(step, in[i], env);
    for (const auto& st : step->stages) res = EvalFilter(st.expr.get(), res, env);
    if (res.defined()) results.push_back(std::move(res));
  }
  if (last_step && results.size() == 1 && results[0].is_array() && !results[0].arr().sequence) {
    return results[0];
  }
  Value out = MakeSequence();
  auto& o = out.arr().items();
  for (auto& res : results) {
    if (!res.is_array() || res.arr().cons) {
      o.push_back(std::move(res));
    } else {
      auto& ri = res.arr().items();
      CheckItems(o.size() + ri.size());
      ChargeWork(ri.size());
      o.insert(o.end(), ri.begin(), ri.end());
    }
  }
  return out;
}

Value Evaluator::EvalStages(const std::vector<Stage>& stages, Value input, const Env& env) {
  Value result = std::move(input);
  for (const auto& stage : stages) {
    if (!stage.is_index) {
      result = EvalFilter(stage.expr.get(), result, env);
    } else if (result.is_array()) {
      auto& items = result.arr().items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (items[i].is_object()) {
          items[i].obj().Set(stage.index_var, Value::Number(static_cast<double>(i)));
        }
      }
    }
  }
  return result;
}

Value Evaluator::EvalTupleStep(const Node* step, const Value& input, const Value& tuples,
                               const Env& env) {
  if (step->type == NodeType::kSort) {
    Value result;
    if (tuples.defined()) {
      result = EvalSort(step, tuples, env);
    } else {
      Value sorted = EvalSort(step, input, env);
      result = MakeSequence();
      result.arr().tuple_stream = true;
      if (sorted.is_array()) {
        auto& s = sorted.arr().items();
        for (size_t i = 0; i < s.size(); ++i) {
          Value t = MakeObject();
          t.obj().Set("@", s[i]);
          if (step->has_index) t.obj().Set(step->index, Value::Number(static_cast<double>(i)));
          result.arr().push_back(std::move(t));
        }
      }
    }
    if (!step->stages.empty()) result = EvalStages(step->stages, result, env);
    return result;
  }

  Value result = MakeSequence();
  result.arr().tuple_stream = true;
  std::vector<Value> bindings;
  if (tuples.undefined()) {
    if (!input.is_array()) return result;  // as in EvalStep
    for (const auto& item : input.arr().items()) {
      Value t = MakeObject();
      t.obj().Set("@", item);
      bindings.push_back(std::move(t));
    }
  } else {
    bindings = tuples.arr().items();
  }
  for (const auto& tuple : bindings) {
    Env step_env = FrameFromTuple(env, tuple);
    Value ctx = TupleGet(tuple, "@");
    Value res = Eval(step, ctx, step_env);
    if (res.undefined()) continue;
    std::vector<Value> items;
    bool res_tuple = false;
    if (res.is_array()) {
      items = res.arr().items();
      res_tuple = res.arr().tuple_stream;
    } else {
      items.push_back(res);
    }
    CheckItems(result.arr().size() + items.size());
    for (size_t bb = 0; bb < items.size(); ++bb) {
      auto t = std::make_shared<Object>();
      ChargeWork(1 + tuple.obj().size());
      for (const auto& [k, v] : tuple.obj().entries()) t->Set(k, v);
      if (res_tuple) {
        if (items[bb].is_object()) {
          for (const auto& [k, v] : items[bb].obj().entries()) t->Set(k, v);
        }
      } else {
        if (step->has_focus) {
          t->Set(step->focus, items[bb]);
          t->Set("@", ctx);
        } else {
          t->Set("@", items[bb]);
        }
        if (step->has_index) t->Set(step->index, Value::Number(static_cast<double>(bb)));
        if (step->ancestor) t->Set(step->ancestor->label, ctx);
      }
      result.arr().push_back(Value::FromObject(std::move(t)));
    }
  }
  if (!step->stages.empty()) result = EvalStages(step->stages, result, env);
  return result;
}

Value Evaluator::EvalFilter(const Node* pred, const Value& input_in, const Env& env) {
  Value results = MakeSequence();
  bool tuple_stream = input_in.is_array() && input_in.arr().tuple_stream;
  if (tuple_stream) results.arr().tuple_stream = true;
  Value input = input_in.is_array() ? input_in : SequenceOf(input_in);
  auto& in = input.arr().items();
  if (pred->type == NodeType::kNumber) {
    double idx = std::floor(pred->number);
    if (idx < 0) idx += static_cast<double>(in.size());
    if (idx >= 0 && idx < static_cast<double>(in.size())) {
      const Value& item = in[static_cast<size_t>(idx)];
      if (item.defined()) {
        if (item.is_array()) return item;
        results.arr().push_back(item);
      }
    }
    return results;
  }
  for (size_t index = 0; index < in.size(); ++index) {
    const Value& item = in[index];
    Value context = item;
    Env e = env;
    if (tuple_stream) {
      context = TupleGet(item, "@");
      e = FrameFromTuple(env, item);
    }
    Value res = Eval(pred, context, e);
    if (IsNumeric(res)) res = MakeSequence({res});
    bool all_numbers = false;
    if (res.is_array()) {
      all_numbers = true;
      for (const auto& v : res.arr().items()) {
        if (!v.is_number()) {
          all_numbers = false;
          break;
        }
      }
    }
    if (all_numbers) {
      for (const auto& v : res.arr().items()) {
        double ii = std::floor(v.num());
        if (ii < 0) ii += static_cast<double>(in.size());
        if (ii == static_cast<double>(index)) results.arr().push_back(item);
      }
    } else if (Boolize(res)) {
      results.arr().push_back(item);
    }
  }
  return results;
}

namespace {
template <typename Greater>
void MergeSort(std::vector<Value>& v, Greater greater) {
  if (v.size() < 2) return;
  std::vector<Value> tmp(v.size());
  // bottom-up stable merge sort; `greater(a, b)` true means a must come after b
  for (size_t width = 1; width < v.size(); width *= 2) {
    ChargeWork(v.size());
    for (size_t lo = 0; lo < v.size(); lo += 2 * width) {
      size_t mid = std::min(lo + width, v.size());
      size_t hi = std::min(lo + 2 * width, v.size());
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (greater(v[i], v[j])) {
          tmp[k++] = v[j++];
        } else {
          tmp[k++] = v[i++];
        }
      }
      while (i < mid) tmp[k++] = v[i++];
      while (j < hi) tmp[k++] = v[j++];
    }
    v.swap(tmp);
  }
}
}  // namespace

void SortValues(std::vector<Value>& v, const std::function<bool(const Value&, const Value&)>& gt) {
  MergeSort(v, gt);
}

Value Evaluator::EvalSort(const Node* sort, const Value& input, const Env& env) {
  if (!input.is_array()) return input;
  bool tuple_sort = input.arr().tuple_stream;
  auto greater = [&](const Value& a, const Value& b) {
    int comp = 0;
    for (size_t i = 0; comp == 0 && i < sort->terms.size(); ++i) {
      const SortTerm& term = sort->terms[i];
      Value aa, bb;
      if (tuple_sort) {
        aa = Eval(term.expr.get(), TupleGet(a, "@"), FrameFromTuple(env, a));
        bb = Eval(term.expr.get(), TupleGet(b, "@"), FrameFromTuple(env, b));
      } else {
        aa = Eval(term.expr.get(), a, env);
        bb = Eval(term.expr.get(), b, env);
      }
      if (aa.undefined()) {
        comp = bb.undefined() ? 0 : 1;
        continue;
      }
      if (bb.undefined()) {
        comp = -1;
        continue;
      }
      bool aok = aa.is_string() || aa.is_number();
      bool bok = bb.is_string() || bb.is_number();
      if (!aok || !bok) {
        Throw("T2008",
              "The expressions within an order-by clause must evaluate to numeric or "
              "string values",
              sort->position);
      }
      if (aa.type() != bb.type()) {
        Throw("T2007", "Type mismatch within order-by clause. All values must be of the same type",
              sort->position);
      }
      if (aa.is_number()) {
        comp = aa.num() == bb.num() ? 0 : aa.num() < bb.num() ? -1 : 1;
      } else {
        comp = aa.str() == bb.str() ? 0 : aa.str() < bb.str() ? -1 : 1;
      }
      if (term.descending) comp = -comp;
    }
    return comp == 1;
  };
  std::vector<Value> items = input.arr().items();
  MergeSort(items, greater);
  Value out = MakeSequence(std::move(items));
  out.arr().tuple_stream = tuple_sort;
  return out;
}

Value Evaluator::EvalGroup(const std::vector<std::pair<NodePtr, NodePtr>>& pairs,
                           const Value& input_in, const Env& env) {
  bool reduce = input_in.is_array() && input_in.arr().tuple_stream;
  std::vector<Value> in;
  if (input_in.is_array()) {
    in = input_in.arr().items();
  } else {
    in.push_back(input_in);
  }
  if (in.empty()) in.push_back(Value());
  struct Entry {
    Value data;
    size_t expr_index;
  };
  std::vector<std::pair<std::string, Entry>> groups;
  std::unordered_map<std::string, size_t> index;
  for (const auto& item : in) {
    Env e = reduce ? FrameFromTuple(env, item) : env;
    for (size_t p = 0; p < pairs.size(); ++p) {
      Value key = Eval(pairs[p].first.get(), reduce ? TupleGet(item, "@") : item, e);
      if (key.undefined()) continue;
      if (!key.is_string()) {
        Throw("T1003",
              "Key in object structure must evaluate to a string; got: " + Stringify(key, false),
              pairs[p].first->position);
      }
      auto it = index.find(key.str());
      if (it != index.end()) {
        Entry& entry = groups[it->second].second;
        if (entry.expr_index != p) {
          Throw("D1009", "Multiple key definitions evaluate to same key: " + key.str(),
                pairs[p].first->position, key.str());
        }
        entry.data = AppendValues(entry.data, item);
      } else {
        index.emplace(key.str(), groups.size());
        groups.push_back({key.str(), Entry{item, p}});
      }
    }
  }
  Value result = MakeObject();
  for (auto& [key, entry] : groups) {
    Value context = entry.data;
    Env e = env;
    if (reduce) {
      // merge the tuples of this group
      auto merged = std::make_shared<Object>();
      if (entry.data.is_array() && !entry.data.arr().tuple_stream && entry.data.is_array()) {
        auto& tuples = entry.data.arr().items();
        if (!tuples.empty() && tuples[0].is_object()) {
          for (const auto& [k, v] : tuples[0].obj().entries()) merged->Set(k, v);
        }
        for (size_t i = 1; i < tuples.size(); ++i) {
          if (!tuples[i].is_object()) continue;
          for (const auto& [k, v] : tuples[i].obj().entries()) {
            const Value* prev = merged->Get(k);
            merged->Set(k, AppendValues(prev ? *prev : Value(), v));
          }
        }
      } else if (entry.data.is_object()) {
        for (const auto& [k, v] : entry.data.obj().entries()) merged->Set(k, v);
      }
      const Value* at = merged->Get("@");
      context = at ? *at : Value();
      merged->Erase("@");
      e = FrameFromTuple(env, Value::FromObject(merged));
    }
    Value v = Eval(pairs[entry.expr_index].second.get(), context, e);
    if (v.defined()) result.obj().Set(key, std::move(v));
  }
  return result;
}

Value Evaluator::EvalArray(const Node* expr, const Value& input, const Env& env) {
  std::vector<Value> out;
  for (const auto& item : expr->items) {
    Value v = Eval(item.get(), input, env);
    if (v.undefined()) continue;
    if (item->type == NodeType::kArrayCons) {
      out.push_back(std::move(v));
    } else if (v.is_array()) {
      auto& vi = v.arr().items();
      CheckItems(out.size() + vi.size());
      ChargeWork(vi.size());
      if (out.empty() && v.arr_ptr().use_count() == 2) {
        out = std::move(vi);  // a fresh sequence (e.g. a range) nobody else holds
      } else {
        out.insert(out.end(), vi.begin(), vi.end());
      }
    } else {
      out.push_back(std::move(v));
    }
  }
  Value result = MakeArray(std::move(out));
  if (expr->cons_array) result.arr().cons = true;
  return result;
}

Value Evaluator::EvalBlock(const Node* expr, const Value& input, const Env& env) {
  auto frame = std::make_shared<Frame>();
  frame->parent = env;
  Value result;
  for (const auto& item : expr->items) result = Eval(item.get(), input, frame);
  return result;
}

namespace {
std::string RangeNumber(const Value& v) { return Stringify(v, false); }
}  // namespace

Value Evaluator::EvalBinary(const Node* expr, const Value& input, const Env& env) {
  const std::string& op = expr->value;
  Value lhs = Eval(expr->lhs.get(), input, env);
  if (op == "and") {
    if (!Boolize(lhs)) return Value::Bool(false);
    return Value::Bool(Boolize(Eval(expr->rhs.get(), input, env)));
  }
  if (op == "or") {
    if (Boolize(lhs)) return Value::Bool(true);
    return Value::Bool(Boolize(Eval(expr->rhs.get(), input, env)));
  }
  Value rhs = Eval(expr->rhs.get(), input, env);
  char c0 = op[0];
  if (op.size() == 1 && (c0 == '+' || c0 == '-' || c0 == '*' || c0 == '/' || c0 == '%')) {
    if (lhs.defined() && !IsNumeric(lhs)) {
      Throw("T2001", "The left side of the " + op + " operator must evaluate to a number",
            expr->position, op);
    }
    if (rhs.defined() && !IsNumeric(rhs)) {
      Throw("T2002", "The right side of the " + op + " operator must evaluate to a number",
            expr->position, op);
    }
    if (lhs.undefined() || rhs.undefined()) return Value();
    double a = lhs.num(), b = rhs.num(), r = 0;
    switch (c0) {
      case '+':
        r = a + b;
        break;
      case '-':
        r = a - b;
        break;
      case '*':
        r = a * b;
        break;
      case '/':
        r = a / b;
        break;
      default:
        r = std::fmod(a, b);
        break;
    }
    return Value::Number(r);  // a non-finite result fails (D1001) where it is used
  }
  if (op == "=" || op == "!=") {
    if (lhs.undefined() || rhs.undefined()) return Value::Bool(false);
    bool eq = DeepEqual(lhs, rhs);
    return Value::Bool(op == "=" ? eq : !eq);
  }
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    bool lc = lhs.undefined() || lhs.is_string() || lhs.is_number();
    bool rc = rhs.undefined() || rhs.is_string() || rhs.is_number();
    if (!lc || !rc) {
      Throw("T2010",
            "The expressions either side of operator " + op +
                " must evaluate to numeric or string values",
            expr->position, op);
    }
    if (lhs.undefined() || rhs.undefined()) return Value();
    if (lhs.type() != rhs.type()) {
      Throw("T2009", "The values either side of the operator " + op + " must be of the same type",
            expr->position, op);
    }
    int cmp;
    if (lhs.is_number()) {
      cmp = lhs.num() < rhs.num() ? -1 : lhs.num() > rhs.num() ? 1 : 0;
      if (std::isnan(lhs.num()) || std::isnan(rhs.num())) return Value::Bool(false);
    } else {
      cmp = lhs.str().compare(rhs.str());
    }
    if (op == "<") return Value::Bool(cmp < 0);
    if (op == "<=") return Value::Bool(cmp <= 0);
    if (op == ">") return Value::Bool(cmp > 0);
    return Value::Bool(cmp >= 0);
  }
  if (op == "&") {
    std::string s = lhs.defined() ? ToStringValue(lhs) : "";
    if (rhs.defined()) {
      std::string r = ToStringValue(rhs);
      CheckStringBytes(s.size() + r.size());
      ChargeWork((s.size() + r.size()) / kStringBytesPerUnit);
      s += r;
    }
    return Value::String(std::move(s));
  }
  if (op == "..") {
    if (lhs.defined() && (!lhs.is_number() || lhs.num() != std::floor(lhs.num()))) {
      Throw("T2003", "The left side of the range operator (..) must evaluate to an integer",
            expr->position, RangeNumber(lhs));
    }
    if (rhs.defined() && (!rhs.is_number() || rhs.num() != std::floor(rhs.num()))) {
      Throw("T2004", "The right side of the range operator (..) must evaluate to an integer",
            expr->position, RangeNumber(rhs));
    }
    if (lhs.undefined() || rhs.undefined()) return Value();
    double lo = lhs.num(), hi = rhs.num();
    if (lo > hi) return Value();
    double size = hi - lo + 1;
    if (size > 1e7) {
      Throw("D2014",
            "The size of the sequence allocated by the range operator (..) must not "
            "exceed 1e7",
            expr->position);
    }
    ChargeWork(static_cast<size_t>(size));
    std::vector<Value> items;
    items.reserve(static_cast<size_t>(size));
    for (double x = lo; x <= hi; x += 1) items.push_back(Value::Number(x));
    return MakeSequence(std::move(items));
  }
  if (op == "in") {
    if (lhs.undefined() || rhs.undefined()) return Value::Bool(false);
    auto strict_eq = [&](const Value& v) {
      if (v.type() != lhs.type()) return false;
      switch (v.type()) {
        case VType::kNull:
          return true;
        case VType::kBool:
          return v.boolean() == lhs.boolean();
        case VType::kNumber:
          return v.num() == lhs.num();
        case VType::kString:
          return v.str() == lhs.str();
        default:
          return v.identity() == lhs.identity();
      }
    };
    if (rhs.is_array()) {
      for (const auto& v : rhs.arr().items()) {
        if (strict_eq(v)) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    return Value::Bool(strict_eq(rhs));
  }
  Throw("S0201", "Unknown operator " + op, expr->position, op);
}

Value Evaluator::EvalFunctionCall(const Node* expr, const Value& input, const Env& env,
                                  const Value* apply_to) {
  Value proc = Eval(expr->procedure.get(), input, env);
  if (proc.undefined() && expr->procedure->type == NodeType::kPath &&
      !expr->procedure->steps.empty() &&
      (env->Lookup(expr->procedure->steps[0]->value) != nullptr ||
       FindBuiltin(expr->procedure->steps[0]->value, options_.aws_functions) != nullptr)) {
    Throw("T1005",
          "Attempted to invoke a non-function. Did you mean ${" + expr->procedure->steps[0]->value +
              "}?",
          expr->position, expr->procedure->steps[0]->value);
  }
  std::vector<Value> args;
  args.reserve(expr->items.size() + 1);
  if (apply_to != nullptr) args.push_back(*apply_to);
  for (const auto& a : expr->items) args.push_back(Eval(a.get(), input, env));
  try {
    return Apply(proc, std::move(args), input, env);
  } catch (JsonataError& e) {
    if (e.position < 0) e.position = expr->position;
    if (e.token.empty()) {
      e.token = expr->procedure->type == NodeType::kPath && !expr->procedure->steps.empty()
                    ? expr->procedure->steps[0]->value
                    : expr->procedure->value;
    }
    throw;
  }
}

Value Evaluator::EvalPartial(const Node* expr, const Value& input, const Env& env) {
  auto f = std::make_shared<Function>();
  f->kind = Function::Kind::kPartial;
  for (const auto& a : expr->items) {
    if (a->type == NodeType::kPlaceholder) {
      f->args.emplace_back();
      f->placeholder.push_back(true);
    } else {
      f->args.push_back(Eval(a.get(), input, env));
      f->placeholder.push_back(false);
    }
  }
  Value proc = Eval(expr->procedure.get(), input, env);
  if (proc.undefined() && expr->procedure->type == NodeType::kPath &&
      !expr->procedure->steps.empty() &&
      (env->Lookup(expr->procedure->steps[0]->value) != nullptr ||
       FindBuiltin(expr->procedure->steps[0]->value, options_.aws_functions) != nullptr)) {
    Throw("T1007",
          "Attempted to partially apply a non-function. Did you mean ${" +
              expr->procedure->steps[0]->value + "}?",
          expr->position);
  }
  if (!proc.is_function()) {
    Throw("T1008", "Attempted to partially apply a non-function", expr->position,
          expr->procedure->value);
  }
  f->base = proc;
  return Value::FromFunction(std::move(f));
}

Value Evaluator::EvalApply(const Node* expr, const Value& input, const Env& env) {
  Value lhs = Eval(expr->lhs.get(), input, env);
  if (expr->rhs->type == NodeType::kFunction) {
    return EvalFunctionCall(expr->rhs.get(), input, env, &lhs);
  }
  Value func = Eval(expr->rhs.get(), input, env);
  if (!func.is_function()) {
    Throw("T2006", "The right side of the function application operator ~> must be a function",
          expr->position);
  }
  if (lhs.is_function()) {
    auto f = std::make_shared<Function>();
    f->kind = Function::Kind::kChain;
    f->base = lhs;
    f->second = func;
    return Value::FromFunction(std::move(f));
  }
  return Apply(func, {lhs}, input, env);
}

Value Evaluator::Apply(const Value& proc, std::vector<Value> args, const Value& input,
                       const Env& env) {
  Value result = ApplyInner(proc, args, input, env);
  while (result.is_function() && result.fn().kind == Function::Kind::kThunk) {
    CheckGuards();
    Function& th = result.fn();
    const Node* call = th.node;
    Env tenv = th.env;
    Value tinput = th.input;
    Value next = Eval(call->procedure.get(), tinput, tenv);
    std::vector<Value> targs;
    targs.reserve(call->items.size());
    for (const auto& a : call->items) targs.push_back(Eval(a.get(), tinput, tenv));
    try {
      result = ApplyInner(next, targs, input, env);
    } catch (JsonataError& e) {
      if (e.token.empty()) {
        e.token = call->procedure->type == NodeType::kPath && !call->procedure->steps.empty()
                      ? call->procedure->steps[0]->value
                      : call->procedure->value;
      }
      throw;
    }
  }
  return result;
}

Value Evaluator::CallHof(const Value& fn, const Value& a, const Value& b, const Value& c,
                         const Env& env) {
  std::vector<Value> args;
  args.push_back(a);
  int arity = fn.is_function() ? fn.fn().Arity() : 1;
  if (arity >= 2) args.push_back(b);
  if (arity >= 3) args.push_back(c);
  return Apply(fn, std::move(args), Value(), env);
}

std::vector<Value> Evaluator::Validate(const Signature& sig, std::vector<Value>& args,
                                       const Value& context) {
  std::string supplied;
  for (const auto& a : args) supplied += TypeSymbol(a);
  if (auto counts = MatchSignature(sig, sig.params.size(), supplied, true)) {
    std::vector<Value> out;
    size_t arg_index = 0;
    size_t start = 0;
    for (size_t p = 0; p < sig.params.size(); ++p) {
      const auto& param = sig.params[p];
      std::string_view match = std::string_view(supplied).substr(start, (*counts)[p]);
      start += (*counts)[p];
      if (match.empty()) {
        if (param.context && !param.context_regex.empty()) {
          if (param.context_symbols.find(TypeSymbol(context)) != std::string::npos) {
            out.push_back(context);
          } else {
            Throw("T0411", "Context value is not a compatible type with argument " +
                               std::to_string(arg_index + 1));
          }
        } else {
          out.push_back(arg_index < args.size() ? args[arg_index] : Value());
          ++arg_index;
        }
        continue;
      }
      for (char single : match) {
        Value arg = arg_index < args.size() ? args[arg_index] : Value();
        if (param.type == 'a') {
          if (single == 'm') {
            arg = Value();
          } else {
            bool ok = true;
            if (!param.subtype.empty()) {
              if (single != 'a' && match != param.subtype) {
                ok = false;
              } else if (single == 'a') {
                auto& items = arg.arr().items();
                if (!items.empty()) {
                  char it = TypeSymbol(items[0]);
                  if (it != param.subtype[0]) {
                    ok = false;
                  } else {
                    for (const auto& v : items) {
                      if (TypeSymbol(v) != it) ok = false;
                    }
                  }
                }
              }
            }
            if (!ok) {
              Throw("T0412", "Argument " + std::to_string(arg_index + 1) +
                                 " of function must be an array of " + param.subtype);
            }
            if (single != 'a') arg = MakeArray({arg});
          }
        }
        out.push_back(std::move(arg));
        ++arg_index;
      }
    }
    return out;
  }
  // the first argument that does not fit
  size_t good_to = SignatureFitLength(sig, supplied);
  Throw("T0410", "Argument " + std::to_string(good_to + 1) +
                     " of function does not match function signature");
}

Value Evaluator::ApplyInner(const Value& proc, std::vector<Value>& args, const Value& input,
                            const Env& env) {
  if (!proc.is_function()) {
    Throw("T1006", "Attempted to invoke a non-function");
  }
  Function& f = proc.fn();
  switch (f.kind) {
    case Function::Kind::kLambda: {
      const Node* lambda = f.node;
      std::vector<Value> validated;
      const std::vector<Value>* use = &args;
      if (lambda->signature) {
        validated = Validate(*lambda->signature, args, input);
        use = &validated;
      }
      auto frame = std::make_shared<Frame>();
      frame->parent = f.env;
      for (size_t i = 0; i < lambda->params.size(); ++i) {
        frame->vars.emplace_back(lambda->params[i], i < use->size() ? (*use)[i] : Value());
      }
      if (++depth_ > options_.max_depth) {
        --depth_;
        Throw("U1001", "Stack overflow: maximum function call depth exceeded");
      }
      Value r;
      try {
        r = Eval(lambda->body.get(), f.input, frame);
      } catch (...) {
        --depth_;
        throw;
      }
      --depth_;
      return r;
    }
    case Function::Kind::kBuiltin: {
      const Builtin* b = f.builtin;
      if (b->signature) {
        std::vector<Value> validated = Validate(*b->signature, args, input);
        return b->fn(*this, validated, input, env);
      }
      return b->fn(*this, args, input, env);
    }
    case Function::Kind::kPartial: {
      std::vector<Value> full;
      size_t next = 0;
      for (size_t i = 0; i < f.args.size(); ++i) {
        if (f.placeholder[i]) {
          full.push_back(next < args.size() ? args[next] : Value());
          ++next;
        } else {
          full.push_back(f.args[i]);
        }
      }
      return Apply(f.base, std::move(full), input, env);
    }
    case Function::Kind::kChain: {
      Value first = Apply(f.base, args, Value(), env);
      return Apply(f.second, {first}, Value(), env);
    }
    case Function::Kind::kRegex:
      return ApplyRegex(f, args);
    case Function::Kind::kTransform: {
      if (args.size() > 1) Throw("T0410", "Argument 2 of function does not match signature");
      Value obj = args.empty() ? Value() : args[0];
      if (obj.defined() && !obj.is_object() && !obj.is_array()) {
        Throw("T0410", "Argument 1 of transform must be an object or array");
      }
      return ApplyTransform(f, obj, env);
    }
    case Function::Kind::kThunk:
      return proc;
  }
  return Value();
}

Value Evaluator::ApplyTransform(const Function& f, const Value& obj, const Env& /*env*/) {
  if (obj.undefined()) return Value();
  const Node* node = f.node;
  const Env& env = f.env;
  Value result = CloneValue(obj);
  Value matches = Eval(node->lhs.get(), result, env);
  if (matches.undefined()) return result;
  std::vector<Value> list;
  if (matches.is_array()) {
    list = matches.arr().items();
  } else {
    list.push_back(matches);
  }
  for (const auto& match : list) {
    Value update = Eval(node->rhs.get(), match, env);
    if (update.defined()) {
      if (!update.is_object()) {
        Throw("T2011",
              "The insert/update clause of the transform expression must evaluate to an "
              "object",
              node->rhs->position);
      }
      if (match.is_object()) {
        for (const auto& [k, v] : update.obj().entries()) match.obj().Set(k, v);
      }
    }
    if (node->third) {
      Value deletions = Eval(node->third.get(), match, env);
      if (deletions.defined()) {
        std::vector<Value> dl;
        if (deletions.is_array()) {
          dl = deletions.arr().items();
        } else {
          dl.push_back(deletions);
        }
        for (const auto& d : dl) {
          if (!d.is_string()) {
            Throw("T2012",
                  "The delete clause of the transform expression must evaluate to a "
                  "string or array of strings",
                  node->third->position);
          }
        }
        if (match.is_object()) {
          for (const auto& d : dl) match.obj().Erase(d.str());
        }
      }
    }
  }
  return result;
}

Value Evaluator::ApplyRegex(const Function& f, const std::vector<Value>& args) {
  if (args.empty() || !args[0].is_string()) return Value();
  const std::string& s = args[0].str();
  ReserveStack(RegexStackBytes(s.size()));
  size_t from = 0;
  if (args.size() > 1 && args[1].is_number()) {
    // Like JavaScript's lastIndex: below 0 (or NaN) is 0, beyond the end finds nothing.
    double d = std::floor(args[1].num());
    if (d > static_cast<double>(s.size())) return Value();
    if (d > 0) from = static_cast<size_t>(d);
  }
  uint64_t reads = 0;
  const ChargedIter begin(s.data(), &reads), end(s.data() + s.size(), &reads);
  ChargedMatch m;
  if (!std::regex_search(begin + static_cast<std::ptrdiff_t>(from), end, m, f.regex->re)) {
    return Value();
  }
  Value out = MakeObject();
  size_t start = from + static_cast<size_t>(m.position(0));
  out.obj().Set("match", Value::String(m.str(0)));
  out.obj().Set("start", Value::Number(static_cast<double>(CodePointCount(s.substr(0, start)))));
  out.obj().Set("end", Value::Number(static_cast<double>(
                           CodePointCount(s.substr(0, start + static_cast<size_t>(m.length(0)))))));
  Value groups = MakeArray();
  for (size_t i = 1; i < m.size(); ++i) groups.arr().push_back(Value::String(m.str(i)));
  out.obj().Set("groups", groups);
  return out;
}

Value Evaluator::EvalText(const std::string& text, const Value& input, const Env& env) {
  std::shared_ptr<Node> ast;
  try {
    ast = Parse(text);
  } catch (JsonataError& e) {
    Throw("D3120", "Syntax error in expression passed to function eval: " + e.message);
  }
  eval_asts_.push_back(ast);
  try {
    return Eval(ast.get(), input, env);
  } catch (JsonataError& e) {
    if (e.code == "U1001") throw;
    Throw("D3121", "Dynamic error evaluating the expression passed to function eval: " + e.message);
  }
}

// ---------------------------------------------------------------- top level

namespace {

constexpr size_t kDefaultInlineStackBudget = 256 * 1024;
constexpr size_t kStackSafetyMargin = 512 * 1024;
constexpr size_t kMaxInlineStackBudget = 64ull * 1024 * 1024;

// How much of the calling thread's stack evaluation may use: what is left below the current
// frame minus a safety margin (the thread's stack bounds are looked up once per thread).
size_t InlineStackBudget() {
  thread_local uintptr_t stack_low = [] {
    pthread_attr_t attr;
    uintptr_t low = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      void* addr = nullptr;
      size_t size = 0;
      if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        low = reinterpret_cast<uintptr_t>(addr);
      }
      pthread_attr_destroy(&attr);
    }
    return low;
  }();
  uintptr_t sp = StackPointer();
  if (stack_low == 0 || sp <= stack_low) return kDefaultInlineStackBudget;
  size_t left = sp - stack_low;
  if (left <= kStackSafetyMargin + kDefaultInlineStackBudget) return left / 4;
  return std::min(left - kStackSafetyMargin, kMaxInlineStackBudget);
}
constexpr size_t kBigStackSize = 512ull * 1024 * 1024;
constexpr size_t kBigStackBudget = kBigStackSize - 16ull * 1024 * 1024;

struct RunArgs {
  const Node* root;
  const Json* input;
  const Bindings* bindings;
  const EvalOptions* options;
  size_t budget;
  std::optional<Outcome<std::optional<Json>>> out;
};

Error ToError(const JsonataError& e) {
  Error err;
  err.code = e.code;
  err.message = e.message.empty() ? e.code : e.message;
  err.position = e.position;
  err.token = e.token;
  return err;
}

// Whether the JSON text of `root` is certainly longer than `limit` bytes. Counts a lower bound
// of the text (string contents with quotes, one byte per number, punctuation) and stops as soon
// as it passes the limit, so the work is bounded by the limit, not by the (possibly shared,
// exponentially repeated) value. Iterative: no recursion on deep values.
bool TextLongerThan(const Value& root, int64_t limit) {
  int64_t bytes = 0;
  std::vector<const Value*> stack{&root};
  while (!stack.empty()) {
    const Value* v = stack.back();
    stack.pop_back();
    switch (v->type()) {
      case VType::kUndefined:
        break;
      case VType::kNull:
      case VType::kBool:
        bytes += 4;
        break;
      case VType::kNumber:
      case VType::kFunction:
        bytes += 1;
        break;
      case VType::kString:
        bytes += static_cast<int64_t>(v->str().size()) + 2;
        break;
      case VType::kArray:
        bytes += 2;
        for (const auto& item : v->arr().items()) {
          ++bytes;
          stack.push_back(&item);
        }
        break;
      case VType::kObject:
        bytes += 2;
        for (const auto& [k, item] : v->obj().entries()) {
          bytes += static_cast<int64_t>(k.size()) + 4;
          stack.push_back(&item);
        }
        break;
    }
    if (bytes > limit) return true;
  }
  return false;
}

// Runs one evaluation on the current thread; StackExhausted propagates to the caller.
Outcome<std::optional<Json>> RunOnThisThread(RunArgs& a) {
  Evaluator ev(*a.options, StackPointer(), a.budget);
  struct CycleBreaker {
    Evaluator& ev;
    ~CycleBreaker() { ev.BreakCycles(); }
  } breaker{ev};
  try {
    Value in;
    if (a.input != nullptr) in = FromJsonLazy(*a.input);
    if (in.is_array()) {
      Value wrapped = MakeSequence({in});
      wrapped.arr().outer_wrapper = true;
      in = wrapped;
    }
    auto root = std::make_shared<Frame>();
    root->Bind("$", in);
    for (const auto& [name, value] : *a.bindings) root->Bind(name, FromJsonLazy(value));
    Value result = ev.Eval(a.root, in, root);
    if (result.undefined()) return std::optional<Json>();
    if (result.is_function() && !a.options->allow_function_result) {
      Throw("F0001", "The expression returned a function, which is not a JSON value");
    }
    if (result.is_array() && result.arr().sequence) {
      auto& items = result.arr().items();
      if (items.empty()) return std::optional<Json>();
    }
    if (result.is_number() && !std::isfinite(result.num())) {
      Throw("D1001", "Number out of range");
    }
    if (a.options->max_result_bytes > 0 && TextLongerThan(result, a.options->max_result_bytes)) {
      Throw(kResultTooLargeCode, "Result too large: its JSON text is longer than " +
                                     std::to_string(a.options->max_result_bytes) + " bytes");
    }
    return std::optional<Json>(ToJson(result));
  } catch (const JsonataError& e) {
    return ToError(e);
  }
}

void* BigStackThread(void* p) {
  auto* a = static_cast<RunArgs*>(p);
  try {
    a->out.emplace(RunOnThisThread(*a));
  } catch (const StackExhausted&) {
    a->out.emplace(Error{"U1001", "Stack overflow: expression nesting too deep"});
  } catch (const std::bad_alloc&) {
    a->out.emplace(Error{"D1000", "Out of memory"});
  } catch (const std::exception& e) {
    a->out.emplace(Error{"D1000", std::string("Internal error: ") + e.what()});
  } catch (...) {
    a->out.emplace(Error{"D1000", "Internal error"});
  }
  return nullptr;
}

}  // namespace

}  // namespace internal

Outcome<Expression> Expression::Compile(std::string_view text) {
  try {
    auto impl = std::make_shared<Impl>();
    impl->text = std::string(text);
    impl->root = internal::Parse(impl->text);
    return Expression(std::move(impl));
  } catch (const internal::JsonataError& e) {
    return internal::ToError(e);
  } catch (const std::bad_alloc&) {
    return Error{"D1000", "Out of memory"};
  } catch (const std::exception& e) {
    return Error{"S0201", std::string("Syntax error: ") + e.what()};
  }
}

Outcome<std::optional<Json>> Expression::Evaluate(const Json* input, const Bindings& bindings,
                                                  const EvalOptions& options) const {
  internal::RunArgs args{
      impl_->root.get(), input, &bindings, &options, internal::InlineStackBudget(), std::nullopt};
  try {
    return internal::RunOnThisThread(args);
  } catch (const internal::StackExhausted&) {
    // Deep recursion: rerun on a thread with a large stack (evaluation has no side effects).
  } catch (const std::bad_alloc&) {
    return Error{"D1000", "Out of memory"};
  } catch (const std::exception& e) {
    return Error{"D1000", std::string("Internal error: ") + e.what()};
  }
  args.budget = internal::kBigStackBudget;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, internal::kBigStackSize);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, &internal::BigStackThread, &args);
  pthread_attr_destroy(&attr);
  if (rc != 0) return Error{"U1001", "Stack overflow: expression nesting too deep"};
  pthread_join(thread, nullptr);
  if (!args.out) return Error{"D1000", "Internal error"};
  return std::move(*args.out);
}

const std::string& Expression::text() const { return impl_->text; }

}  // namespace engage::jsonata
