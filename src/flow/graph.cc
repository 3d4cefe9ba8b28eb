#include "engage/flow/graph.h"

#include <fmt/format.h>

#include <map>
#include <string_view>
#include <vector>

namespace engage::flow {

namespace {

// Labels longer than this are cut (at a UTF-8 character boundary) so a long JSONata condition
// or ErrorEquals list does not stretch the diagram.
constexpr size_t kMaxLabelBytes = 60;

std::string Truncate(std::string s) {
  if (s.size() <= kMaxLabelBytes) return s;
  size_t cut = kMaxLabelBytes;
  // Back up over UTF-8 continuation bytes so the label stays valid UTF-8.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s + "...";
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

// "$.x NumericEquals 0", "$.a StringEqualsPath $.b", "Not ($.x IsNull true)", ...
std::string RuleSummary(const ChoiceRule& rule) {
  switch (rule.kind) {
    case ChoiceRule::Kind::kAnd:
    case ChoiceRule::Kind::kOr: {
      std::vector<std::string> parts;
      for (const ChoiceRule& child : rule.children) parts.push_back("(" + RuleSummary(child) + ")");
      return Join(parts, rule.kind == ChoiceRule::Kind::kAnd ? " And " : " Or ");
    }
    case ChoiceRule::Kind::kNot:
      return rule.children.empty() ? "Not" : "Not (" + RuleSummary(rule.children[0]) + ")";
    case ChoiceRule::Kind::kCompare: {
      std::string var = rule.variable ? rule.variable->text() : "?";
      if (rule.path_operand)
        return fmt::format("{} {}Path {}", var, rule.op, rule.path_operand->text());
      return fmt::format("{} {} {}", var, rule.op, DumpJson(rule.operand));
    }
    case ChoiceRule::Kind::kJsonata:
      if (!rule.condition) return "Condition";
      if (rule.condition->kind == Template::Kind::kJsonata) return rule.condition->source;
      return DumpJson(rule.condition->literal);
  }
  return "?";
}

enum class EdgeStyle { kSolid, kDashed, kDotted };

struct Edge {
  std::string from;
  std::string to;
  std::string label;  // unescaped; "" for none
  EdgeStyle style = EdgeStyle::kSolid;
};

enum class Shape {
  kStart,
  kEnd,
  kMissing,
  kPass,
  kTask,
  kChoice,
  kWait,
  kSucceed,
  kFail,
  kParallel,
  kMap
};

Shape ShapeOf(StateType t) {
  switch (t) {
    case StateType::kPass:
      return Shape::kPass;
    case StateType::kTask:
      return Shape::kTask;
    case StateType::kChoice:
      return Shape::kChoice;
    case StateType::kWait:
      return Shape::kWait;
    case StateType::kSucceed:
      return Shape::kSucceed;
    case StateType::kFail:
      return Shape::kFail;
    case StateType::kParallel:
      return Shape::kParallel;
    case StateType::kMap:
      return Shape::kMap;
  }
  return Shape::kTask;
}

// Mermaid text inside "...": quotes, '#' (which starts entity codes) and HTML-significant
// characters become entity codes; control characters (newlines would end the statement) become
// spaces. Everything else, UTF-8 included, is safe inside quotes.
std::string MermaidText(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      out += ' ';
    } else if (c == '"' || c == '#' || c == '&' || c == '<' || c == '>' || c == '|' || c == '`' ||
               c == '\\' || c == ';') {
      out += fmt::format("#{};", static_cast<int>(u));
    } else {
      out += c;
    }
  }
  return out;
}

// DOT double-quoted string body: backslash starts escapes (\n, \l, \N ...) and quote ends the
// string, so both are escaped; control characters become spaces.
std::string DotText(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7F) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

class Renderer {
 public:
  explicit Renderer(GraphFormat format) : format_(format) {}

  std::string Render(const StateMachine& sm) {
    if (mermaid()) {
      out_ += "flowchart TD\n";
    } else {
      out_ += "digraph StateMachine {\n";
      out_ += "  rankdir=TB;\n";
      out_ += "  node [fontname=\"Helvetica\", fontsize=11];\n";
      out_ += "  edge [fontname=\"Helvetica\", fontsize=9];\n";
    }
    std::string start = NewId();
    EmitNode(start, "Start", Shape::kStart, 1);
    std::string entry = EmitMachine(sm, 1);
    // First, so layout engines that follow edge order put the entry at the top.
    edges_.insert(edges_.begin(), Edge{start, entry, "", EdgeStyle::kSolid});
    // Edges after all nodes: in DOT an edge that mentions a not-yet-declared node would declare
    // it in the current (sub)graph, which would move nodes into the wrong cluster.
    for (const Edge& e : edges_) EmitEdge(e);
    if (!mermaid()) out_ += "}\n";
    return std::move(out_);
  }

 private:
  bool mermaid() const { return format_ == GraphFormat::kMermaid; }

  std::string NewId() { return fmt::format("n{}", next_node_++); }

  static std::string Indent(int depth) { return std::string(2 * depth, ' '); }

  // Node label: the state name and, on a second line, its type.
  std::string Label(std::string_view first, std::string_view second) const {
    if (second.empty()) return mermaid() ? MermaidText(first) : DotText(first);
    if (mermaid()) return MermaidText(first) + "<br/>(" + MermaidText(second) + ")";
    return DotText(first) + "\\n(" + DotText(second) + ")";
  }

  void EmitNode(const std::string& id, std::string_view name, Shape shape, int depth,
                std::string_view type = "") {
    std::string label = Label(name, type);
    out_ += Indent(depth);
    if (mermaid()) {
      const char* open = "[";
      const char* close = "]";
      switch (shape) {
        case Shape::kStart:
        case Shape::kEnd:
          open = "((";
          close = "))";
          break;
        case Shape::kMissing:
          open = ">";
          close = "]";
          break;
        case Shape::kPass:
          open = "(";
          close = ")";
          break;
        case Shape::kTask:
          break;
        case Shape::kChoice:
          open = "{";
          close = "}";
          break;
        case Shape::kWait:
          open = "{{";
          close = "}}";
          break;
        case Shape::kSucceed:
          open = "([";
          close = "])";
          break;
        case Shape::kFail:
          open = "(((";
          close = ")))";
          break;
        case Shape::kParallel:
          open = "[[";
          close = "]]";
          break;
        case Shape::kMap:
          open = "[/";
          close = "/]";
          break;
      }
      out_ += fmt::format("{}{}\"{}\"{}\n", id, open, label, close);
      return;
    }
    const char* attrs = "shape=box";
    switch (shape) {
      case Shape::kStart:
        attrs = "shape=circle, style=filled, fillcolor=\"#dddddd\"";
        break;
      case Shape::kEnd:
        attrs = "shape=doublecircle, style=filled, fillcolor=\"#dddddd\"";
        break;
      case Shape::kMissing:
        attrs = "shape=note, color=red";
        break;
      case Shape::kPass:
        attrs = "shape=box, style=rounded";
        break;
      case Shape::kTask:
        break;
      case Shape::kChoice:
        attrs = "shape=diamond";
        break;
      case Shape::kWait:
        attrs = "shape=hexagon";
        break;
      case Shape::kSucceed:
        attrs = "shape=oval, peripheries=2, color=darkgreen";
        break;
      case Shape::kFail:
        attrs = "shape=doubleoctagon, color=red";
        break;
      case Shape::kParallel:
        attrs = "shape=box3d";
        break;
      case Shape::kMap:
        attrs = "shape=parallelogram";
        break;
    }
    out_ += fmt::format("{} [label=\"{}\", {}];\n", id, label, attrs);
  }

  void EmitEdge(const Edge& e) {
    if (mermaid()) {
      const char* arrow = e.style == EdgeStyle::kSolid ? "-->" : "-.->";
      if (e.label.empty()) {
        out_ += fmt::format("  {} {} {}\n", e.from, arrow, e.to);
      } else {
        out_ += fmt::format("  {} {}|\"{}\"| {}\n", e.from, arrow, MermaidText(Truncate(e.label)),
                            e.to);
      }
      return;
    }
    std::vector<std::string> attrs;
    if (!e.label.empty()) attrs.push_back(fmt::format("label=\"{}\"", DotText(Truncate(e.label))));
    if (e.style == EdgeStyle::kDashed) attrs.push_back("style=dashed");
    if (e.style == EdgeStyle::kDotted) attrs.push_back("style=dotted");
    if (attrs.empty()) {
      out_ += fmt::format("  {} -> {};\n", e.from, e.to);
    } else {
      out_ += fmt::format("  {} -> {} [{}];\n", e.from, e.to, Join(attrs, ", "));
    }
  }

  void OpenSubgraph(const std::string& title, int depth) {
    std::string id = fmt::format("g{}", next_group_++);
    if (mermaid()) {
      out_ += fmt::format("{}subgraph {} [\"{}\"]\n", Indent(depth), id, MermaidText(title));
    } else {
      out_ += fmt::format("{}subgraph cluster_{} {{\n", Indent(depth), id);
      out_ += fmt::format("{}label=\"{}\";\n", Indent(depth + 1), DotText(title));
      out_ += fmt::format("{}style=rounded;\n", Indent(depth + 1));
    }
  }

  void CloseSubgraph(int depth) { out_ += Indent(depth) + (mermaid() ? "end\n" : "}\n"); }

  // Emits the nodes of `sm` (nested machines as subgraphs) and queues its edges. Returns the id
  // of the node that entering the machine leads to (its StartAt).
  std::string EmitMachine(const StateMachine& sm, int depth) {
    std::map<std::string, std::string, std::less<>> ids;
    for (const std::string& name : sm.order) ids.emplace(name, NewId());
    // A hand-built machine may list states only in `states`; draw those too, after `order`.
    std::vector<std::string> names = sm.order;
    for (const auto& [name, st] : sm.states) {
      if (ids.emplace(name, "").second) {
        ids[name] = NewId();
        names.push_back(name);
      }
    }

    std::string end_id;
    auto target = [&](const std::string& name) -> std::string {
      auto it = ids.find(name);
      if (it != ids.end()) return it->second;
      std::string id = NewId();
      ids.emplace(name, id);
      EmitNode(id, name, Shape::kMissing, depth, "missing");
      return id;
    };

    for (const std::string& name : names) {
      const State* st = sm.Find(name);
      if (st == nullptr) continue;
      const std::string& id = ids[name];
      EmitNode(id, name, ShapeOf(st->type), depth, StateTypeName(st->type));
      if (st->type == StateType::kParallel) {
        for (size_t i = 0; i < st->branches.size(); ++i) {
          if (st->branches[i] == nullptr) continue;
          OpenSubgraph(fmt::format("{}: branch {}", name, i + 1), depth);
          std::string entry = EmitMachine(*st->branches[i], depth + 1);
          CloseSubgraph(depth);
          edges_.push_back(Edge{id, entry, fmt::format("branch {}", i + 1), EdgeStyle::kDotted});
        }
      } else if (st->type == StateType::kMap && st->processor != nullptr) {
        OpenSubgraph(fmt::format("{}: item processor", name), depth);
        std::string entry = EmitMachine(*st->processor, depth + 1);
        CloseSubgraph(depth);
        edges_.push_back(Edge{id, entry, "each item", EdgeStyle::kDotted});
      }
    }

    for (const std::string& name : names) {
      const State* st = sm.Find(name);
      if (st == nullptr) continue;
      const std::string id = ids[name];
      for (const Retrier& r : st->retry) {
        edges_.push_back(
            Edge{id, id, fmt::format("Retry [{}] x{}", Join(r.error_equals, ", "), r.max_attempts),
                 EdgeStyle::kDotted});
      }
      if (!st->next.empty()) edges_.push_back(Edge{id, target(st->next), "", EdgeStyle::kSolid});
      for (const ChoiceRule& rule : st->choices) {
        edges_.push_back(Edge{id, target(rule.next), RuleSummary(rule), EdgeStyle::kSolid});
      }
      if (!st->default_next.empty()) {
        edges_.push_back(Edge{id, target(st->default_next), "Default", EdgeStyle::kSolid});
      }
      for (const Catcher& c : st->catchers) {
        edges_.push_back(Edge{id, target(c.next),
                              fmt::format("Catch [{}]", Join(c.error_equals, ", ")),
                              EdgeStyle::kDashed});
      }
      if (st->end) {
        if (end_id.empty()) {
          end_id = NewId();
          EmitNode(end_id, "End", Shape::kEnd, depth);
        }
        edges_.push_back(Edge{id, end_id, "", EdgeStyle::kSolid});
      }
    }
    return target(sm.start_at);
  }

  GraphFormat format_;
  std::string out_;
  std::vector<Edge> edges_;
  int64_t next_node_ = 0;
  int64_t next_group_ = 0;
};

}  // namespace

std::string RenderGraph(const StateMachine& sm, GraphFormat format) {
  return Renderer(format).Render(sm);
}

}  // namespace engage::flow
