#include "engage/flow/jsonpath.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <optional>
#include <regex>

#include "engage/core/text.h"
#include "engage/jsonata/regex.h"

namespace engage::flow {

namespace {
struct Filter;

// Filter regexes come from definitions and run on execution data. std::regex's default matcher
// backtracks (exponential time for /^(a|a)*$/ on "aaaa...!") and recurses once per subject
// character (a long string overflows the stack). libstdc++'s polynomial mode uses its
// breadth-first matcher instead, which has neither problem; it rejects back-references.
#if defined(__GLIBCXX__)
constexpr std::regex::flag_type kPolynomial = std::regex_constants::__polynomial;
#else
constexpr std::regex::flag_type kPolynomial = std::regex::flag_type{};
#endif
}  // namespace

struct JsonPath::Step {
  enum class Kind { kField, kIndex, kSlice, kWildcard, kNames, kIndices, kFilter };
  Kind kind = Kind::kField;
  bool recursive = false;  // preceded by `..`
  std::vector<std::string> names;
  std::vector<int64_t> indices;
  std::optional<int64_t> start, end;
  int64_t stride = 1;
  std::shared_ptr<Filter> filter;
};

namespace {

using Step = JsonPath::Step;

// A filter expression inside `[?( ... )]`.
struct Filter {
  enum class Kind { kOr, kAnd, kNot, kCompare, kExists, kLiteral };
  Kind kind = Kind::kLiteral;
  std::string op;  // for kCompare: == != < <= > >= =~
  std::vector<std::shared_ptr<Filter>> kids;
  // Operand: a relative (@) or absolute ($) path, or a literal.
  bool is_path = false;
  bool relative = true;
  std::vector<Step> steps;
  bool length_fn = false;
  Json literal;
  std::string regex_source;
  std::shared_ptr<std::regex> regex;
};

class PathParser {
 public:
  PathParser(std::string_view text, size_t pos) : s_(text), pos_(pos) {}

  Status Error(std::string_view what) const {
    return InvalidArgumentError(
        fmt::format("invalid JSONPath '{}': {} at character {}", s_, what, pos_ + 1));
  }
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  void SkipSpace() {
    while (!AtEnd() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  size_t pos() const { return pos_; }

  // Parses steps until the end of input or (inside filters) a character that cannot continue
  // a path. Sets *length_fn when the path ends in `.length()`.
  Status ParseSteps(std::vector<Step>* steps, bool* length_fn, bool in_filter) {
    while (!AtEnd()) {
      char c = Peek();
      if (c == '.') {
        bool recursive = Peek(1) == '.';
        pos_ += recursive ? 2 : 1;
        if (recursive && Peek() == '[') {
          ENGAGE_RETURN_IF_ERROR(ParseBracket(steps, true));
          continue;
        }
        if (Peek() == '*') {
          ++pos_;
          Step st;
          st.kind = Step::Kind::kWildcard;
          st.recursive = recursive;
          steps->push_back(std::move(st));
          continue;
        }
        size_t begin = pos_;
        while (!AtEnd() && Peek() != '.' && Peek() != '[' && !(in_filter && IsFilterStop(Peek()))) {
          if (Peek() == '(' && Peek(1) == ')') break;
          ++pos_;
        }
        std::string name(s_.substr(begin, pos_ - begin));
        if (name.empty()) return Error("empty field name");
        if (Peek() == '(' && Peek(1) == ')') {
          pos_ += 2;
          if (name != "length" || recursive)
            return Error(fmt::format("unknown function '{}()'", name));
          *length_fn = true;
          if (!AtEnd() && !(in_filter && IsFilterStop(Peek()))) {
            return Error("nothing may follow length()");
          }
          return Status::Ok();
        }
        Step st;
        st.kind = Step::Kind::kField;
        st.recursive = recursive;
        st.names.push_back(std::move(name));
        steps->push_back(std::move(st));
      } else if (c == '[') {
        ENGAGE_RETURN_IF_ERROR(ParseBracket(steps, false));
      } else if (in_filter) {
        return Status::Ok();
      } else {
        return Error(fmt::format("unexpected '{}'", c));
      }
    }
    return Status::Ok();
  }

  Result<std::shared_ptr<Filter>> ParseOr() {
    ENGAGE_ASSIGN_OR_RETURN(auto left, ParseAnd());
    SkipSpace();
    while (Peek() == '|' && Peek(1) == '|') {
      pos_ += 2;
      ENGAGE_ASSIGN_OR_RETURN(auto right, ParseAnd());
      auto node = std::make_shared<Filter>();
      node->kind = Filter::Kind::kOr;
      node->kids = {left, right};
      left = node;
      SkipSpace();
    }
    return left;
  }

 private:
  static bool IsFilterStop(char c) {
    return c == ' ' || c == ')' || c == '=' || c == '!' || c == '<' || c == '>' || c == '&' ||
           c == '|' || c == ']' || c == ',';
  }

  // A quoted name in brackets, or a string in a filter. AWS reads JSONPath with Jayway JsonPath,
  // whose PathCompiler skips the character after a backslash when looking for the closing quote
  // and then unescapes the name (Utils.unescape): \\ \' \" \b \f \n \r \t and \uXXXX
  // (four hex digits, a UTF-16 unit) stand for their characters, and a backslash before any
  // other character is dropped. So $['a\"b'] and $["a\\b"] name the keys a"b and a\b.
  Result<std::string> ParseQuoted() {
    char quote = Peek();
    ++pos_;
    std::string out;
    uint32_t high_surrogate = 0;  // a \uD800-\uDBFF waiting for its low half
    auto flush_surrogate = [&] {
      if (high_surrogate != 0) AppendUtf8(out, high_surrogate);
      high_surrogate = 0;
    };
    while (!AtEnd() && Peek() != quote) {
      if (Peek() != '\\') {
        flush_surrogate();
        out += Peek();
        ++pos_;
        continue;
      }
      ++pos_;
      if (AtEnd()) break;  // unterminated: reported below
      char e = Peek();
      ++pos_;
      if (e == 'u') {
        int32_t hex = ParseHex4(s_, pos_);
        if (hex < 0) return Error("a \\u escape needs four hex digits");
        auto unit = static_cast<uint32_t>(hex);
        pos_ += 4;
        if (unit >= 0xDC00 && unit <= 0xDFFF && high_surrogate != 0) {
          AppendUtf8(out, 0x10000 + ((high_surrogate - 0xD800) << 10) + (unit - 0xDC00));
          high_surrogate = 0;
        } else {
          flush_surrogate();
          if (unit >= 0xD800 && unit <= 0xDBFF) {
            high_surrogate = unit;
          } else {
            AppendUtf8(out, unit);
          }
        }
        continue;
      }
      flush_surrogate();
      // \\ \' \" and any other character stand for themselves.
      char control = ControlEscape(e);
      out += control != 0 ? control : e;
    }
    flush_surrogate();
    if (AtEnd()) return Error("unterminated string");
    ++pos_;
    return out;
  }

  Result<int64_t> ParseInt() {
    SkipSpace();
    size_t begin = pos_;
    if (Peek() == '-') ++pos_;
    while (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
    std::string_view digits = s_.substr(begin, pos_ - begin);
    if (digits.empty() || digits == "-") return Error("expected an integer");
    if (digits.size() > 18) return Error("integer out of range");
    return std::stoll(std::string(digits));
  }

  Status ParseBracket(std::vector<Step>* steps, bool recursive) {
    ++pos_;  // '['
    SkipSpace();
    Step st;
    st.recursive = recursive;
    char c = Peek();
    if (c == '*') {
      ++pos_;
      st.kind = Step::Kind::kWildcard;
    } else if (c == '\'' || c == '"') {
      while (true) {
        SkipSpace();
        if (Peek() != '\'' && Peek() != '"') return Error("expected a quoted name");
        ENGAGE_ASSIGN_OR_RETURN(std::string name, ParseQuoted());
        st.names.push_back(std::move(name));
        SkipSpace();
        if (Peek() != ',') break;
        ++pos_;
      }
      st.kind = st.names.size() == 1 ? Step::Kind::kField : Step::Kind::kNames;
    } else if (c == '?') {
      ++pos_;
      SkipSpace();
      if (Peek() != '(') return Error("expected '(' after '?'");
      ++pos_;
      ENGAGE_ASSIGN_OR_RETURN(st.filter, ParseOr());
      SkipSpace();
      if (Peek() != ')') return Error("expected ')' closing the filter");
      ++pos_;
      st.kind = Step::Kind::kFilter;
    } else if (c == ':' || c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      std::optional<int64_t> first;
      if (c != ':') {
        ENGAGE_ASSIGN_OR_RETURN(int64_t v, ParseInt());
        first = v;
      }
      SkipSpace();
      if (Peek() == ':') {
        st.kind = Step::Kind::kSlice;
        st.start = first;
        ++pos_;
        SkipSpace();
        if (Peek() != ']' && Peek() != ':') {
          ENGAGE_ASSIGN_OR_RETURN(int64_t v, ParseInt());
          st.end = v;
        }
        SkipSpace();
        if (Peek() == ':') {
          ++pos_;
          SkipSpace();
          if (Peek() != ']') {
            ENGAGE_ASSIGN_OR_RETURN(st.stride, ParseInt());
            if (st.stride <= 0) return Error("slice step must be positive");
          }
        }
      } else {
        st.indices.push_back(*first);
        while (Peek() == ',') {
          ++pos_;
          ENGAGE_ASSIGN_OR_RETURN(int64_t v, ParseInt());
          st.indices.push_back(v);
          SkipSpace();
        }
        st.kind = st.indices.size() == 1 ? Step::Kind::kIndex : Step::Kind::kIndices;
      }
    } else {
      return Error("expected a name, index, slice, '*' or filter inside []");
    }
    SkipSpace();
    if (Peek() != ']') return Error("expected ']'");
    ++pos_;
    steps->push_back(std::move(st));
    return Status::Ok();
  }

  Result<std::shared_ptr<Filter>> ParseAnd() {
    ENGAGE_ASSIGN_OR_RETURN(auto left, ParseUnary());
    SkipSpace();
    while (Peek() == '&' && Peek(1) == '&') {
      pos_ += 2;
      ENGAGE_ASSIGN_OR_RETURN(auto right, ParseUnary());
      auto node = std::make_shared<Filter>();
      node->kind = Filter::Kind::kAnd;
      node->kids = {left, right};
      left = node;
      SkipSpace();
    }
    return left;
  }

  Result<std::shared_ptr<Filter>> ParseUnary() {
    // Every nesting ('!', parentheses, a filter inside a filter's path) recurses through here.
    if (depth_ >= kMaxNesting) return Error("filter nested too deeply");
    ++depth_;
    auto result = ParseUnaryUnguarded();
    --depth_;
    return result;
  }

  Result<std::shared_ptr<Filter>> ParseUnaryUnguarded() {
    SkipSpace();
    if (Peek() == '!' && Peek(1) != '=') {
      ++pos_;
      ENGAGE_ASSIGN_OR_RETURN(auto inner, ParseUnary());
      auto node = std::make_shared<Filter>();
      node->kind = Filter::Kind::kNot;
      node->kids = {inner};
      return node;
    }
    if (Peek() == '(') {
      ++pos_;
      ENGAGE_ASSIGN_OR_RETURN(auto inner, ParseOr());
      SkipSpace();
      if (Peek() != ')') return Error("expected ')'");
      ++pos_;
      return inner;
    }
    ENGAGE_ASSIGN_OR_RETURN(auto left, ParseOperand());
    SkipSpace();
    static const char* kOps[] = {"==", "!=", "<=", ">=", "=~", "<", ">"};
    for (const char* op : kOps) {
      std::string_view o(op);
      if (s_.substr(pos_, o.size()) == o) {
        pos_ += o.size();
        SkipSpace();
        auto node = std::make_shared<Filter>();
        node->kind = Filter::Kind::kCompare;
        node->op = std::string(o);
        if (o == "=~") {
          if (Peek() != '/') return Error("expected /regex/ after =~");
          size_t begin = ++pos_;
          while (!AtEnd() && Peek() != '/') pos_ += Peek() == '\\' ? 2 : 1;
          if (AtEnd()) return Error("unterminated regex");
          auto rhs = std::make_shared<Filter>();
          rhs->regex_source = std::string(s_.substr(begin, pos_ - begin));
          ++pos_;
          bool icase = false;
          while (Peek() == 'i' || Peek() == 'g' || Peek() == 'm') icase |= s_[pos_++] == 'i';
          if (!jsonata::RegexCountsFit(rhs->regex_source)) {
            return Error("invalid regular expression");
          }
          try {
            std::regex::flag_type flags = std::regex::ECMAScript | kPolynomial;
            if (icase) flags |= std::regex::icase;
            rhs->regex = std::make_shared<std::regex>(rhs->regex_source, flags);
          } catch (const std::regex_error& e) {
            return Error(e.code() == std::regex_constants::error_complexity
                             ? "back-references are not supported in filter regular expressions"
                             : "invalid regular expression");
          }
          node->kids = {left, rhs};
          return node;
        }
        ENGAGE_ASSIGN_OR_RETURN(auto right, ParseOperand());
        node->kids = {left, right};
        return node;
      }
    }
    if (!left->is_path) return Error("a literal alone is not a condition");
    left->kind = Filter::Kind::kExists;
    return left;
  }

  Result<std::shared_ptr<Filter>> ParseOperand() {
    SkipSpace();
    auto node = std::make_shared<Filter>();
    char c = Peek();
    if (c == '@' || c == '$') {
      ++pos_;
      node->is_path = true;
      node->relative = c == '@';
      ENGAGE_RETURN_IF_ERROR(ParseSteps(&node->steps, &node->length_fn, true));
      return node;
    }
    if (c == '\'' || c == '"') {
      ENGAGE_ASSIGN_OR_RETURN(std::string str, ParseQuoted());
      node->literal = std::move(str);
      return node;
    }
    size_t begin = pos_;
    while (!AtEnd() && !IsFilterStop(Peek())) ++pos_;
    std::string word(s_.substr(begin, pos_ - begin));
    if (word == "true") {
      node->literal = true;
    } else if (word == "false") {
      node->literal = false;
    } else if (word == "null") {
      node->literal = nullptr;
    } else {
      Json num = Json::parse(word, nullptr, false);
      if (num.is_discarded() || !num.is_number()) return Error("expected a value");
      node->literal = std::move(num);
    }
    return node;
  }

  // Deeper filters would only exhaust the stack (the parser recurses once per level).
  static constexpr int kMaxNesting = 100;

  std::string_view s_;
  size_t pos_;
  int depth_ = 0;
};

// ---- evaluation ----

bool IsDefinite(const std::vector<Step>& steps) {
  for (const Step& st : steps) {
    if (st.recursive) return false;
    if (st.kind != Step::Kind::kField && st.kind != Step::Kind::kIndex) return false;
  }
  return true;
}

// What one evaluation may still do: a descendant step visits a whole subtree from every node it
// starts at, filters evaluate paths per element and `$..*` selects every node, so the work and
// the number of matches can grow far beyond the document's size. Once either runs out, the
// evaluation stops (and fails with kResourceExhausted).
struct Budget {
  int64_t visits_left = 0;
  int64_t hits_left = 0;  // matches still allowed in the result (< 0: exhausted)
  bool exhausted = false;
  bool hits_exhausted = false;

  // Accounts for `n` units of work; false once the budget is spent.
  bool Charge(int64_t n = 1) {
    visits_left -= n;
    if (visits_left < 0) exhausted = true;
    return !exhausted;
  }
};

void SelectSteps(const std::vector<Step>& steps, size_t i, const Json* node, const Json& root,
                 std::vector<const Json*>* out, Budget& budget);

bool FilterMatches(const Filter& f, const Json& current, const Json& root, Budget& budget);

// Applies one (non-recursive) step to `node`, calling `next` on each hit.
template <typename F>
void ApplyStep(const Step& st, const Json* node, const Json& root, Budget& budget, F&& next) {
  if (!budget.Charge()) return;
  switch (st.kind) {
    case Step::Kind::kField:
    case Step::Kind::kNames:
      if (node->is_object()) {
        for (const std::string& name : st.names) {
          auto it = node->find(name);
          if (it != node->end()) next(&*it);
        }
      }
      break;
    case Step::Kind::kIndex:
    case Step::Kind::kIndices:
      if (node->is_array()) {
        int64_t n = static_cast<int64_t>(node->size());
        for (int64_t idx : st.indices) {
          int64_t k = idx < 0 ? n + idx : idx;
          if (k >= 0 && k < n) next(&(*node)[static_cast<size_t>(k)]);
        }
      }
      break;
    case Step::Kind::kSlice:
      if (node->is_array()) {
        int64_t n = static_cast<int64_t>(node->size());
        int64_t from = st.start.value_or(0);
        int64_t to = st.end.value_or(n);
        if (from < 0) from = std::max<int64_t>(0, n + from);
        if (to < 0) to = std::max<int64_t>(0, n + to);
        to = std::min(to, n);
        for (int64_t k = from; k < to && !budget.exhausted; k += st.stride) {
          next(&(*node)[static_cast<size_t>(k)]);
        }
      }
      break;
    case Step::Kind::kWildcard:
      if (node->is_object() || node->is_array()) {
        for (const Json& child : *node) {
          if (!budget.Charge()) return;
          next(&child);
        }
      }
      break;
    case Step::Kind::kFilter:
      if (node->is_array()) {
        for (const Json& child : *node) {
          if (budget.exhausted) return;
          if (FilterMatches(*st.filter, child, root, budget)) next(&child);
        }
      } else if (node->is_object() && FilterMatches(*st.filter, *node, root, budget)) {
        next(node);
      }
      break;
  }
}

// Calls `fn` on `node` and every descendant, parents first, while the budget lasts. Recursion
// depth is the document's depth, which ParseJson and the engine's output check bound.
template <typename F>
void VisitAll(const Json* node, Budget& budget, F&& fn) {
  if (!budget.Charge()) return;
  fn(node);
  if (node->is_object() || node->is_array()) {
    for (const Json& child : *node) {
      if (budget.exhausted) return;
      VisitAll(&child, budget, fn);
    }
  }
}

void SelectSteps(const std::vector<Step>& steps, size_t i, const Json* node, const Json& root,
                 std::vector<const Json*>* out, Budget& budget) {
  if (budget.exhausted) return;
  if (i == steps.size()) {
    if (--budget.hits_left < 0) {
      budget.exhausted = true;
      budget.hits_exhausted = true;
      return;
    }
    out->push_back(node);
    return;
  }
  const Step& st = steps[i];
  auto next = [&](const Json* hit) { SelectSteps(steps, i + 1, hit, root, out, budget); };
  if (st.recursive) {
    VisitAll(node, budget, [&](const Json* n) { ApplyStep(st, n, root, budget, next); });
  } else {
    ApplyStep(st, node, root, budget, next);
  }
}

// The value of a filter operand, or nullopt when a path operand selects nothing.
std::optional<Json> OperandValue(const Filter& f, const Json& current, const Json& root,
                                 Budget& budget) {
  if (!f.is_path) return f.literal;
  std::vector<const Json*> hits;
  // The operand's matches are not the result: they have no cap of their own, only the work
  // budget (which every match below also draws on).
  Budget inner = budget;
  inner.hits_left = std::numeric_limits<int64_t>::max();
  SelectSteps(f.steps, 0, f.relative ? &current : &root, root, &hits, inner);
  budget.visits_left = inner.visits_left;
  budget.exhausted = inner.exhausted;
  if (budget.exhausted) return std::nullopt;
  if (f.length_fn) {
    if (hits.size() != 1 ||
        !(hits[0]->is_array() || hits[0]->is_string() || hits[0]->is_object())) {
      return std::nullopt;
    }
    return Json(hits[0]->is_string() ? hits[0]->get_ref<const std::string&>().size()
                                     : hits[0]->size());
  }
  if (IsDefinite(f.steps)) {
    if (hits.empty()) return std::nullopt;
    return *hits[0];
  }
  // Copying the matches costs their size: charged before copying.
  Json arr = Json::array();
  for (const Json* h : hits) {
    if (!budget.Charge(static_cast<int64_t>(CompactJsonSize(*h)))) return std::nullopt;
    arr.push_back(*h);
  }
  return arr;
}

bool FilterMatches(const Filter& f, const Json& current, const Json& root, Budget& budget) {
  if (budget.exhausted) return false;
  switch (f.kind) {
    case Filter::Kind::kOr:
      return FilterMatches(*f.kids[0], current, root, budget) ||
             FilterMatches(*f.kids[1], current, root, budget);
    case Filter::Kind::kAnd:
      return FilterMatches(*f.kids[0], current, root, budget) &&
             FilterMatches(*f.kids[1], current, root, budget);
    case Filter::Kind::kNot:
      return !FilterMatches(*f.kids[0], current, root, budget);
    case Filter::Kind::kExists:
      return OperandValue(f, current, root, budget).has_value();
    case Filter::Kind::kLiteral:
      return false;
    case Filter::Kind::kCompare:
      break;
  }
  std::optional<Json> a = OperandValue(*f.kids[0], current, root, budget);
  if (!a) return false;
  if (f.op == "=~") {
    return a->is_string() && std::regex_search(a->get_ref<const std::string&>(), *f.kids[1]->regex);
  }
  std::optional<Json> b = OperandValue(*f.kids[1], current, root, budget);
  if (!b) return false;
  if (f.op == "==")
    return a->is_number() && b->is_number() ? a->get<double>() == b->get<double>() : *a == *b;
  if (f.op == "!=")
    return a->is_number() && b->is_number() ? a->get<double>() != b->get<double>() : *a != *b;
  int cmp;
  if (a->is_number() && b->is_number()) {
    double x = a->get<double>(), y = b->get<double>();
    cmp = x < y ? -1 : x > y ? 1 : 0;
  } else if (a->is_string() && b->is_string()) {
    int c = a->get_ref<const std::string&>().compare(b->get_ref<const std::string&>());
    cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
  } else {
    return false;
  }
  if (f.op == "<") return cmp < 0;
  if (f.op == "<=") return cmp <= 0;
  if (f.op == ">") return cmp > 0;
  return cmp >= 0;
}

}  // namespace

Result<JsonPath> JsonPath::Parse(std::string_view text) {
  JsonPath p;
  p.text_ = std::string(text);
  if (text.empty() || text[0] != '$') {
    return InvalidArgumentError(
        fmt::format("invalid JSONPath '{}': must start with '$' at character 1", text));
  }
  size_t pos = 1;
  if (text.size() > 1 && text[1] == '$') {
    p.root_ = Root::kContext;
    pos = 2;
  } else if (text.size() > 1 && text[1] != '.' && text[1] != '[') {
    size_t begin = pos;
    while (pos < text.size() &&
           (std::isalnum(static_cast<unsigned char>(text[pos])) || text[pos] == '_')) {
      ++pos;
    }
    if (pos == begin) {
      return InvalidArgumentError(
          fmt::format("invalid JSONPath '{}': unexpected '{}' at character 2", text, text[1]));
    }
    p.root_ = Root::kVariable;
    p.variable_ = std::string(text.substr(begin, pos - begin));
  }
  std::vector<Step> steps;
  PathParser parser(text, pos);
  ENGAGE_RETURN_IF_ERROR(parser.ParseSteps(&steps, &p.length_fn_, false));
  p.definite_ = IsDefinite(steps);
  p.steps_ = std::make_shared<const std::vector<Step>>(std::move(steps));
  return p;
}

bool JsonPath::is_root() const { return steps_->empty() && !length_fn_; }

Result<std::vector<const Json*>> JsonPath::Select(const Json& root,
                                                  int64_t max_result_bytes) const {
  std::vector<const Json*> out;
  Budget budget;
  budget.visits_left = kMaxPathWork;
  // Every match adds at least one byte and a comma to the result's text.
  budget.hits_left =
      max_result_bytes > 0 ? max_result_bytes / 2 + 1 : std::numeric_limits<int64_t>::max();
  SelectSteps(*steps_, 0, &root, root, &out, budget);
  if (budget.hits_exhausted) {
    return ResourceExhaustedError(fmt::format(
        "The JSONPath '{}' selects more values than fit in {} bytes", text_, max_result_bytes));
  }
  if (budget.exhausted) {
    return ResourceExhaustedError(
        fmt::format("The JSONPath '{}' needs more than {} steps to evaluate", text_, kMaxPathWork));
  }
  return out;
}

Result<Json> JsonPath::Evaluate(const Json& root, int64_t max_result_bytes) const {
  ENGAGE_ASSIGN_OR_RETURN(std::vector<const Json*> hits,
                          Select(root, length_fn_ ? 0 : max_result_bytes));
  if (length_fn_) {
    if (hits.size() == 1 && hits[0]->is_array()) return Json(hits[0]->size());
    if (!definite_) return Json(hits.size());
    return NotFoundError(fmt::format("No results for path: {}", Normalized()));
  }
  if (definite_) {
    if (hits.empty()) return NotFoundError(fmt::format("No results for path: {}", Normalized()));
    return *hits[0];
  }
  // The result's size is known before it is built: each match's text, commas, brackets.
  if (max_result_bytes > 0) {
    int64_t bytes = 2;
    for (size_t i = 0; i < hits.size(); ++i) {
      bytes += static_cast<int64_t>(CompactJsonSize(*hits[i])) + (i > 0 ? 1 : 0);
      if (bytes > max_result_bytes) {
        return ResourceExhaustedError(
            fmt::format("The JSONPath '{}' selects more than {} bytes", text_, max_result_bytes));
      }
    }
  }
  Json arr = Json::array();
  for (const Json* h : hits) arr.push_back(*h);
  return arr;
}

Status JsonPath::Write(Json& root, Json value) const {
  if (!definite_ || length_fn_) {
    return InvalidArgumentError(fmt::format("the path '{}' names more than one node", text_));
  }
  Json* node = &root;
  for (const Step& st : *steps_) {
    if (st.kind == Step::Kind::kField) {
      if (node->is_null()) *node = Json::object();
      if (!node->is_object()) {
        return InvalidArgumentError(
            fmt::format("cannot set field '{}' of a {} value", st.names[0], node->type_name()));
      }
      node = &(*node)[st.names[0]];
    } else {
      if (!node->is_array()) {
        return InvalidArgumentError(
            fmt::format("cannot index a {} value with [{}]", node->type_name(), st.indices[0]));
      }
      int64_t n = static_cast<int64_t>(node->size());
      int64_t k = st.indices[0] < 0 ? n + st.indices[0] : st.indices[0];
      if (k < 0 || k >= n) {
        return InvalidArgumentError(fmt::format("index {} is out of bounds", st.indices[0]));
      }
      node = &(*node)[static_cast<size_t>(k)];
    }
  }
  *node = std::move(value);
  return Status::Ok();
}

namespace {

// `name` quoted for a bracket, so that the normalized path parses back to the same name.
std::string EscapeName(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string JsonPath::Normalized() const {
  std::string out = root_ == Root::kContext    ? "$$"
                    : root_ == Root::kVariable ? "$" + variable_
                                               : "$";
  for (const Step& st : *steps_) {
    if (st.recursive) out += "..";
    switch (st.kind) {
      case Step::Kind::kField:
      case Step::Kind::kNames: {
        out += "[";
        for (size_t i = 0; i < st.names.size(); ++i) {
          if (i) out += ",";
          out += "'" + EscapeName(st.names[i]) + "'";
        }
        out += "]";
        break;
      }
      case Step::Kind::kIndex:
      case Step::Kind::kIndices: {
        out += "[";
        for (size_t i = 0; i < st.indices.size(); ++i) {
          if (i) out += ",";
          out += std::to_string(st.indices[i]);
        }
        out += "]";
        break;
      }
      case Step::Kind::kSlice:
        out += fmt::format("[{}:{}]", st.start ? std::to_string(*st.start) : "",
                           st.end ? std::to_string(*st.end) : "");
        break;
      case Step::Kind::kWildcard:
        out += "[*]";
        break;
      case Step::Kind::kFilter:
        out += "[?]";
        break;
    }
  }
  if (length_fn_) out += ".length()";
  return out;
}

}  // namespace engage::flow
