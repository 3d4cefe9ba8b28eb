// Value model of the JSONata engine (see value_internal.h).

#include <cmath>
#include <utility>

#include "jsonata/evaluator_internal.h"
#include "jsonata/value_internal.h"

namespace engage::jsonata::internal {

void Array::Materialize() {
  const Json* src = lazy_;
  lazy_ = nullptr;
  items_.reserve(src->size());
  for (const auto& el : *src) items_.push_back(FromJsonLazy(el));
}

void Object::Materialize() {
  const Json* src = lazy_;
  lazy_ = nullptr;
  entries_.reserve(src->size());
  for (auto it = src->begin(); it != src->end(); ++it) {
    Value v;
    if (lazy_reads_) {
      // keep the identity of values already handed out
      auto found = lazy_reads_->find(it.key());
      if (found != lazy_reads_->end()) v = found->second;
    }
    entries_.emplace_back(it.key(), v.defined() ? v : FromJsonLazy(it.value()));
  }
  lazy_reads_.reset();
  if (entries_.size() > kIndexThreshold) Reindex();
}

void Object::Reindex() {
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].first] = i;
}

const Value* Object::Get(std::string_view key) {
  if (lazy_ != nullptr) {
    if (lazy_->size() <= kIndexThreshold) {
      Materialize();
    } else {
      // big input object: look the key up in the document instead of converting all members
      std::string k(key);
      if (lazy_reads_) {
        auto found = lazy_reads_->find(k);
        if (found != lazy_reads_->end()) return &found->second;
      }
      auto it = lazy_->find(k);
      if (it == lazy_->end()) return nullptr;
      if (!lazy_reads_) lazy_reads_ = std::make_unique<std::unordered_map<std::string, Value>>();
      return &lazy_reads_->emplace(std::move(k), FromJsonLazy(*it)).first->second;
    }
  }
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  for (auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::Set(std::string_view key, Value v) {
  if (lazy_ != nullptr) Materialize();
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    if (it != index_.end()) {
      entries_[it->second].second = std::move(v);
      return;
    }
    index_[std::string(key)] = entries_.size();
    entries_.emplace_back(std::string(key), std::move(v));
    return;
  }
  for (auto& [k, val] : entries_) {
    if (k == key) {
      val = std::move(v);
      return;
    }
  }
  entries_.emplace_back(std::string(key), std::move(v));
  if (entries_.size() > kIndexThreshold) Reindex();
}

void Object::Erase(std::string_view key) {
  if (lazy_ != nullptr) Materialize();
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].first == key) {
      entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
      if (!index_.empty()) Reindex();
      return;
    }
  }
}

Value FromJsonLazy(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return Value::Null();
    case Json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case Json::value_t::number_integer:
      return Value::Number(static_cast<double>(j.get<int64_t>()));
    case Json::value_t::number_unsigned:
      return Value::Number(static_cast<double>(j.get<uint64_t>()));
    case Json::value_t::number_float:
      return Value::Number(j.get<double>());
    case Json::value_t::string:
      return Value::String(j.get_ref<const std::string&>());
    case Json::value_t::array:
      return Value::FromArray(std::make_shared<Array>(&j));
    case Json::value_t::object:
      return Value::FromObject(std::make_shared<Object>(&j));
    default:
      return Value();
  }
}

namespace {

// ToJson with a budget of JSON nodes: a value that shares parts (the same array held twice, at
// every level) expands exponentially when copied out.
Json ToJsonCounted(const Value& v, size_t* nodes) {
  if (++*nodes > kMaxResultNodes) {
    Throw("U1001",
          "Result too large: more than " + std::to_string(kMaxResultNodes) + " JSON values");
  }
  ChargeWork(1);
  switch (v.type()) {
    case VType::kUndefined:
    case VType::kNull:
      return Json(nullptr);
    case VType::kBool:
      return Json(v.boolean());
    case VType::kNumber: {
      double d = v.num();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740992.0) {
        return Json(static_cast<int64_t>(d));
      }
      if (!std::isfinite(d)) return Json(nullptr);
      return Json(d);
    }
    case VType::kString:
      return Json(v.str());
    case VType::kArray: {
      Json out = Json::array();
      for (const auto& item : v.arr().items()) {
        if (item.defined()) out.push_back(ToJsonCounted(item, nodes));
      }
      return out;
    }
    case VType::kObject: {
      Json out = Json::object();
      // Keys of an Object are unique: append without the linear key search of Json's
      // ordered_map (operator[] would make a big object quadratic).
      auto& members = static_cast<Json::object_t::Container&>(out.get_ref<Json::object_t&>());
      for (const auto& [k, item] : v.obj().entries()) {
        if (item.defined()) members.emplace_back(k, ToJsonCounted(item, nodes));
      }
      return out;
    }
    case VType::kFunction:
      return Json("");
  }
  return Json(nullptr);
}

}  // namespace

Json ToJson(const Value& v) {
  size_t nodes = 0;
  return ToJsonCounted(v, &nodes);
}

}  // namespace engage::jsonata::internal
