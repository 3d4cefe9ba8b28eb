#include "engage/flow/definition.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace engage::flow {

const char* StateTypeName(StateType t) {
  switch (t) {
    case StateType::kPass:
      return "Pass";
    case StateType::kTask:
      return "Task";
    case StateType::kChoice:
      return "Choice";
    case StateType::kWait:
      return "Wait";
    case StateType::kSucceed:
      return "Succeed";
    case StateType::kFail:
      return "Fail";
    case StateType::kParallel:
      return "Parallel";
    case StateType::kMap:
      return "Map";
  }
  return "?";
}

std::string Diagnostic::ToString() const {
  if (state.empty()) return fmt::format("{}: {}", pointer.empty() ? "/" : pointer, message);
  return fmt::format("{} (state '{}'): {}", pointer, state, message);
}

Template::Template() = default;

const State* StateMachine::Find(std::string_view name) const {
  auto it = states.find(name);
  return it == states.end() ? nullptr : &it->second;
}

namespace {

// An integer (or a float with no fraction) from `lo` to `hi`; never converts out of range.
bool IsIntegerInRange(const Json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    return u <= static_cast<uint64_t>(hi) && static_cast<int64_t>(u) >= lo;
  }
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    return i >= lo && i <= hi;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(lo) &&
           d <= static_cast<double>(hi);
  }
  return false;
}

// JSON-pointer escaping of one reference token.
std::string PointerToken(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

const std::set<std::string, std::less<>> kJsonPathOnly = {"InputPath",
                                                          "OutputPath",
                                                          "ResultPath",
                                                          "Parameters",
                                                          "ResultSelector",
                                                          "ItemsPath",
                                                          "SecondsPath",
                                                          "TimestampPath",
                                                          "ErrorPath",
                                                          "CausePath",
                                                          "TimeoutSecondsPath",
                                                          "HeartbeatSecondsPath",
                                                          "MaxConcurrencyPath",
                                                          "ToleratedFailureCountPath",
                                                          "ToleratedFailurePercentagePath"};
const std::set<std::string, std::less<>> kJsonataOnly = {"Arguments", "Output", "Items"};

std::set<std::string, std::less<>> AllowedFields(StateType t) {
  std::set<std::string, std::less<>> f = {"Type", "Comment", "QueryLanguage"};
  auto add = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) f.insert(n);
  };
  switch (t) {
    case StateType::kPass:
      add({"Next", "End", "InputPath", "OutputPath", "ResultPath", "Parameters", "Result", "Output",
           "Assign"});
      break;
    case StateType::kTask:
      add({"Next", "End", "InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector",
           "Retry", "Catch", "Resource", "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds",
           "HeartbeatSecondsPath", "Credentials", "Arguments", "Output", "Assign"});
      break;
    case StateType::kChoice:
      add({"Choices", "Default", "InputPath", "OutputPath", "Output", "Assign"});
      break;
    case StateType::kWait:
      add({"Next", "End", "InputPath", "OutputPath", "Seconds", "SecondsPath", "Timestamp",
           "TimestampPath", "Output", "Assign"});
      break;
    case StateType::kSucceed:
      add({"InputPath", "OutputPath", "Output"});
      break;
    case StateType::kFail:
      add({"Error", "ErrorPath", "Cause", "CausePath"});
      break;
    case StateType::kParallel:
      add({"Next", "End", "InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector",
           "Retry", "Catch", "Branches", "Arguments", "Output", "Assign"});
      break;
    case StateType::kMap:
      add({"Next",
           "End",
           "InputPath",
           "OutputPath",
           "ResultPath",
           "Parameters",
           "ItemSelector",
           "ResultSelector",
           "Retry",
           "Catch",
           "Iterator",
           "ItemProcessor",
           "ItemsPath",
           "Items",
           "MaxConcurrency",
           "MaxConcurrencyPath",
           "ItemReader",
           "ItemBatcher",
           "ResultWriter",
           "ToleratedFailureCount",
           "ToleratedFailureCountPath",
           "ToleratedFailurePercentage",
           "ToleratedFailurePercentagePath",
           "Label",
           "Arguments",
           "Output",
           "Assign"});
      break;
  }
  return f;
}

const std::set<std::string, std::less<>> kComparators = {"StringEquals",
                                                         "StringLessThan",
                                                         "StringGreaterThan",
                                                         "StringLessThanEquals",
                                                         "StringGreaterThanEquals",
                                                         "StringMatches",
                                                         "NumericEquals",
                                                         "NumericLessThan",
                                                         "NumericGreaterThan",
                                                         "NumericLessThanEquals",
                                                         "NumericGreaterThanEquals",
                                                         "BooleanEquals",
                                                         "TimestampEquals",
                                                         "TimestampLessThan",
                                                         "TimestampGreaterThan",
                                                         "TimestampLessThanEquals",
                                                         "TimestampGreaterThanEquals",
                                                         "IsNull",
                                                         "IsPresent",
                                                         "IsNumeric",
                                                         "IsString",
                                                         "IsBoolean",
                                                         "IsTimestamp"};

class Parser {
 public:
  explicit Parser(std::vector<Diagnostic>* problems) : problems_(problems) {}

  void Problem(const std::string& state, const std::string& pointer, std::string message) {
    problems_->push_back(Diagnostic{state, pointer, std::move(message)});
  }

  std::shared_ptr<StateMachine> ParseMachine(const Json& j, const std::string& ptr,
                                             QueryLanguage inherited, bool top_level) {
    auto sm = std::make_shared<StateMachine>();
    sm->language = inherited;
    if (!j.is_object()) {
      Problem("", ptr, "a state machine must be a JSON object");
      return sm;
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      bool ok = k == "StartAt" || k == "States" || k == "Comment" ||
                (top_level && (k == "Version" || k == "TimeoutSeconds" || k == "QueryLanguage")) ||
                (!top_level && (k == "ProcessorConfig" || k == "QueryLanguage"));
      if (!ok) Problem("", ptr + "/" + PointerToken(k), fmt::format("unknown field '{}'", k));
    }
    if (auto it = j.find("QueryLanguage"); it != j.end()) {
      if (*it == "JSONata") {
        sm->language = QueryLanguage::kJsonata;
      } else if (*it == "JSONPath") {
        if (inherited == QueryLanguage::kJsonata && !top_level) {
          Problem("", ptr + "/QueryLanguage",
                  "a JSONata state machine cannot contain a JSONPath processor");
        }
        sm->language = QueryLanguage::kJsonPath;
      } else {
        Problem("", ptr + "/QueryLanguage", "QueryLanguage must be \"JSONPath\" or \"JSONata\"");
      }
    }
    if (auto it = j.find("Comment"); it != j.end() && it->is_string()) sm->comment = *it;
    if (auto it = j.find("TimeoutSeconds"); it != j.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
          it->get<int64_t>() > kMaxTimeoutSeconds) {
        Problem("", ptr + "/TimeoutSeconds",
                fmt::format("TimeoutSeconds must be an integer from 0 to {}", kMaxTimeoutSeconds));
      } else {
        sm->timeout_seconds = it->get<int64_t>();
      }
    }
    auto start = j.find("StartAt");
    if (start == j.end() || !start->is_string()) {
      Problem("", ptr + "/StartAt", "StartAt is required and must be a string");
    } else {
      sm->start_at = *start;
    }
    auto states = j.find("States");
    if (states == j.end() || !states->is_object() || states->empty()) {
      Problem("", ptr + "/States", "States is required and must be a non-empty object");
      return sm;
    }
    for (auto it = states->begin(); it != states->end(); ++it) {
      if (it.key().empty() || it.key().size() > 80) {
        Problem(it.key(), ptr + "/States/" + PointerToken(it.key()),
                "state names must be 1 to 80 characters long");
      }
      State st =
          ParseState(it.key(), it.value(), ptr + "/States/" + PointerToken(it.key()), sm->language);
      sm->order.push_back(it.key());
      sm->states.emplace(it.key(), std::move(st));
    }
    if (!sm->start_at.empty() && sm->Find(sm->start_at) == nullptr) {
      Problem("", ptr + "/StartAt",
              fmt::format("StartAt names an unknown state '{}'", sm->start_at));
    }
    CheckTransitions(*sm, ptr);
    return sm;
  }

 private:
  // Every Next/Default/Catch target exists; every state is reachable; a terminal exists.
  void CheckTransitions(const StateMachine& sm, const std::string& ptr) {
    auto check_target = [&](const State& st, const std::string& target, const std::string& where) {
      if (!target.empty() && sm.Find(target) == nullptr) {
        Problem(st.name, ptr + "/States/" + PointerToken(st.name) + where,
                fmt::format("transition to an unknown state '{}'", target));
      }
    };
    for (const auto& [name, st] : sm.states) {
      check_target(st, st.next, "/Next");
      check_target(st, st.default_next, "/Default");
      for (size_t i = 0; i < st.choices.size(); ++i) {
        check_target(st, st.choices[i].next, fmt::format("/Choices/{}/Next", i));
      }
      for (size_t i = 0; i < st.catchers.size(); ++i) {
        check_target(st, st.catchers[i].next, fmt::format("/Catch/{}/Next", i));
      }
    }
    if (sm.Find(sm.start_at) == nullptr) return;
    std::set<std::string, std::less<>> seen;
    std::vector<std::string> todo = {sm.start_at};
    bool terminal = false;
    while (!todo.empty()) {
      std::string name = todo.back();
      todo.pop_back();
      const State* st = sm.Find(name);
      if (st == nullptr || !seen.insert(name).second) continue;
      if (st->end || st->type == StateType::kSucceed || st->type == StateType::kFail) {
        terminal = true;
      }
      auto push = [&](const std::string& n) {
        if (!n.empty()) todo.push_back(n);
      };
      push(st->next);
      push(st->default_next);
      for (const ChoiceRule& r : st->choices) push(r.next);
      for (const Catcher& c : st->catchers) push(c.next);
    }
    for (const std::string& name : sm.order) {
      if (!seen.count(name)) {
        Problem(name, ptr + "/States/" + PointerToken(name),
                fmt::format("state '{}' is not reachable from StartAt", name));
      }
    }
    if (!terminal) {
      Problem("", ptr + "/States",
              "no terminal state is reachable (a state with End: true, Succeed or Fail)");
    }
  }

  // Compiles a JSONata field value: "{% expr %}" strings become expressions, anything else is
  // a literal (walking into objects and arrays).
  Template CompileJsonata(const Json& v, const std::string& field, const std::string& state,
                          const std::string& ptr) {
    Template t;
    t.field = field;
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (s.size() >= 4 && s.compare(0, 2, "{%") == 0 && s.compare(s.size() - 2, 2, "%}") == 0) {
        std::string text = s.substr(2, s.size() - 4);
        size_t b = text.find_first_not_of(" \t\r\n");
        size_t e = text.find_last_not_of(" \t\r\n");
        text = b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
        auto expr = jsonata::Expression::Compile(text);
        if (!expr.ok()) {
          Problem(state, ptr,
                  fmt::format("invalid JSONata expression '{}': {} {}", text, expr.error().code,
                              expr.error().message));
          t.literal = v;
          return t;
        }
        t.kind = Template::Kind::kJsonata;
        t.source = text;
        t.expr = std::make_shared<jsonata::Expression>(std::move(expr).value());
        return t;
      }
      t.literal = v;
      return t;
    }
    if (v.is_object()) {
      t.kind = Template::Kind::kObject;
      bool dynamic = false;
      for (auto it = v.begin(); it != v.end(); ++it) {
        Template child =
            CompileJsonata(it.value(), field.empty() ? it.key() : field + "/" + it.key(), state,
                           ptr + "/" + PointerToken(it.key()));
        dynamic |= child.kind != Template::Kind::kLiteral;
        t.fields.emplace_back(it.key(), std::move(child));
      }
      if (!dynamic) {
        t = Template{};
        t.field = field;
        t.literal = v;
      }
      return t;
    }
    if (v.is_array()) {
      t.kind = Template::Kind::kArray;
      bool dynamic = false;
      for (size_t i = 0; i < v.size(); ++i) {
        Template child = CompileJsonata(v[i], field, state, ptr + "/" + std::to_string(i));
        dynamic |= child.kind != Template::Kind::kLiteral;
        t.items.push_back(std::move(child));
      }
      if (!dynamic) {
        t = Template{};
        t.field = field;
        t.literal = v;
      }
      return t;
    }
    t.literal = v;
    return t;
  }

  // A single path-or-intrinsic string (the value of a "x.$" key, ErrorPath, ...).
  Template CompilePathValue(const std::string& text, const std::string& field,
                            const std::string& state, const std::string& ptr) {
    Template t;
    t.field = field;
    t.source = text;
    if (Intrinsic::Looks(text)) {
      auto f = Intrinsic::Parse(text);
      if (!f.ok()) {
        Problem(state, ptr, f.status().message());
        return t;
      }
      t.kind = Template::Kind::kIntrinsic;
      t.intrinsic = std::make_shared<Intrinsic>(std::move(f).value());
      return t;
    }
    auto p = JsonPath::Parse(text);
    if (!p.ok()) {
      Problem(state, ptr, p.status().message());
      return t;
    }
    t.kind = Template::Kind::kPath;
    t.path = std::make_shared<JsonPath>(std::move(p).value());
    return t;
  }

  // Parameters-style template: keys ending in ".$" hold a path or intrinsic call.
  Template CompileJsonPathTemplate(const Json& v, const std::string& field,
                                   const std::string& state, const std::string& ptr) {
    Template t;
    t.field = field;
    if (v.is_object()) {
      t.kind = Template::Kind::kObject;
      bool dynamic = false;
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string& key = it.key();
        std::string child_ptr = ptr + "/" + PointerToken(key);
        if (key.size() > 2 && key.compare(key.size() - 2, 2, ".$") == 0) {
          std::string name = key.substr(0, key.size() - 2);
          if (!it->is_string()) {
            Problem(state, child_ptr,
                    fmt::format("the value of '{}' must be a JSONPath or intrinsic function", key));
            continue;
          }
          t.fields.emplace_back(name, CompilePathValue(*it, key, state, child_ptr));
          dynamic = true;
        } else {
          Template child = CompileJsonPathTemplate(*it, key, state, child_ptr);
          dynamic |= child.kind != Template::Kind::kLiteral;
          t.fields.emplace_back(key, std::move(child));
        }
      }
      if (!dynamic) {
        t = Template{};
        t.field = field;
        t.literal = v;
      }
      return t;
    }
    if (v.is_array()) {
      t.kind = Template::Kind::kArray;
      bool dynamic = false;
      for (size_t i = 0; i < v.size(); ++i) {
        Template child = CompileJsonPathTemplate(v[i], field, state, ptr + "/" + std::to_string(i));
        dynamic |= child.kind != Template::Kind::kLiteral;
        t.items.push_back(std::move(child));
      }
      if (!dynamic) {
        t = Template{};
        t.field = field;
        t.literal = v;
      }
      return t;
    }
    t.literal = v;
    return t;
  }

  std::optional<JsonPath> ParsePathField(const Json& st, const char* field, bool* is_null,
                                         const std::string& name, const std::string& ptr) {
    auto it = st.find(field);
    if (it == st.end()) return std::nullopt;
    if (it->is_null()) {
      if (is_null != nullptr) {
        *is_null = true;
      } else {
        Problem(name, ptr + "/" + field, fmt::format("{} cannot be null", field));
      }
      return std::nullopt;
    }
    if (!it->is_string()) {
      Problem(name, ptr + "/" + field, fmt::format("{} must be a JSONPath string", field));
      return std::nullopt;
    }
    auto p = JsonPath::Parse(it->get<std::string>());
    if (!p.ok()) {
      Problem(name, ptr + "/" + field, p.status().message());
      return std::nullopt;
    }
    return std::move(p).value();
  }

  // A field that is a literal integer from `min_value` to `max_value` in JSONPath mode, or a
  // literal/expression in JSONata mode. (A whole number written as 5.0 counts as an integer.)
  std::optional<Template> NumberField(const Json& j, const char* field, QueryLanguage lang,
                                      const std::string& name, const std::string& ptr,
                                      int64_t min_value, int64_t max_value) {
    auto it = j.find(field);
    if (it == j.end()) return std::nullopt;
    if (lang == QueryLanguage::kJsonata && it->is_string()) {
      return CompileJsonata(*it, field, name, ptr + "/" + field);
    }
    if (!IsIntegerInRange(*it, min_value, max_value)) {
      Problem(name, ptr + "/" + field,
              fmt::format("{} must be an integer from {} to {}", field, min_value, max_value));
      return std::nullopt;
    }
    Template t;
    t.field = field;
    t.literal = *it;
    return t;
  }

  void ParseErrorEquals(const Json& j, std::vector<std::string>* out, const std::string& name,
                        const std::string& ptr, bool last) {
    auto it = j.find("ErrorEquals");
    if (it == j.end() || !it->is_array() || it->empty()) {
      Problem(name, ptr + "/ErrorEquals", "ErrorEquals must be a non-empty array of strings");
      return;
    }
    for (const Json& e : *it) {
      if (!e.is_string()) {
        Problem(name, ptr + "/ErrorEquals", "ErrorEquals must contain strings");
        return;
      }
      out->push_back(e);
    }
    if (std::find(out->begin(), out->end(), "States.ALL") != out->end()) {
      if (out->size() != 1) {
        Problem(name, ptr + "/ErrorEquals", "States.ALL must appear alone in ErrorEquals");
      } else if (!last) {
        Problem(name, ptr + "/ErrorEquals", "a rule with States.ALL must be the last one");
      }
    }
  }

  void ParseRetry(const Json& arr, State* st, const std::string& ptr) {
    if (!arr.is_array()) {
      Problem(st->name, ptr, "Retry must be an array");
      return;
    }
    for (size_t i = 0; i < arr.size(); ++i) {
      const Json& r = arr[i];
      std::string rp = ptr + "/" + std::to_string(i);
      if (!r.is_object()) {
        Problem(st->name, rp, "a retrier must be an object");
        continue;
      }
      Retrier rt;
      ParseErrorEquals(r, &rt.error_equals, st->name, rp, i + 1 == arr.size());
      for (auto it = r.begin(); it != r.end(); ++it) {
        const std::string& k = it.key();
        const Json& v = it.value();
        if (k == "ErrorEquals" || k == "Comment") continue;
        if (k == "IntervalSeconds") {
          if (!IsIntegerInRange(v, 1, kMaxTimeoutSeconds)) {
            Problem(
                st->name, rp + "/IntervalSeconds",
                fmt::format("IntervalSeconds must be an integer from 1 to {}", kMaxTimeoutSeconds));
          } else {
            rt.interval_seconds = v.get<double>();
          }
        } else if (k == "MaxAttempts") {
          if (!IsIntegerInRange(v, 0, kMaxTimeoutSeconds)) {
            Problem(st->name, rp + "/MaxAttempts",
                    fmt::format("MaxAttempts must be an integer from 0 to {}", kMaxTimeoutSeconds));
          } else {
            rt.max_attempts = v.get<int>();
          }
        } else if (k == "BackoffRate") {
          if (!v.is_number() || !(v.get<double>() >= 1.0) || !std::isfinite(v.get<double>())) {
            Problem(st->name, rp + "/BackoffRate", "BackoffRate must be a finite number >= 1.0");
          } else {
            rt.backoff_rate = v.get<double>();
          }
        } else if (k == "MaxDelaySeconds") {
          if (!IsIntegerInRange(v, 1, kMaxRetryDelaySeconds)) {
            Problem(st->name, rp + "/MaxDelaySeconds",
                    fmt::format("MaxDelaySeconds must be an integer from 1 to {}",
                                kMaxRetryDelaySeconds));
          } else {
            rt.max_delay_seconds = v.get<double>();
          }
        } else if (k == "JitterStrategy") {
          if (v != "FULL" && v != "NONE") {
            Problem(st->name, rp + "/JitterStrategy", "JitterStrategy must be FULL or NONE");
          } else {
            rt.full_jitter = v == "FULL";
          }
        } else {
          Problem(st->name, rp + "/" + PointerToken(k),
                  fmt::format("unknown retrier field '{}'", k));
        }
      }
      st->retry.push_back(std::move(rt));
    }
  }

  void ParseCatch(const Json& arr, State* st, const std::string& ptr) {
    if (!arr.is_array()) {
      Problem(st->name, ptr, "Catch must be an array");
      return;
    }
    for (size_t i = 0; i < arr.size(); ++i) {
      const Json& c = arr[i];
      std::string cp = ptr + "/" + std::to_string(i);
      if (!c.is_object()) {
        Problem(st->name, cp, "a catcher must be an object");
        continue;
      }
      Catcher ct;
      ParseErrorEquals(c, &ct.error_equals, st->name, cp, i + 1 == arr.size());
      for (auto it = c.begin(); it != c.end(); ++it) {
        const std::string& k = it.key();
        if (k == "ErrorEquals" || k == "Comment") continue;
        if (k == "Next") {
          if (!it->is_string()) {
            Problem(st->name, cp + "/Next", "Next must be a string");
          } else {
            ct.next = *it;
          }
        } else if (k == "ResultPath" && st->language == QueryLanguage::kJsonPath) {
          ct.result_path = ParsePathField(c, "ResultPath", &ct.result_path_null, st->name, cp);
        } else if (k == "Output" && st->language == QueryLanguage::kJsonata) {
          ct.output = CompileJsonata(*it, "Output", st->name, cp + "/Output");
        } else if (k == "Assign") {
          ct.assign = st->language == QueryLanguage::kJsonata
                          ? CompileJsonata(*it, "Assign", st->name, cp + "/Assign")
                          : CompileJsonPathTemplate(*it, "Assign", st->name, cp + "/Assign");
        } else {
          Problem(st->name, cp + "/" + PointerToken(k),
                  fmt::format("field '{}' is not valid in a {} catcher", k,
                              st->language == QueryLanguage::kJsonata ? "JSONata" : "JSONPath"));
        }
      }
      if (ct.next.empty()) Problem(st->name, cp + "/Next", "a catcher needs Next");
      st->catchers.push_back(std::move(ct));
    }
  }

  ChoiceRule ParseRule(const Json& r, const State& st, const std::string& ptr, bool top,
                       QueryLanguage lang) {
    ChoiceRule rule;
    if (!r.is_object()) {
      Problem(st.name, ptr, "a choice rule must be an object");
      return rule;
    }
    if (top) {
      auto next = r.find("Next");
      if (next == r.end() || !next->is_string()) {
        Problem(st.name, ptr + "/Next", "a choice rule needs Next");
      } else {
        rule.next = *next;
      }
      if (auto a = r.find("Assign"); a != r.end()) {
        rule.assign = lang == QueryLanguage::kJsonata
                          ? CompileJsonata(*a, "Assign", st.name, ptr + "/Assign")
                          : CompileJsonPathTemplate(*a, "Assign", st.name, ptr + "/Assign");
      }
      if (auto o = r.find("Output"); o != r.end()) {
        if (lang != QueryLanguage::kJsonata) {
          Problem(st.name, ptr + "/Output", "Output is only valid in JSONata states");
        } else {
          rule.output = CompileJsonata(*o, "Output", st.name, ptr + "/Output");
        }
      }
    } else if (r.contains("Next")) {
      Problem(st.name, ptr + "/Next", "Next is only allowed on top-level choice rules");
    }
    if (lang == QueryLanguage::kJsonata) {
      auto cond = r.find("Condition");
      if (cond == r.end()) {
        Problem(st.name, ptr, "a JSONata choice rule needs Condition");
        return rule;
      }
      for (auto it = r.begin(); it != r.end(); ++it) {
        if (it.key() != "Condition" && it.key() != "Next" && it.key() != "Assign" &&
            it.key() != "Output" && it.key() != "Comment") {
          Problem(st.name, ptr + "/" + PointerToken(it.key()),
                  fmt::format("field '{}' is not valid in a JSONata choice rule", it.key()));
        }
      }
      rule.kind = ChoiceRule::Kind::kJsonata;
      if (cond->is_boolean()) {
        Template t;
        t.field = "Condition";
        t.literal = *cond;
        rule.condition = std::move(t);
      } else {
        rule.condition = CompileJsonata(*cond, "Condition", st.name, ptr + "/Condition");
        if (rule.condition->kind != Template::Kind::kJsonata) {
          Problem(st.name, ptr + "/Condition",
                  "Condition must be a boolean or a {% ... %} expression");
        }
      }
      return rule;
    }
    if (r.contains("Condition")) {
      Problem(st.name, ptr + "/Condition", "Condition is only valid in JSONata states");
    }
    if (auto it = r.find("And"); it != r.end() || r.contains("Or")) {
      const char* key = it != r.end() ? "And" : "Or";
      const Json& arr = r[key];
      rule.kind = it != r.end() ? ChoiceRule::Kind::kAnd : ChoiceRule::Kind::kOr;
      if (!arr.is_array() || arr.empty()) {
        Problem(st.name, ptr + "/" + key, fmt::format("{} must be a non-empty array", key));
        return rule;
      }
      for (size_t i = 0; i < arr.size(); ++i) {
        rule.children.push_back(
            ParseRule(arr[i], st, ptr + "/" + key + "/" + std::to_string(i), false, lang));
      }
      return rule;
    }
    if (auto it = r.find("Not"); it != r.end()) {
      rule.kind = ChoiceRule::Kind::kNot;
      rule.children.push_back(ParseRule(*it, st, ptr + "/Not", false, lang));
      return rule;
    }
    rule.kind = ChoiceRule::Kind::kCompare;
    auto var = r.find("Variable");
    if (var == r.end() || !var->is_string()) {
      Problem(st.name, ptr + "/Variable", "a comparison needs a Variable path");
    } else {
      auto p = JsonPath::Parse(var->get<std::string>());
      if (!p.ok()) {
        Problem(st.name, ptr + "/Variable", p.status().message());
      } else {
        rule.variable = std::move(p).value();
      }
    }
    int ops = 0;
    for (auto it = r.begin(); it != r.end(); ++it) {
      const std::string& k = it.key();
      if (k == "Variable" || k == "Next" || k == "Assign" || k == "Comment" || k == "Output") {
        continue;
      }
      std::string base = k;
      bool is_path = k.size() > 4 && k.compare(k.size() - 4, 4, "Path") == 0;
      if (is_path) base = k.substr(0, k.size() - 4);
      if (!kComparators.count(base) || (is_path && base.compare(0, 2, "Is") == 0)) {
        Problem(st.name, ptr + "/" + PointerToken(k), fmt::format("unknown comparison '{}'", k));
        continue;
      }
      ++ops;
      rule.op = base;
      const Json& v = it.value();
      std::string vp = ptr + "/" + PointerToken(k);
      if (is_path) {
        if (!v.is_string()) {
          Problem(st.name, vp, fmt::format("{} must be a JSONPath string", k));
          continue;
        }
        auto p = JsonPath::Parse(v.get<std::string>());
        if (!p.ok()) {
          Problem(st.name, vp, p.status().message());
        } else {
          rule.path_operand = std::move(p).value();
        }
        continue;
      }
      rule.operand = v;
      bool ok = true;
      if (base.compare(0, 2, "Is") == 0 || base == "BooleanEquals") {
        ok = v.is_boolean();
      } else if (base.compare(0, 7, "Numeric") == 0) {
        ok = v.is_number();
      } else if (base.compare(0, 6, "String") == 0) {
        ok = v.is_string();
      } else if (base.compare(0, 9, "Timestamp") == 0) {
        ok = v.is_string();
      }
      if (!ok) Problem(st.name, vp, fmt::format("{} has a value of the wrong type", k));
    }
    if (ops != 1) {
      Problem(st.name, ptr, "a comparison needs exactly one comparison operator");
    }
    return rule;
  }

  State ParseState(const std::string& name, const Json& j, const std::string& ptr,
                   QueryLanguage inherited) {
    State st;
    st.name = name;
    st.language = inherited;
    if (!j.is_object()) {
      Problem(name, ptr, "a state must be a JSON object");
      return st;
    }
    auto type = j.find("Type");
    static const std::pair<const char*, StateType> kTypes[] = {
        {"Pass", StateType::kPass},         {"Task", StateType::kTask},
        {"Choice", StateType::kChoice},     {"Wait", StateType::kWait},
        {"Succeed", StateType::kSucceed},   {"Fail", StateType::kFail},
        {"Parallel", StateType::kParallel}, {"Map", StateType::kMap}};
    bool known = false;
    if (type != j.end() && type->is_string()) {
      for (const auto& [tname, t] : kTypes) {
        if (*type == tname) {
          st.type = t;
          known = true;
        }
      }
    }
    if (!known) {
      Problem(name, ptr + "/Type",
              "Type must be one of Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map");
      return st;
    }
    if (auto ql = j.find("QueryLanguage"); ql != j.end()) {
      if (*ql == "JSONata") {
        st.language = QueryLanguage::kJsonata;
      } else if (*ql == "JSONPath") {
        if (inherited == QueryLanguage::kJsonata) {
          Problem(name, ptr + "/QueryLanguage",
                  "a state cannot use JSONPath when the state machine uses JSONata");
        }
        st.language = QueryLanguage::kJsonPath;
      } else {
        Problem(name, ptr + "/QueryLanguage", "QueryLanguage must be \"JSONPath\" or \"JSONata\"");
      }
    }
    const bool jsonata = st.language == QueryLanguage::kJsonata;
    auto allowed = AllowedFields(st.type);
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      std::string fp = ptr + "/" + PointerToken(k);
      if (!allowed.count(k)) {
        Problem(name, fp,
                fmt::format("field '{}' is not supported by {} states", k, StateTypeName(st.type)));
      } else if (jsonata && kJsonPathOnly.count(k)) {
        Problem(name, fp, fmt::format("field '{}' is JSONPath-only and the state uses JSONata", k));
      } else if (!jsonata && kJsonataOnly.count(k)) {
        Problem(name, fp, fmt::format("field '{}' is JSONata-only and the state uses JSONPath", k));
      }
    }
    if (auto c = j.find("Comment"); c != j.end() && c->is_string()) st.comment = *c;

    // Transitions.
    bool terminal_type = st.type == StateType::kSucceed || st.type == StateType::kFail ||
                         st.type == StateType::kChoice;
    auto next = j.find("Next");
    auto end = j.find("End");
    if (next != j.end()) {
      if (!next->is_string()) {
        Problem(name, ptr + "/Next", "Next must be a string");
      } else {
        st.next = *next;
      }
    }
    if (end != j.end()) {
      if (!end->is_boolean()) {
        Problem(name, ptr + "/End", "End must be a boolean");
      } else {
        st.end = *end;
      }
    }
    if (!terminal_type) {
      if (st.next.empty() && !st.end) {
        Problem(name, ptr, "the state needs Next or \"End\": true");
      } else if (!st.next.empty() && st.end) {
        Problem(name, ptr, "the state cannot have both Next and \"End\": true");
      }
    }

    // Data flow.
    if (!jsonata) {
      st.input_path = ParsePathField(j, "InputPath", &st.input_path_null, name, ptr);
      st.output_path = ParsePathField(j, "OutputPath", &st.output_path_null, name, ptr);
      st.result_path = ParsePathField(j, "ResultPath", &st.result_path_null, name, ptr);
      if (st.result_path && st.result_path->root() != JsonPath::Root::kInput) {
        Problem(name, ptr + "/ResultPath", "ResultPath must start with '$.' or be '$'");
      } else if (st.result_path && !st.result_path->definite()) {
        Problem(name, ptr + "/ResultPath", "ResultPath must name a single node");
      }
      const char* params_key =
          st.type == StateType::kMap && j.contains("ItemSelector") ? "ItemSelector" : "Parameters";
      if (auto p = j.find(params_key); p != j.end()) {
        st.parameters = CompileJsonPathTemplate(*p, params_key, name, ptr + "/" + params_key);
      }
      if (auto p = j.find("ResultSelector"); p != j.end()) {
        st.result_selector =
            CompileJsonPathTemplate(*p, "ResultSelector", name, ptr + "/ResultSelector");
      }
      if (auto a = j.find("Assign"); a != j.end()) {
        st.assign = CompileJsonPathTemplate(*a, "Assign", name, ptr + "/Assign");
      }
    } else {
      if (auto p = j.find("Arguments"); p != j.end()) {
        st.arguments = CompileJsonata(*p, "Arguments", name, ptr + "/Arguments");
      }
      if (auto p = j.find("ItemSelector"); p != j.end() && st.type == StateType::kMap) {
        st.arguments = CompileJsonata(*p, "ItemSelector", name, ptr + "/ItemSelector");
      }
      if (auto p = j.find("Output"); p != j.end()) {
        st.output = CompileJsonata(*p, "Output", name, ptr + "/Output");
      }
      if (auto a = j.find("Assign"); a != j.end()) {
        st.assign = CompileJsonata(*a, "Assign", name, ptr + "/Assign");
      }
    }
    if (auto a = j.find("Assign"); a != j.end() && !a->is_object()) {
      Problem(name, ptr + "/Assign", "Assign must be an object");
    }
    if (auto r = j.find("Result"); r != j.end()) st.result = *r;
    if (auto r = j.find("Retry"); r != j.end()) ParseRetry(*r, &st, ptr + "/Retry");
    if (auto c = j.find("Catch"); c != j.end()) ParseCatch(*c, &st, ptr + "/Catch");

    switch (st.type) {
      case StateType::kTask:
        ParseTask(j, &st, ptr);
        break;
      case StateType::kChoice:
        ParseChoice(j, &st, ptr);
        break;
      case StateType::kWait:
        ParseWait(j, &st, ptr);
        break;
      case StateType::kFail:
        ParseFail(j, &st, ptr);
        break;
      case StateType::kParallel:
        ParseParallel(j, &st, ptr);
        break;
      case StateType::kMap:
        ParseMap(j, &st, ptr);
        break;
      default:
        break;
    }
    return st;
  }

  void ParseTask(const Json& j, State* st, const std::string& ptr) {
    auto r = j.find("Resource");
    if (r == j.end() || !r->is_string() || r->get_ref<const std::string&>().empty()) {
      Problem(st->name, ptr + "/Resource", "a Task needs a Resource string");
    } else {
      st->resource = *r;
    }
    st->timeout_seconds =
        NumberField(j, "TimeoutSeconds", st->language, st->name, ptr, 1, kMaxTimeoutSeconds);
    st->heartbeat_seconds =
        NumberField(j, "HeartbeatSeconds", st->language, st->name, ptr, 1, kMaxTimeoutSeconds);
    if (auto p = j.find("TimeoutSecondsPath"); p != j.end() && p->is_string()) {
      st->timeout_seconds =
          CompilePathValue(*p, "TimeoutSecondsPath", st->name, ptr + "/TimeoutSecondsPath");
    }
    if (auto p = j.find("HeartbeatSecondsPath"); p != j.end() && p->is_string()) {
      st->heartbeat_seconds =
          CompilePathValue(*p, "HeartbeatSecondsPath", st->name, ptr + "/HeartbeatSecondsPath");
    }
    if (j.contains("TimeoutSeconds") && j.contains("TimeoutSecondsPath")) {
      Problem(st->name, ptr, "use TimeoutSeconds or TimeoutSecondsPath, not both");
    }
  }

  void ParseChoice(const Json& j, State* st, const std::string& ptr) {
    auto c = j.find("Choices");
    if (c == j.end() || !c->is_array() || c->empty()) {
      Problem(st->name, ptr + "/Choices", "Choices must be a non-empty array");
    } else {
      for (size_t i = 0; i < c->size(); ++i) {
        st->choices.push_back(
            ParseRule((*c)[i], *st, ptr + "/Choices/" + std::to_string(i), true, st->language));
      }
    }
    if (auto d = j.find("Default"); d != j.end()) {
      if (!d->is_string()) {
        Problem(st->name, ptr + "/Default", "Default must be a string");
      } else {
        st->default_next = *d;
      }
    }
  }

  void ParseWait(const Json& j, State* st, const std::string& ptr) {
    int n = 0;
    if (j.contains("Seconds")) {
      ++n;
      st->wait_seconds = NumberField(j, "Seconds", st->language, st->name, ptr, 0, kMaxWaitSeconds);
    }
    if (auto t = j.find("Timestamp"); t != j.end()) {
      ++n;
      if (st->language == QueryLanguage::kJsonata) {
        st->wait_timestamp = CompileJsonata(*t, "Timestamp", st->name, ptr + "/Timestamp");
      } else if (!t->is_string() || !ParseTimestampOk(*t)) {
        Problem(st->name, ptr + "/Timestamp", "Timestamp must be an ISO-8601 date-time string");
      } else {
        Template tt;
        tt.field = "Timestamp";
        tt.literal = *t;
        st->wait_timestamp = std::move(tt);
      }
    }
    if (j.contains("SecondsPath")) {
      ++n;
      st->seconds_path = ParsePathField(j, "SecondsPath", nullptr, st->name, ptr);
    }
    if (j.contains("TimestampPath")) {
      ++n;
      st->timestamp_path = ParsePathField(j, "TimestampPath", nullptr, st->name, ptr);
    }
    if (n != 1) {
      Problem(st->name, ptr,
              "a Wait needs exactly one of Seconds, Timestamp, SecondsPath or TimestampPath");
    }
  }

  static bool ParseTimestampOk(const Json& v);

  void ParseFail(const Json& j, State* st, const std::string& ptr) {
    auto one = [&](const char* lit, const char* path, std::optional<Template>* out,
                   bool* from_path) {
      auto l = j.find(lit);
      auto p = j.find(path);
      if (l != j.end() && p != j.end()) {
        Problem(st->name, ptr, fmt::format("use {} or {}, not both", lit, path));
      }
      if (l != j.end()) {
        if (st->language == QueryLanguage::kJsonata) {
          *out = CompileJsonata(*l, lit, st->name, ptr + "/" + lit);
        } else if (!l->is_string()) {
          Problem(st->name, ptr + "/" + lit, fmt::format("{} must be a string", lit));
        } else {
          Template t;
          t.field = lit;
          t.literal = *l;
          *out = std::move(t);
        }
      } else if (p != j.end()) {
        if (!p->is_string()) {
          Problem(st->name, ptr + "/" + path, fmt::format("{} must be a string", path));
          return;
        }
        *out = CompilePathValue(*p, path, st->name, ptr + "/" + path);
        *from_path = true;
      }
    };
    one("Error", "ErrorPath", &st->error, &st->error_from_path);
    one("Cause", "CausePath", &st->cause, &st->cause_from_path);
  }

  void ParseParallel(const Json& j, State* st, const std::string& ptr) {
    auto b = j.find("Branches");
    if (b == j.end() || !b->is_array() || b->empty()) {
      Problem(st->name, ptr + "/Branches", "Branches must be a non-empty array");
      return;
    }
    for (size_t i = 0; i < b->size(); ++i) {
      st->branches.push_back(
          ParseMachine((*b)[i], ptr + "/Branches/" + std::to_string(i), st->language, false));
    }
  }

  std::optional<JsonPath> MapPathField(const Json& j, const char* field, std::string* text,
                                       State* st, const std::string& ptr) {
    auto it = j.find(field);
    if (it == j.end()) return std::nullopt;
    if (it->is_string()) *text = *it;
    return ParsePathField(j, field, nullptr, st->name, ptr);
  }

  void ParseMap(const Json& j, State* st, const std::string& ptr) {
    const char* key = j.contains("ItemProcessor") ? "ItemProcessor" : "Iterator";
    auto proc = j.find(key);
    if (proc == j.end()) {
      Problem(st->name, ptr + "/ItemProcessor", "a Map needs an ItemProcessor");
    } else {
      if (proc->is_object()) {
        if (auto cfg = proc->find("ProcessorConfig"); cfg != proc->end() && cfg->is_object()) {
          if (auto mode = cfg->find("Mode"); mode != cfg->end()) {
            if (*mode == "DISTRIBUTED") {
              st->distributed = true;
            } else if (*mode != "INLINE") {
              Problem(st->name, ptr + "/" + key + "/ProcessorConfig/Mode",
                      "Mode must be INLINE or DISTRIBUTED");
            }
          }
        }
      }
      st->processor = ParseMachine(*proc, ptr + "/" + key, st->language, false);
    }
    if (st->language == QueryLanguage::kJsonPath) {
      st->items_path = ParsePathField(j, "ItemsPath", nullptr, st->name, ptr);
      st->max_concurrency_path =
          MapPathField(j, "MaxConcurrencyPath", &st->max_concurrency_path_text, st, ptr);
      st->tolerated_count_path =
          MapPathField(j, "ToleratedFailureCountPath", &st->tolerated_count_path_text, st, ptr);
      st->tolerated_pct_path =
          MapPathField(j, "ToleratedFailurePercentagePath", &st->tolerated_pct_path_text, st, ptr);
    } else if (auto it = j.find("Items"); it != j.end()) {
      st->items = CompileJsonata(*it, "Items", st->name, ptr + "/Items");
    }
    st->max_concurrency =
        NumberField(j, "MaxConcurrency", st->language, st->name, ptr, 0, kMaxMapCount);
    st->tolerated_failure_count =
        NumberField(j, "ToleratedFailureCount", st->language, st->name, ptr, 0, kMaxMapCount);
    // A percentage may have decimals.
    if (auto it = j.find("ToleratedFailurePercentage");
        it != j.end() && !(st->language == QueryLanguage::kJsonata && it->is_string())) {
      if (!it->is_number() || !(it->get<double>() >= 0 && it->get<double>() <= 100)) {
        Problem(st->name, ptr + "/ToleratedFailurePercentage",
                "ToleratedFailurePercentage must be a number from 0 to 100");
      } else {
        Template t;
        t.field = "ToleratedFailurePercentage";
        t.literal = *it;
        st->tolerated_failure_percentage = std::move(t);
      }
    } else {
      st->tolerated_failure_percentage =
          NumberField(j, "ToleratedFailurePercentage", st->language, st->name, ptr, 0, 100);
    }
    ParseMapIo(j, st, ptr);
    if (auto it = j.find("Label"); it != j.end() && it->is_string()) st->label = *it;
  }

  // Checks that `obj` (at `ptr`) has only `allowed` keys; reports the others.
  void OnlyKeys(const Json& obj, std::initializer_list<const char*> allowed, const State& st,
                const std::string& ptr) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      bool ok = false;
      for (const char* a : allowed) ok |= it.key() == a;
      if (!ok) {
        Problem(st.name, ptr + "/" + PointerToken(it.key()),
                fmt::format("unknown field '{}'", it.key()));
      }
    }
  }

  // A string field that must be one of `values` when present.
  void EnumField(const Json& obj, const char* field, std::initializer_list<const char*> values,
                 const State& st, const std::string& ptr) {
    auto it = obj.find(field);
    if (it == obj.end()) return;
    bool ok = false;
    std::string list;
    for (const char* v : values) {
      ok |= it->is_string() && *it == v;
      list += (list.empty() ? "" : ", ") + std::string(v);
    }
    if (!ok) {
      Problem(st.name, ptr + "/" + field, fmt::format("{} must be one of {}", field, list));
    }
  }

  // A count field: a non-negative integer, a JSONata expression in JSONata mode, or its Path
  // form in JSONPath mode.
  void CountField(const Json& obj, const char* field, const State& st, const std::string& ptr) {
    auto it = obj.find(field);
    if (it != obj.end()) {
      bool expr = st.language == QueryLanguage::kJsonata && it->is_string();
      if (expr) {
        (void)CompileJsonata(*it, field, st.name, ptr + "/" + field);
      } else if (!it->is_number_integer() || it->get<int64_t>() < 0) {
        Problem(st.name, ptr + "/" + field,
                fmt::format("{} must be a non-negative integer", field));
      }
    }
    std::string path_field = std::string(field) + "Path";
    if (auto p = obj.find(path_field); p != obj.end()) {
      if (st.language == QueryLanguage::kJsonata) {
        Problem(st.name, ptr + "/" + path_field,
                fmt::format("{} is a JSONPath field; use {} with an expression in JSONata",
                            path_field, field));
      } else if (!p->is_string() || !JsonPath::Parse(p->get<std::string>()).ok()) {
        Problem(st.name, ptr + "/" + path_field,
                fmt::format("{} must be a valid JSONPath", path_field));
      }
      if (it != obj.end()) {
        Problem(st.name, ptr + "/" + path_field,
                fmt::format("{} and {} cannot both be set", field, path_field));
      }
    }
  }

  // The Parameters (JSONPath) or Arguments (JSONata) object of an ItemReader/ResultWriter.
  std::optional<Template> IoParameters(const Json& obj, const State& st, const std::string& ptr) {
    const bool jsonata = st.language == QueryLanguage::kJsonata;
    const char* want = jsonata ? "Arguments" : "Parameters";
    const char* other = jsonata ? "Parameters" : "Arguments";
    if (obj.contains(other)) {
      Problem(st.name, ptr + "/" + other,
              fmt::format("{} cannot be used in a {} state; use {}", other,
                          jsonata ? "JSONata" : "JSONPath", want));
    }
    auto it = obj.find(want);
    if (it == obj.end()) return std::nullopt;
    if (!it->is_object() && !(jsonata && it->is_string())) {
      Problem(st.name, ptr + "/" + want, fmt::format("{} must be an object", want));
      return std::nullopt;
    }
    return jsonata ? CompileJsonata(*it, want, st.name, ptr + "/" + want)
                   : CompileJsonPathTemplate(*it, want, st.name, ptr + "/" + want);
  }

  // ItemReader, ItemBatcher and ResultWriter (distributed Map only, as on AWS).
  void ParseMapIo(const Json& j, State* st, const std::string& ptr) {
    for (const char* f : {"ItemReader", "ItemBatcher", "ResultWriter"}) {
      if (j.contains(f) && !st->distributed) {
        Problem(st->name, ptr + "/" + f,
                fmt::format("{} needs ItemProcessor.ProcessorConfig.Mode DISTRIBUTED", f));
      }
      if (j.contains(f) && !j[f].is_object()) {
        Problem(st->name, ptr + "/" + f, fmt::format("{} must be an object", f));
      }
    }
    if (auto it = j.find("ItemReader"); it != j.end() && it->is_object()) {
      std::string p = ptr + "/ItemReader";
      st->item_reader = *it;
      OnlyKeys(*it, {"Resource", "ReaderConfig", "Parameters", "Arguments"}, *st, p);
      auto res = it->find("Resource");
      if (res == it->end() || !res->is_string()) {
        Problem(st->name, p + "/Resource", "ItemReader needs a Resource");
      } else if (*res != "arn:aws:states:::s3:getObject" &&
                 *res != "arn:aws:states:::s3:listObjectsV2") {
        Problem(st->name, p + "/Resource",
                "ItemReader Resource must be arn:aws:states:::s3:getObject or "
                "arn:aws:states:::s3:listObjectsV2");
      }
      st->reader_parameters = IoParameters(*it, *st, p);
      if (!st->reader_parameters) {
        Problem(st->name, p,
                fmt::format("ItemReader needs {} with Bucket and Key/Prefix",
                            st->language == QueryLanguage::kJsonata ? "Arguments" : "Parameters"));
      }
      if (auto cfg = it->find("ReaderConfig"); cfg != it->end()) {
        std::string cp = p + "/ReaderConfig";
        if (!cfg->is_object()) {
          Problem(st->name, cp, "ReaderConfig must be an object");
        } else {
          OnlyKeys(*cfg,
                   {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems",
                    "MaxItemsPath"},
                   *st, cp);
          EnumField(*cfg, "InputType", {"JSON", "JSONL", "CSV", "MANIFEST", "PARQUET"}, *st, cp);
          EnumField(*cfg, "CSVHeaderLocation", {"FIRST_ROW", "GIVEN"}, *st, cp);
          EnumField(*cfg, "CSVDelimiter", {"COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB"}, *st, cp);
          CountField(*cfg, "MaxItems", *st, cp);
          bool given = cfg->value("CSVHeaderLocation", "") == "GIVEN";
          auto hdr = cfg->find("CSVHeaders");
          bool hdr_ok =
              hdr != cfg->end() && hdr->is_array() && !hdr->empty() &&
              std::all_of(hdr->begin(), hdr->end(), [](const Json& h) { return h.is_string(); });
          if (given && !hdr_ok) {
            Problem(st->name, cp + "/CSVHeaders",
                    "CSVHeaderLocation GIVEN needs CSVHeaders, a non-empty array of strings");
          } else if (!given && hdr != cfg->end()) {
            Problem(st->name, cp + "/CSVHeaders", "CSVHeaders needs CSVHeaderLocation GIVEN");
          }
        }
      } else if (res != it->end() && *res == "arn:aws:states:::s3:getObject") {
        Problem(st->name, p + "/ReaderConfig", "s3:getObject needs ReaderConfig.InputType");
      }
    }
    if (auto it = j.find("ItemBatcher"); it != j.end() && it->is_object()) {
      std::string p = ptr + "/ItemBatcher";
      st->item_batcher = *it;
      OnlyKeys(*it,
               {"MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch",
                "MaxInputBytesPerBatchPath", "BatchInput"},
               *st, p);
      CountField(*it, "MaxItemsPerBatch", *st, p);
      CountField(*it, "MaxInputBytesPerBatch", *st, p);
      if (!it->contains("MaxItemsPerBatch") && !it->contains("MaxItemsPerBatchPath") &&
          !it->contains("MaxInputBytesPerBatch") && !it->contains("MaxInputBytesPerBatchPath")) {
        Problem(st->name, p, "ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch");
      }
      if (auto bi = it->find("BatchInput"); bi != it->end()) {
        st->batch_input =
            st->language == QueryLanguage::kJsonata
                ? CompileJsonata(*bi, "BatchInput", st->name, p + "/BatchInput")
                : CompileJsonPathTemplate(*bi, "BatchInput", st->name, p + "/BatchInput");
      }
    }
    if (auto it = j.find("ResultWriter"); it != j.end() && it->is_object()) {
      std::string p = ptr + "/ResultWriter";
      st->result_writer = *it;
      OnlyKeys(*it, {"Resource", "WriterConfig", "Parameters", "Arguments"}, *st, p);
      auto res = it->find("Resource");
      if (res != it->end() && *res != "arn:aws:states:::s3:putObject") {
        Problem(st->name, p + "/Resource",
                "ResultWriter Resource must be arn:aws:states:::s3:putObject");
      }
      if (res == it->end() && !it->contains("WriterConfig")) {
        Problem(st->name, p, "ResultWriter needs a Resource or a WriterConfig");
      }
      st->writer_parameters = IoParameters(*it, *st, p);
      if (res != it->end() && !st->writer_parameters) {
        Problem(st->name, p, "ResultWriter with a Resource needs Bucket and Prefix parameters");
      }
      if (auto cfg = it->find("WriterConfig"); cfg != it->end()) {
        if (!cfg->is_object()) {
          Problem(st->name, p + "/WriterConfig", "WriterConfig must be an object");
        } else {
          OnlyKeys(*cfg, {"OutputType", "Transformation"}, *st, p + "/WriterConfig");
          EnumField(*cfg, "OutputType", {"JSON", "JSONL"}, *st, p + "/WriterConfig");
          EnumField(*cfg, "Transformation", {"NONE", "COMPACT", "FLATTEN"}, *st,
                    p + "/WriterConfig");
        }
      }
    }
  }

  std::vector<Diagnostic>* problems_;
};

}  // namespace

}  // namespace engage::flow

#include "flow/util_internal.h"

namespace engage::flow {
namespace {
bool Parser::ParseTimestampOk(const Json& v) {
  return v.is_string() && ParseTimestampMicros(v.get<std::string>()).has_value();
}
}  // namespace

namespace {

void CollectExpressProblems(const StateMachine& sm, const std::string& ptr,
                            std::vector<Diagnostic>* out) {
  for (const auto& [name, st] : sm.states) {
    std::string sp = ptr + "/States/" + PointerToken(name);
    if (st.type == StateType::kTask) {
      std::string_view r = st.resource;
      const char* pattern = nullptr;
      if (r.ends_with(".waitForTaskToken")) {
        pattern = "the Wait for Callback pattern (.waitForTaskToken)";
      } else if (r.ends_with(".sync") || r.find(".sync:") != std::string_view::npos) {
        pattern = "the Run a Job pattern (.sync)";
      } else if (r.starts_with("arn:") && r.find(":activity:") != std::string_view::npos) {
        pattern = "activities";
      }
      if (pattern != nullptr) {
        out->push_back(Diagnostic{
            name, sp + "/Resource",
            fmt::format("resource '{}': an EXPRESS state machine does not support {} (Express "
                        "Workflows support only Request Response integrations)",
                        st.resource, pattern)});
      }
    }
    for (size_t i = 0; i < st.branches.size(); ++i) {
      CollectExpressProblems(*st.branches[i], sp + "/Branches/" + std::to_string(i), out);
    }
    if (st.processor) CollectExpressProblems(*st.processor, sp + "/ItemProcessor", out);
  }
}

void CollectFarTimestamps(const StateMachine& sm, const std::string& ptr, int64_t horizon_micros,
                          int64_t max_seconds, std::vector<Diagnostic>* out) {
  for (const auto& [name, st] : sm.states) {
    std::string sp = ptr + "/States/" + PointerToken(name);
    if (st.type == StateType::kWait && st.wait_timestamp &&
        st.wait_timestamp->kind == Template::Kind::kLiteral &&
        st.wait_timestamp->literal.is_string()) {
      std::optional<int64_t> t =
          ParseTimestampMicros(st.wait_timestamp->literal.get<std::string>());
      if (t && *t > horizon_micros) {
        out->push_back(Diagnostic{
            name, sp + "/Timestamp",
            fmt::format("Timestamp {} is more than {} seconds ahead: the execution would time "
                        "out first (AWS's maximum wait is one year)",
                        st.wait_timestamp->literal.get<std::string>(), max_seconds)});
      }
    }
    for (size_t i = 0; i < st.branches.size(); ++i) {
      CollectFarTimestamps(*st.branches[i], sp + "/Branches/" + std::to_string(i), horizon_micros,
                           max_seconds, out);
    }
    if (st.processor) {
      CollectFarTimestamps(*st.processor, sp + "/ItemProcessor", horizon_micros, max_seconds, out);
    }
  }
}

}  // namespace

std::vector<Diagnostic> ExpressProblems(const StateMachine& sm) {
  std::vector<Diagnostic> out;
  CollectExpressProblems(sm, "", &out);
  return out;
}

Status CheckExpressDefinition(const StateMachine& sm) {
  std::vector<Diagnostic> problems = ExpressProblems(sm);
  if (problems.empty()) return Status::Ok();
  std::string msg = "the definition cannot run as an EXPRESS execution:";
  for (const Diagnostic& p : problems) msg += "\n  " + p.ToString();
  return InvalidArgumentError(std::move(msg));
}

std::vector<Diagnostic> FarTimestamps(const StateMachine& sm, int64_t now_micros,
                                      int64_t max_seconds) {
  std::vector<Diagnostic> out;
  CollectFarTimestamps(sm, "", now_micros + max_seconds * 1000000, max_seconds, &out);
  return out;
}

std::shared_ptr<const StateMachine> ParseDefinition(const Json& definition,
                                                    std::vector<Diagnostic>* problems) {
  size_t before = problems->size();
  Parser parser(problems);
  std::shared_ptr<StateMachine> sm =
      parser.ParseMachine(definition, "", QueryLanguage::kJsonPath, true);
  if (problems->size() != before) return nullptr;
  return sm;
}

Result<std::shared_ptr<const StateMachine>> LoadDefinition(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(fmt::format("cannot read state machine definition '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  ENGAGE_ASSIGN_OR_RETURN(Json j, ParseJson(ss.str(), path));
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(j, &problems);
  if (sm == nullptr) {
    std::string msg = fmt::format("'{}' is not a valid state machine ({} problem{}):", path,
                                  problems.size(), problems.size() == 1 ? "" : "s");
    for (const Diagnostic& d : problems) msg += "\n  " + d.ToString();
    return InvalidArgumentError(std::move(msg));
  }
  return sm;
}

}  // namespace engage::flow
