// Internal value model of the JSONata evaluator.
//
// JSONata works on JavaScript values: undefined, null, booleans, doubles, strings, arrays,
// objects and functions. Arrays carry flags that JSONata's evaluator attaches to them
// (a "sequence" is a result stream that is flattened and unwrapped; "keep_singleton" stops the
// unwrapping; "cons" marks an array built by an array constructor; "outer_wrapper" marks the
// sequence wrapped around a top-level array input; "tuple_stream" marks a stream of binding
// tuples used by the focus/index/parent operators).
//
// Arrays and objects are shared by reference (as in JavaScript): a Value copies a pointer.
// Arrays and objects built from the input document are converted lazily, one level at a time,
// when they are first accessed, so evaluating a small expression over a big input only touches
// the parts it reads.
//
// Thread-safety: Values belong to one evaluation and must not be shared between threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engage/core/json.h"

namespace engage::jsonata::internal {

enum class VType : uint8_t {
  kUndefined,
  kNull,
  kBool,
  kNumber,
  kString,
  kArray,
  kObject,
  kFunction
};

struct Array;
struct Object;
struct Function;

class Value {
 public:
  Value() = default;  // undefined
  static Value Null() {
    Value v;
    v.t_ = VType::kNull;
    return v;
  }
  static Value Bool(bool b) {
    Value v;
    v.t_ = VType::kBool;
    v.n_ = b ? 1 : 0;
    return v;
  }
  static Value Number(double d) {
    Value v;
    v.t_ = VType::kNumber;
    v.n_ = d;
    return v;
  }
  static Value String(std::string s) {
    Value v;
    v.t_ = VType::kString;
    v.p_ = std::make_shared<std::string>(std::move(s));
    return v;
  }
  static Value FromArray(std::shared_ptr<Array> a) {
    Value v;
    v.t_ = VType::kArray;
    v.p_ = std::move(a);
    return v;
  }
  static Value FromObject(std::shared_ptr<Object> o) {
    Value v;
    v.t_ = VType::kObject;
    v.p_ = std::move(o);
    return v;
  }
  static Value FromFunction(std::shared_ptr<Function> f) {
    Value v;
    v.t_ = VType::kFunction;
    v.p_ = std::move(f);
    return v;
  }

  VType type() const { return t_; }
  bool undefined() const { return t_ == VType::kUndefined; }
  bool defined() const { return t_ != VType::kUndefined; }
  bool is_null() const { return t_ == VType::kNull; }
  bool is_bool() const { return t_ == VType::kBool; }
  bool is_number() const { return t_ == VType::kNumber; }
  bool is_string() const { return t_ == VType::kString; }
  bool is_array() const { return t_ == VType::kArray; }
  bool is_object() const { return t_ == VType::kObject; }
  bool is_function() const { return t_ == VType::kFunction; }

  bool boolean() const { return n_ != 0; }
  double num() const { return n_; }
  const std::string& str() const { return *static_cast<const std::string*>(p_.get()); }
  Array& arr() const { return *static_cast<Array*>(p_.get()); }
  Object& obj() const { return *static_cast<Object*>(p_.get()); }
  Function& fn() const { return *static_cast<Function*>(p_.get()); }
  std::shared_ptr<Array> arr_ptr() const { return std::static_pointer_cast<Array>(p_); }
  std::shared_ptr<Function> fn_ptr() const { return std::static_pointer_cast<Function>(p_); }
  const void* identity() const { return p_.get(); }

 private:
  VType t_ = VType::kUndefined;
  double n_ = 0;
  std::shared_ptr<void> p_;
};

struct Array {
  Array() = default;
  explicit Array(std::vector<Value> v) : items_(std::move(v)) {}
  explicit Array(const Json* lazy) : lazy_(lazy) {}

  std::vector<Value>& items() {
    if (lazy_ != nullptr) Materialize();
    return items_;
  }
  size_t size() { return items().size(); }
  bool empty() { return items().empty(); }
  Value& operator[](size_t i) { return items()[i]; }
  void push_back(Value v) { items().push_back(std::move(v)); }

  bool sequence = false;
  bool keep_singleton = false;
  bool cons = false;
  bool outer_wrapper = false;
  bool tuple_stream = false;

 private:
  void Materialize();
  const Json* lazy_ = nullptr;
  std::vector<Value> items_;
};

// An object with insertion-ordered keys (JSONata output keeps the order keys were added).
struct Object {
  Object() = default;
  explicit Object(const Json* lazy) : lazy_(lazy) {}

  const Value* Get(std::string_view key);
  void Set(std::string_view key, Value v);
  void Erase(std::string_view key);
  const std::vector<std::pair<std::string, Value>>& entries() {
    if (lazy_ != nullptr) Materialize();
    return entries_;
  }
  size_t size() { return entries().size(); }

 private:
  static constexpr size_t kIndexThreshold = 12;
  void Materialize();
  void Reindex();
  const Json* lazy_ = nullptr;
  // Members read from a still-lazy object (lookups do not convert the whole object).
  std::unique_ptr<std::unordered_map<std::string, Value>> lazy_reads_;
  std::vector<std::pair<std::string, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;  // key -> position, for big objects
};

// Helpers.
inline Value MakeArray(std::vector<Value> items = {}) {
  return Value::FromArray(std::make_shared<Array>(std::move(items)));
}
inline Value MakeSequence(std::vector<Value> items = {}) {
  auto a = std::make_shared<Array>(std::move(items));
  a->sequence = true;
  return Value::FromArray(std::move(a));
}
inline Value MakeObject() { return Value::FromObject(std::make_shared<Object>()); }
inline bool IsSequence(const Value& v) { return v.is_array() && v.arr().sequence; }

// Wraps a Json document without copying it; arrays/objects convert on first access. `j` must
// outlive every Value derived from it.
Value FromJsonLazy(const Json& j);
// Deep copy into an engage::Json. Undefined members are dropped; functions become "".
Json ToJson(const Value& v);

}  // namespace engage::jsonata::internal
