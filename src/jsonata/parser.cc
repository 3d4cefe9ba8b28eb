// Tokenizer, Pratt parser and tree rewriting for JSONata expressions (see ast_internal.h).

#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include "jsonata/ast_internal.h"
#include "jsonata/text_internal.h"

namespace engage::jsonata::internal {

void Throw(std::string code, std::string message, int64_t position, std::string token) {
  throw JsonataError{std::move(code), std::move(message), position, std::move(token)};
}

namespace {

constexpr int kMaxParseDepth = 2000;

enum class TokType { kOperator, kString, kNumber, kName, kVariable, kRegex, kValue, kEnd };

struct Token {
  TokType type = TokType::kEnd;
  std::string value;
  double number = 0;
  int literal = 0;
  int64_t position = 0;
  std::shared_ptr<const RegexLiteral> regex;
};

int Lbp(const Token& t) {
  if (t.type != TokType::kOperator) return 0;
  const std::string& v = t.value;
  if (v == ".") return 75;
  if (v == "[" || v == "(" || v == "@" || v == "#") return 80;
  if (v == "{") return 70;
  if (v == "?") return 20;
  if (v == "+" || v == "-" || v == "&") return 50;
  if (v == "*" || v == "/" || v == "%") return 60;
  if (v == "=" || v == "<" || v == ">" || v == "^" || v == "!=" || v == "<=" || v == ">=" ||
      v == "~>" || v == "?:" || v == "??" || v == "in")
    return 40;
  if (v == ":=") return 10;
  if (v == "and") return 30;
  if (v == "or") return 25;
  return 0;
}

bool IsNameDelimiter(char c) {
  switch (c) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
    case '\v':
    case '\f':
    case '.':
    case '[':
    case ']':
    case '{':
    case '}':
    case '(':
    case ')':
    case ',':
    case '@':
    case '#':
    case ';':
    case ':':
    case '?':
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
    case '|':
    case '=':
    case '<':
    case '>':
    case '^':
    case '&':
    case '!':
    case '~':
    case '"':
    case '\'':
    case '`':
      return true;
    default:
      return false;
  }
}

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  NodePtr ParseAll() {
    Advance("", false);
    NodePtr expr = Expression(0);
    if (cur_.type != TokType::kEnd) {
      Throw("S0201", "Syntax error: " + cur_.value, cur_.position, cur_.value);
    }
    expr = Process(std::move(expr));
    if (expr->type == NodeType::kParent || !expr->seeking_parent.empty()) {
      Throw("S0217", "The object representing the 'parent' cannot be derived from this expression",
            expr->position, expr->type == NodeType::kParent ? "parent" : "path");
    }
    return expr;
  }

 private:
  // ---- tokenizer ----
  Token Lex(bool infix) {
    const size_t n = src_.size();
    for (;;) {
      while (pos_ < n && (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\n' ||
                          src_[pos_] == '\r' || src_[pos_] == '\v' || src_[pos_] == '\f')) {
        ++pos_;
      }
      if (pos_ + 1 < n && src_[pos_] == '/' && src_[pos_ + 1] == '*') {
        size_t end = src_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) Throw("S0106", "Comment has no closing tag", pos_);
        pos_ = end + 2;
        continue;
      }
      break;
    }
    Token t;
    t.position = static_cast<int64_t>(pos_);
    if (pos_ >= n) {
      t.type = TokType::kEnd;
      t.value = "(end)";
      return t;
    }
    char c = src_[pos_];
    if (!infix && c == '/') {
      ++pos_;
      t.type = TokType::kRegex;
      t.regex = ScanRegex();
      t.value = t.regex->source;
      return t;
    }
    auto two = [&](const char* op) {
      return pos_ + 1 < n && src_[pos_] == op[0] && src_[pos_ + 1] == op[1];
    };
    for (const char* op : {"..", ":=", "!=", ">=", "<=", "**", "~>", "?:", "??"}) {
      if (two(op)) {
        pos_ += 2;
        t.type = TokType::kOperator;
        t.value = op;
        return t;
      }
    }
    if (c == '!' || c == '~') {
      Throw("S0204", std::string("Unknown operator: ") + c, t.position, std::string(1, c));
    }
    if (std::string_view(".[]{}(),@#;:?+-*/%|=<>^&").find(c) != std::string_view::npos) {
      ++pos_;
      t.type = TokType::kOperator;
      t.value = std::string(1, c);
      return t;
    }
    if (c == '"' || c == '\'') {
      t.type = TokType::kString;
      t.value = ScanString(c);
      return t;
    }
    if (c >= '0' && c <= '9') {
      size_t start = pos_;
      if (c == '0') {
        ++pos_;
      } else {
        while (pos_ < n && src_[pos_] >= '0' && src_[pos_] <= '9') ++pos_;
      }
      if (pos_ + 1 < n && src_[pos_] == '.' && src_[pos_ + 1] >= '0' && src_[pos_ + 1] <= '9') {
        ++pos_;
        while (pos_ < n && src_[pos_] >= '0' && src_[pos_] <= '9') ++pos_;
      }
      if (pos_ < n && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
        size_t save = pos_;
        ++pos_;
        if (pos_ < n && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
        if (pos_ < n && src_[pos_] >= '0' && src_[pos_] <= '9') {
          while (pos_ < n && src_[pos_] >= '0' && src_[pos_] <= '9') ++pos_;
        } else {
          pos_ = save;
        }
      }
      std::string text(src_.substr(start, pos_ - start));
      double d = std::strtod(text.c_str(), nullptr);
      if (!std::isfinite(d)) Throw("S0102", "Number out of range: " + text, t.position, text);
      t.type = TokType::kNumber;
      t.number = d;
      t.value = text;
      return t;
    }
    if (c == '`') {
      size_t end = src_.find('`', pos_ + 1);
      if (end == std::string_view::npos) {
        Throw("S0105", "Quoted property name must be terminated with a backquote (`)", pos_);
      }
      t.type = TokType::kName;
      t.value = std::string(src_.substr(pos_ + 1, end - pos_ - 1));
      pos_ = end + 1;
      return t;
    }
    size_t start = pos_;
    while (pos_ < n && !IsNameDelimiter(src_[pos_])) ++pos_;
    std::string name(src_.substr(start, pos_ - start));
    if (name.empty()) Throw("S0204", "Unknown operator: " + std::string(1, c), t.position);
    if (name[0] == '$') {
      t.type = TokType::kVariable;
      t.value = name.substr(1);
      return t;
    }
    if (name == "and" || name == "or" || name == "in") {
      t.type = TokType::kOperator;
      t.value = name;
      return t;
    }
    if (name == "true" || name == "false" || name == "null") {
      t.type = TokType::kValue;
      t.value = name;
      t.literal = name == "null" ? 0 : name == "true" ? 1 : 2;
      return t;
    }
    t.type = TokType::kName;
    t.value = name;
    return t;
  }

  std::string ScanString(char quote) {
    const size_t n = src_.size();
    size_t start = pos_;
    ++pos_;
    std::string out;
    while (pos_ < n) {
      char c = src_[pos_];
      if (c == '\\') {
        ++pos_;
        if (pos_ >= n) break;
        char e = src_[pos_];
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case '\'':
            out += '\'';
            break;
          case 'u': {
            int32_t hi = ParseHex4(src_, pos_ + 1);
            if (hi < 0) {
              Throw("S0104", "The escape sequence \\u must be followed by 4 hex digits",
                    static_cast<int64_t>(pos_));
            }
            auto cp = static_cast<uint32_t>(hi);
            pos_ += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && pos_ + 2 < n && src_[pos_ + 1] == '\\' &&
                src_[pos_ + 2] == 'u') {
              int32_t lo = ParseHex4(src_, pos_ + 3);
              if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<uint32_t>(lo) - 0xDC00);
                pos_ += 6;
              }
            }
            AppendUtf8(out, cp);
            break;
          }
          default:
            if (char control = ControlEscape(e); control != 0) {
              out += control;
              break;
            }
            Throw("S0103", std::string("Unsupported escape sequence: \\") + e,
                  static_cast<int64_t>(pos_), std::string(1, e));
        }
        ++pos_;
      } else if (c == quote) {
        ++pos_;
        return out;
      } else {
        out += c;
        ++pos_;
      }
    }
    Throw("S0101", "String literal must be terminated by a matching quote",
          static_cast<int64_t>(start));
  }

  std::shared_ptr<const RegexLiteral> ScanRegex() {
    const size_t n = src_.size();
    size_t start = pos_;
    int depth = 0;
    while (pos_ < n) {
      char c = src_[pos_];
      if (c == '/' && depth == 0) {
        size_t bs = 0;
        while (pos_ >= bs + 1 && src_[pos_ - bs - 1] == '\\') ++bs;
        if (bs % 2 == 0) {
          std::string pattern(src_.substr(start, pos_ - start));
          if (pattern.empty()) Throw("S0301", "Empty regular expressions are not allowed", pos_);
          ++pos_;
          size_t fstart = pos_;
          while (pos_ < n && (src_[pos_] == 'i' || src_[pos_] == 'm')) ++pos_;
          auto lit = std::make_shared<RegexLiteral>();
          lit->source = pattern;
          lit->flags = std::string(src_.substr(fstart, pos_ - fstart));
          auto flags = std::regex::ECMAScript;
          if (lit->flags.find('i') != std::string::npos) flags |= std::regex::icase;
          if (lit->flags.find('m') != std::string::npos) flags |= std::regex::multiline;
          if (!RegexCountsFit(pattern)) {
            Throw("S0303", "Invalid regular expression: " + pattern, static_cast<int64_t>(start));
          }
          try {
            lit->re = std::regex(TranslateRegex(pattern), flags);
          } catch (const std::regex_error&) {
            Throw("S0303", "Invalid regular expression: " + pattern, static_cast<int64_t>(start));
          }
          return lit;
        }
      }
      bool escaped = pos_ > 0 && src_[pos_ - 1] == '\\';
      if ((c == '(' || c == '[' || c == '{') && !escaped) ++depth;
      if ((c == ')' || c == ']' || c == '}') && !escaped) --depth;
      ++pos_;
    }
    Throw("S0302", "No terminating / in regular expression", static_cast<int64_t>(pos_));
  }

  void Advance(const std::string& id, bool infix) {
    if (!id.empty() && cur_.value != id) {
      if (cur_.type == TokType::kEnd) {
        Throw("S0203", "Expected " + id + " before end of expression", cur_.position, id);
      }
      Throw("S0202", "Expected " + id + ", got " + cur_.value, cur_.position, cur_.value);
    }
    cur_ = Lex(infix);
  }
  bool IsOp(const char* v) const { return cur_.type == TokType::kOperator && cur_.value == v; }

  static NodePtr NewNode(NodeType t, int64_t pos) {
    auto n = std::make_unique<Node>();
    n->type = t;
    n->position = pos;
    return n;
  }

  NodePtr Expression(int rbp) {
    if (++depth_ > kMaxParseDepth) Throw("U1001", "Expression nesting is too deep", cur_.position);
    Token t = cur_;
    Advance("", true);
    NodePtr left = Nud(t);
    while (rbp < Lbp(cur_)) {
      t = cur_;
      Advance("", false);
      left = Led(t, std::move(left));
    }
    --depth_;
    return left;
  }

  NodePtr Nud(const Token& t) {
    switch (t.type) {
      case TokType::kString: {
        auto n = NewNode(NodeType::kString, t.position);
        n->value = t.value;
        return n;
      }
      case TokType::kNumber: {
        auto n = NewNode(NodeType::kNumber, t.position);
        n->number = t.number;
        n->value = t.value;
        return n;
      }
      case TokType::kValue: {
        auto n = NewNode(NodeType::kValue, t.position);
        n->literal = t.literal;
        n->value = t.value;
        return n;
      }
      case TokType::kName: {
        auto n = NewNode(NodeType::kName, t.position);
        n->value = t.value;
        return n;
      }
      case TokType::kVariable: {
        auto n = NewNode(NodeType::kVariable, t.position);
        n->value = t.value;
        return n;
      }
      case TokType::kRegex: {
        auto n = NewNode(NodeType::kRegex, t.position);
        n->regex = t.regex;
        n->value = t.value;
        return n;
      }
      case TokType::kEnd:
        Throw("S0207", "Unexpected end of expression", t.position);
      case TokType::kOperator:
        break;
    }
    const std::string& op = t.value;
    if (op == "-") {
      auto n = NewNode(NodeType::kNegate, t.position);
      n->lhs = Expression(70);
      return n;
    }
    if (op == "*") return NewNode(NodeType::kWildcard, t.position);
    if (op == "**") return NewNode(NodeType::kDescendant, t.position);
    if (op == "%") return NewNode(NodeType::kParent, t.position);
    if (op == "and" || op == "or" || op == "in") {
      auto n = NewNode(NodeType::kName, t.position);
      n->value = op;
      return n;
    }
    if (op == "[") {
      auto n = NewNode(NodeType::kArrayCons, t.position);
      if (!IsOp("]")) {
        for (;;) {
          NodePtr item = Expression(0);
          if (IsOp("..")) {
            auto range = NewNode(NodeType::kBinary, cur_.position);
            range->value = "..";
            Advance("..", false);
            range->lhs = std::move(item);
            range->rhs = Expression(0);
            item = std::move(range);
          }
          n->items.push_back(std::move(item));
          if (!IsOp(",")) break;
          Advance(",", false);
        }
      }
      Advance("]", true);
      return n;
    }
    if (op == "{") {
      auto n = NewNode(NodeType::kObjectCons, t.position);
      ParsePairs(n->pairs);
      return n;
    }
    if (op == "(") {
      auto n = NewNode(NodeType::kBlock, t.position);
      while (!IsOp(")")) {
        n->items.push_back(Expression(0));
        if (!IsOp(";")) break;
        Advance(";", false);
      }
      Advance(")", true);
      return n;
    }
    if (op == "|") {
      auto n = NewNode(NodeType::kTransform, t.position);
      n->lhs = Expression(0);
      Advance("|", false);
      n->rhs = Expression(0);
      if (IsOp(",")) {
        Advance(",", false);
        n->third = Expression(0);
      }
      Advance("|", true);
      return n;
    }
    if (op == "?") {
      // only valid as a partial-application placeholder; handled by the caller
      Throw("S0211", "The symbol ? cannot be used as a unary operator", t.position, op);
    }
    Throw("S0211", "The symbol " + op + " cannot be used as a unary operator", t.position, op);
  }

  void ParsePairs(std::vector<std::pair<NodePtr, NodePtr>>& pairs) {
    if (!IsOp("}")) {
      for (;;) {
        NodePtr k = Expression(0);
        Advance(":", false);
        NodePtr v = Expression(0);
        pairs.emplace_back(std::move(k), std::move(v));
        if (!IsOp(",")) break;
        Advance(",", false);
      }
    }
    Advance("}", true);
  }

  NodePtr Led(const Token& t, NodePtr left) {
    const std::string& op = t.value;
    if (op == "[") {
      if (IsOp("]")) {
        Node* step = left.get();
        while (step->type == NodeType::kPredicateRaw) step = step->lhs.get();
        step->keep_array = true;
        Advance("]", true);
        return left;
      }
      auto n = NewNode(NodeType::kPredicateRaw, t.position);
      n->lhs = std::move(left);
      n->rhs = Expression(0);
      Advance("]", true);
      return n;
    }
    if (op == "{") {
      auto n = NewNode(NodeType::kGroupRaw, t.position);
      n->lhs = std::move(left);
      ParsePairs(n->pairs);
      return n;
    }
    if (op == "(") return ParseCall(t, std::move(left));
    if (op == "@" || op == "#") {
      auto n = NewNode(op == "@" ? NodeType::kFocusRaw : NodeType::kIndexRaw, t.position);
      n->lhs = std::move(left);
      NodePtr var = Expression(80);
      if (var->type != NodeType::kVariable) {
        Throw("S0214", "The right side of " + op + " must be a variable name (start with $)",
              var->position, op);
      }
      n->value = var->value;
      return n;
    }
    if (op == "^") {
      auto n = NewNode(NodeType::kSortRaw, t.position);
      n->lhs = std::move(left);
      Advance("(", false);
      for (;;) {
        SortTerm term;
        if (IsOp("<")) {
          Advance("<", false);
        } else if (IsOp(">")) {
          term.descending = true;
          Advance(">", false);
        }
        term.expr = Expression(0);
        n->terms.push_back(std::move(term));
        if (!IsOp(",")) break;
        Advance(",", false);
      }
      Advance(")", true);
      return n;
    }
    if (op == "?") {
      auto n = NewNode(NodeType::kCondition, t.position);
      n->lhs = std::move(left);
      n->rhs = Expression(0);
      if (IsOp(":")) {
        Advance(":", false);
        n->third = Expression(0);
      }
      return n;
    }
    if (op == "??" || op == "?:") {
      auto n = NewNode(op == "??" ? NodeType::kCoalesce : NodeType::kDefault, t.position);
      n->lhs = std::move(left);
      n->rhs = Expression(0);
      return n;
    }
    if (op == ":=") {
      if (left->type != NodeType::kVariable) {
        Throw("S0212", "The left side of := must be a variable name (start with $)", left->position,
              left->value);
      }
      auto n = NewNode(NodeType::kBinary, t.position);
      n->value = op;
      n->lhs = std::move(left);
      n->rhs = Expression(9);
      return n;
    }
    if (op == ".") {
      auto n = NewNode(NodeType::kDotRaw, t.position);
      n->lhs = std::move(left);
      n->rhs = Expression(75);
      return n;
    }
    int bp = Lbp(t);
    if (bp == 0) Throw("S0201", "Syntax error: " + op, t.position, op);
    auto n = NewNode(NodeType::kBinary, t.position);
    n->value = op;
    n->lhs = std::move(left);
    n->rhs = Expression(bp);
    return n;
  }

  NodePtr ParseCall(const Token& t, NodePtr left) {
    auto n = NewNode(NodeType::kFunction, t.position);
    if (!IsOp(")")) {
      for (;;) {
        if (IsOp("?")) {
          n->type = NodeType::kPartial;
          n->items.push_back(NewNode(NodeType::kPlaceholder, cur_.position));
          Advance("?", false);
        } else {
          n->items.push_back(Expression(0));
        }
        if (!IsOp(",")) break;
        Advance(",", false);
      }
    }
    Advance(")", true);
    if (left->type == NodeType::kName && (left->value == "function" || left->value == "\u03BB")) {
      auto lambda = NewNode(NodeType::kLambda, t.position);
      for (size_t i = 0; i < n->items.size(); ++i) {
        const Node& arg = *n->items[i];
        if (arg.type != NodeType::kVariable) {
          Throw("S0208",
                "Parameter " + std::to_string(i + 1) +
                    " of function definition must be a variable name (start with $)",
                arg.position, arg.value);
        }
        lambda->params.push_back(arg.value);
      }
      if (IsOp("<")) {
        // The signature is read from the source text, not as tokens.
        size_t p = static_cast<size_t>(cur_.position);
        int depth = 0;
        std::string sig;
        while (p < src_.size()) {
          char c = src_[p];
          if (c == '{' && depth <= 0) break;
          if (c == '<') ++depth;
          if (c == '>') --depth;
          if (c != ' ' && c != '\t' && c != '\n' && c != '\r') sig += c;
          ++p;
          if (depth == 0) break;
        }
        if (depth != 0) Throw("S0402", "Malformed function signature", cur_.position);
        pos_ = p;
        cur_ = Lex(false);
        lambda->signature = ParseSignature(sig);
      }
      Advance("{", false);
      lambda->body = Expression(0);
      Advance("}", true);
      return lambda;
    }
    n->procedure = std::move(left);
    return n;
  }

  // ---- tree rewriting (JSONata's processAST) ----
  static void PushAncestry(Node& result, Node& value) {
    if (!value.seeking_parent.empty() || value.type == NodeType::kParent) {
      for (auto& s : value.seeking_parent) result.seeking_parent.push_back(s);
      if (value.type == NodeType::kParent) result.seeking_parent.push_back(value.slot);
    }
  }

  std::shared_ptr<Slot> SeekParent(Node& node, std::shared_ptr<Slot> slot) {
    switch (node.type) {
      case NodeType::kName:
      case NodeType::kWildcard:
        slot->level--;
        if (slot->level == 0) {
          if (node.ancestor) slot->label = node.ancestor->label;
          node.ancestor = slot;
          node.tuple = true;
        }
        break;
      case NodeType::kParent:
        slot->level++;
        break;
      case NodeType::kBlock:
        if (!node.items.empty()) {
          node.tuple = true;
          slot = SeekParent(*node.items.back(), slot);
        }
        break;
      case NodeType::kPath: {
        node.tuple = true;
        int index = static_cast<int>(node.steps.size()) - 1;
        slot = SeekParent(*node.steps[index--], slot);
        while (slot->level > 0 && index >= 0) slot = SeekParent(*node.steps[index--], slot);
        break;
      }
      default:
        Throw("S0217",
              "The object representing the 'parent' cannot be derived from this expression",
              node.position, "");
    }
    return slot;
  }

  void ResolveAncestry(Node& path) {
    int index = static_cast<int>(path.steps.size()) - 1;
    Node& last = *path.steps[index];
    std::vector<std::shared_ptr<Slot>> slots = last.seeking_parent;
    if (last.type == NodeType::kParent) slots.push_back(last.slot);
    for (auto slot : slots) {
      index = static_cast<int>(path.steps.size()) - 2;
      while (slot->level > 0) {
        if (index < 0) {
          path.seeking_parent.push_back(slot);
          break;
        }
        Node* step = path.steps[index--].get();
        while (index >= 0 && step->has_focus && path.steps[index]->has_focus) {
          step = path.steps[index--].get();
        }
        slot = SeekParent(*step, slot);
      }
    }
  }

  static NodePtr WrapInPath(NodePtr step) {
    auto path = NewNode(NodeType::kPath, step->position);
    path->steps.push_back(std::move(step));
    return path;
  }

  NodePtr Process(NodePtr expr) {
    if (++depth_ > kMaxParseDepth) Throw("U1001", "Expression nesting is too deep", expr->position);
    NodePtr result = ProcessInner(std::move(expr));
    --depth_;
    return result;
  }

  NodePtr ProcessInner(NodePtr expr) {
    bool keep_array = expr->keep_array;
    NodePtr result;
    switch (expr->type) {
      case NodeType::kDotRaw: {
        NodePtr lstep = Process(std::move(expr->lhs));
        bool lparent = lstep->type == NodeType::kParent;
        std::shared_ptr<Slot> lslot = lstep->slot;
        if (lstep->type == NodeType::kPath) {
          result = std::move(lstep);
        } else {
          result = WrapInPath(std::move(lstep));
        }
        if (lparent) result->seeking_parent = {lslot};
        NodePtr rest = Process(std::move(expr->rhs));
        if (rest->type == NodeType::kPath) {
          for (auto& s : rest->steps) result->steps.push_back(std::move(s));
        } else {
          if (!rest->predicate.empty()) {
            rest->stages = std::move(rest->predicate);
            rest->predicate.clear();
          }
          result->steps.push_back(std::move(rest));
        }
        for (auto& step : result->steps) {
          if (step->type == NodeType::kNumber || step->type == NodeType::kValue) {
            Throw("S0213", "The literal value " + step->value + " cannot be used as a step",
                  step->position, step->value);
          }
          if (step->type == NodeType::kString) step->type = NodeType::kName;
        }
        for (auto& step : result->steps) {
          if (step->keep_array) result->keep_singleton_array = true;
        }
        if (result->steps.front()->type == NodeType::kArrayCons) {
          result->steps.front()->cons_array = true;
        }
        if (result->steps.back()->type == NodeType::kArrayCons) {
          result->steps.back()->cons_array = true;
        }
        ResolveAncestry(*result);
        break;
      }
      case NodeType::kPredicateRaw: {
        result = Process(std::move(expr->lhs));
        Node* step = result.get();
        bool stages = false;
        if (result->type == NodeType::kPath) {
          step = result->steps.back().get();
          stages = true;
        }
        if (step->group)
          Throw("S0209", "A predicate cannot follow a grouping expression in a step",
                expr->position);
        NodePtr pred = Process(std::move(expr->rhs));
        if (!pred->seeking_parent.empty()) {
          for (auto& slot : pred->seeking_parent) {
            if (slot->level == 1) {
              SeekParent(*step, slot);
            } else {
              slot->level--;
            }
          }
          PushAncestry(*step, *pred);
        }
        Stage st;
        st.expr = std::move(pred);
        st.position = expr->position;
        (stages ? step->stages : step->predicate).push_back(std::move(st));
        break;
      }
      case NodeType::kGroupRaw: {
        result = Process(std::move(expr->lhs));
        if (result->group) {
          Throw("S0210", "Each step can only have one grouping expression", expr->position);
        }
        result->group = std::make_unique<GroupSpec>();
        result->group->position = expr->position;
        for (auto& [k, v] : expr->pairs) {
          NodePtr pk = Process(std::move(k));
          NodePtr pv = Process(std::move(v));
          result->group->pairs.emplace_back(std::move(pk), std::move(pv));
        }
        break;
      }
      case NodeType::kSortRaw: {
        result = Process(std::move(expr->lhs));
        if (result->type != NodeType::kPath) result = WrapInPath(std::move(result));
        auto sort = NewNode(NodeType::kSort, expr->position);
        for (auto& term : expr->terms) {
          SortTerm t;
          t.descending = term.descending;
          t.expr = Process(std::move(term.expr));
          PushAncestry(*sort, *t.expr);
          sort->terms.push_back(std::move(t));
        }
        result->steps.push_back(std::move(sort));
        ResolveAncestry(*result);
        break;
      }
      case NodeType::kFocusRaw: {
        result = Process(std::move(expr->lhs));
        Node* step = result.get();
        if (result->type == NodeType::kPath) step = result->steps.back().get();
        if (!step->stages.empty() || !step->predicate.empty()) {
          Throw("S0215", "A context variable binding must precede any predicates on a step",
                expr->position);
        }
        if (step->type == NodeType::kSort) {
          Throw("S0216", "A context variable binding must precede the 'order-by' clause on a step",
                expr->position);
        }
        if (keep_array) step->keep_array = true;
        step->focus = expr->value;
        step->has_focus = true;
        step->tuple = true;
        break;
      }
      case NodeType::kIndexRaw: {
        result = Process(std::move(expr->lhs));
        Node* step = result.get();
        if (result->type == NodeType::kPath) {
          step = result->steps.back().get();
        } else {
          if (!result->predicate.empty()) {
            result->stages = std::move(result->predicate);
            result->predicate.clear();
          }
          result = WrapInPath(std::move(result));
          step = result->steps.back().get();
        }
        if (step->stages.empty()) {
          step->index = expr->value;
          step->has_index = true;
        } else {
          Stage st;
          st.is_index = true;
          st.index_var = expr->value;
          st.position = expr->position;
          step->stages.push_back(std::move(st));
        }
        step->tuple = true;
        break;
      }
      case NodeType::kBinary: {
        if (expr->value == ":=") {
          result = NewNode(NodeType::kBind, expr->position);
          result->lhs = Process(std::move(expr->lhs));
          result->rhs = Process(std::move(expr->rhs));
          PushAncestry(*result, *result->rhs);
        } else if (expr->value == "~>") {
          result = NewNode(NodeType::kApply, expr->position);
          result->value = "~>";
          result->lhs = Process(std::move(expr->lhs));
          result->rhs = Process(std::move(expr->rhs));
          result->keep_array = result->lhs->keep_array || result->rhs->keep_array;
        } else {
          result = std::move(expr);
          result->lhs = Process(std::move(result->lhs));
          result->rhs = Process(std::move(result->rhs));
          PushAncestry(*result, *result->lhs);
          PushAncestry(*result, *result->rhs);
        }
        break;
      }
      case NodeType::kNegate: {
        result = std::move(expr);
        result->lhs = Process(std::move(result->lhs));
        if (result->lhs->type == NodeType::kNumber) {
          NodePtr num = std::move(result->lhs);
          num->number = -num->number;
          num->value = "-" + num->value;
          result = std::move(num);
        } else {
          PushAncestry(*result, *result->lhs);
        }
        break;
      }
      case NodeType::kArrayCons: {
        result = std::move(expr);
        for (auto& item : result->items) {
          item = Process(std::move(item));
          PushAncestry(*result, *item);
        }
        break;
      }
      case NodeType::kObjectCons: {
        result = std::move(expr);
        for (auto& [k, v] : result->pairs) {
          k = Process(std::move(k));
          PushAncestry(*result, *k);
          v = Process(std::move(v));
          PushAncestry(*result, *v);
        }
        break;
      }
      case NodeType::kFunction:
      case NodeType::kPartial: {
        result = std::move(expr);
        for (auto& arg : result->items) {
          arg = Process(std::move(arg));
          PushAncestry(*result, *arg);
        }
        result->procedure = Process(std::move(result->procedure));
        break;
      }
      case NodeType::kLambda: {
        result = std::move(expr);
        result->body = TailCallOptimize(Process(std::move(result->body)));
        break;
      }
      case NodeType::kCondition: {
        result = std::move(expr);
        result->lhs = Process(std::move(result->lhs));
        PushAncestry(*result, *result->lhs);
        result->rhs = Process(std::move(result->rhs));
        PushAncestry(*result, *result->rhs);
        if (result->third) {
          result->third = Process(std::move(result->third));
          PushAncestry(*result, *result->third);
        }
        break;
      }
      case NodeType::kCoalesce:
      case NodeType::kDefault: {
        result = std::move(expr);
        result->lhs = Process(std::move(result->lhs));
        PushAncestry(*result, *result->lhs);
        result->rhs = Process(std::move(result->rhs));
        PushAncestry(*result, *result->rhs);
        break;
      }
      case NodeType::kTransform: {
        result = std::move(expr);
        result->lhs = Process(std::move(result->lhs));
        result->rhs = Process(std::move(result->rhs));
        if (result->third) result->third = Process(std::move(result->third));
        break;
      }
      case NodeType::kBlock: {
        result = std::move(expr);
        for (auto& item : result->items) {
          item = Process(std::move(item));
          PushAncestry(*result, *item);
          if (item->cons_array ||
              (item->type == NodeType::kPath && item->steps.front()->cons_array)) {
            result->cons_array = true;
          }
        }
        break;
      }
      case NodeType::kName: {
        bool ka = expr->keep_array;
        result = WrapInPath(std::move(expr));
        if (ka) result->keep_singleton_array = true;
        break;
      }
      case NodeType::kParent: {
        result = std::move(expr);
        result->slot = std::make_shared<Slot>();
        result->slot->label = "!" + std::to_string(ancestor_label_++);
        result->slot->level = 1;
        result->slot->index = ancestor_index_++;
        break;
      }
      default:
        result = std::move(expr);
        break;
    }
    if (keep_array) result->keep_array = true;
    return result;
  }

  static NodePtr TailCallOptimize(NodePtr expr) {
    if (expr->type == NodeType::kFunction && expr->predicate.empty() && !expr->group) {
      auto thunk = NewNode(NodeType::kLambda, expr->position);
      thunk->thunk = true;
      thunk->body = std::move(expr);
      return thunk;
    }
    if (expr->type == NodeType::kCondition) {
      expr->rhs = TailCallOptimize(std::move(expr->rhs));
      if (expr->third) expr->third = TailCallOptimize(std::move(expr->third));
      return expr;
    }
    if (expr->type == NodeType::kBlock && !expr->items.empty() && expr->predicate.empty() &&
        !expr->group) {
      expr->items.back() = TailCallOptimize(std::move(expr->items.back()));
    }
    return expr;
  }

  std::string_view src_;
  size_t pos_ = 0;
  Token cur_;
  int depth_ = 0;
  int ancestor_label_ = 0;
  int ancestor_index_ = 0;
};

}  // namespace

NodePtr Parse(std::string_view text) {
  Parser p(text);
  return p.ParseAll();
}

std::shared_ptr<const Signature> ParseSignature(std::string_view sig) {
  auto out = std::make_shared<Signature>();
  out->text = std::string(sig);
  size_t position = 1;
  Signature::Param param;
  Signature::Param* prev = nullptr;
  auto next = [&]() {
    out->params.push_back(param);
    prev = &out->params.back();
    param = Signature::Param();
  };
  auto find_closing = [&](size_t start, char open, char close) {
    int depth = 1;
    size_t p = start;
    while (p < sig.size()) {
      ++p;
      if (p >= sig.size()) break;
      if (sig[p] == close) {
        if (--depth == 0) break;
      } else if (sig[p] == open) {
        ++depth;
      }
    }
    return p;
  };
  out->params.reserve(sig.size());
  while (position < sig.size()) {
    char symbol = sig[position];
    if (symbol == ':') break;
    switch (symbol) {
      case 's':
      case 'n':
      case 'b':
      case 'l':
      case 'o':
        param.regex = std::string("[") + symbol + "m]";
        param.type = symbol;
        next();
        break;
      case 'a':
        param.regex = "[asnblfom]";
        param.type = symbol;
        next();
        break;
      case 'f':
        param.regex = "f";
        param.type = symbol;
        next();
        break;
      case 'j':
        param.regex = "[asnblom]";
        param.type = symbol;
        next();
        break;
      case 'x':
        param.regex = "[asnblfom]";
        param.type = symbol;
        next();
        break;
      case '-':
        if (prev != nullptr) {
          prev->context = true;
          prev->context_regex = prev->regex;
          prev->regex += "?";
        }
        break;
      case '?':
      case '+':
        if (prev != nullptr) prev->regex += symbol;
        break;
      case '(': {
        size_t end = find_closing(position, '(', ')');
        std::string choice(sig.substr(position + 1, end - position - 1));
        if (choice.find('<') != std::string::npos) {
          Throw("S0402", "Choice groups containing parameterized types are not supported",
                static_cast<int64_t>(position), choice);
        }
        // Only type letters mean something here; anything else would be regex syntax.
        std::string letters;
        for (char c : choice) {
          if (c >= 'a' && c <= 'z') letters += c;
        }
        param.regex = "[" + letters + "m]";
        param.type = '(';
        position = end;
        next();
        break;
      }
      case '<': {
        if (prev != nullptr && (prev->type == 'a' || prev->type == 'f')) {
          size_t end = find_closing(position, '<', '>');
          prev->subtype = std::string(sig.substr(position + 1, end - position - 1));
          position = end;
        } else {
          Throw("S0401", "Type parameters can only be applied to functions and arrays",
                static_cast<int64_t>(position),
                prev != nullptr ? std::string(1, prev->type) : std::string());
        }
        break;
      }
      default:
        break;
    }
    ++position;
  }
  // "[sm]+?" -> symbols "sm", quantifier "+?"; "f?" -> "f", "?".
  auto split = [](const std::string& regex) -> std::pair<std::string, std::string> {
    if (regex.empty()) return {"", ""};
    size_t close = regex[0] == '[' ? regex.find(']') : 0;
    if (close == std::string::npos) return {"", ""};
    std::string symbols = regex[0] == '[' ? regex.substr(1, close - 1) : regex.substr(0, 1);
    return {symbols, regex.substr(close + 1)};
  };
  for (auto& p : out->params) {
    auto [symbols, quantifier] = split(p.regex);
    p.symbols = symbols;
    if (!quantifier.empty()) {
      p.min_count = quantifier[0] == '?' ? 0 : 1;
      p.max_count = quantifier[0] == '?' ? 1 : SIZE_MAX;
      p.lazy = quantifier.size() > 1 && quantifier[1] == '?';
    }
    if (p.context) p.context_symbols = split(p.context_regex).first;
  }
  return out;
}

namespace {

// How many symbols from supplied[i] on `p` accepts, at most its max_count.
size_t Run(const Signature::Param& p, std::string_view supplied, size_t i) {
  size_t run = 0;
  while (i + run < supplied.size() && run < p.max_count &&
         p.symbols.find(supplied[i + run]) != std::string::npos) {
    ++run;
  }
  return run;
}

}  // namespace

std::optional<std::vector<size_t>> MatchSignature(const Signature& sig, size_t k,
                                                  std::string_view supplied, bool anchored) {
  const size_t n = supplied.size();
  // fits[p][i]: parameters p..k-1 can take supplied[i..] (all of it when anchored).
  std::vector<std::vector<char>> fits(k + 1, std::vector<char>(n + 1, 0));
  for (size_t i = 0; i <= n; ++i) fits[k][i] = !anchored || i == n;
  std::vector<size_t> later(n + 2, 0);  // later[j]: how many i >= j have fits[p + 1][i]
  for (size_t p = k; p-- > 0;) {
    const Signature::Param& param = sig.params[p];
    later[n + 1] = 0;
    for (size_t j = n + 1; j-- > 0;) later[j] = later[j + 1] + (fits[p + 1][j] ? 1 : 0);
    size_t run = 0;  // symbols of supplied[i..] the class accepts, before capping
    for (size_t i = n + 1; i-- > 0;) {
      run = i < n && param.symbols.find(supplied[i]) != std::string::npos ? run + 1 : 0;
      size_t lo = i + param.min_count;
      size_t hi = i + std::min(run, param.max_count);
      fits[p][i] = lo <= hi && later[lo] > later[hi + 1];
    }
  }
  if (!fits[0][0]) return std::nullopt;
  std::vector<size_t> counts;
  size_t i = 0;
  for (size_t p = 0; p < k; ++p) {
    const Signature::Param& param = sig.params[p];
    size_t most = Run(param, supplied, i);
    size_t c = param.lazy ? param.min_count : most;
    while (!fits[p + 1][i + c]) {  // fits[p][i]: some count between min_count and most fits
      if (param.lazy) {
        ++c;
      } else {
        --c;
      }
    }
    counts.push_back(c);
    i += c;
  }
  return counts;
}

size_t SignatureFitLength(const Signature& sig, std::string_view supplied) {
  // The longest prefix of parameters that fits a prefix of the arguments: track the positions
  // each prefix can end at.
  const size_t n = supplied.size();
  std::vector<char> reach(n + 1, 0);
  reach[0] = 1;
  size_t k = 0;
  for (; k < sig.params.size(); ++k) {
    const Signature::Param& param = sig.params[k];
    std::vector<int> diff(n + 2, 0);
    for (size_t i = 0; i <= n; ++i) {
      if (!reach[i]) continue;
      size_t lo = i + param.min_count;
      size_t hi = i + Run(param, supplied, i);
      if (lo <= hi) {
        ++diff[lo];
        --diff[hi + 1];
      }
    }
    std::vector<char> next(n + 1, 0);
    bool any = false;
    int open = 0;
    for (size_t i = 0; i <= n; ++i) {
      open += diff[i];
      next[i] = open > 0;
      any = any || open > 0;
    }
    if (!any) break;
    reach.swap(next);
  }
  auto counts = MatchSignature(sig, k, supplied, false);
  size_t length = 0;
  if (counts) {
    for (size_t c : *counts) length += c;
  }
  return length;
}

}  // namespace engage::jsonata::internal
