#include "engage/flow/graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::shared_ptr<const StateMachine> Parse(std::string_view text) {
  Json j = Json::parse(text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << text;
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(j, &problems);
  for (const Diagnostic& d : problems) ADD_FAILURE() << d.ToString();
  return sm;
}

std::string Mermaid(std::string_view text) {
  auto sm = Parse(text);
  return sm == nullptr ? "" : RenderGraph(*sm, GraphFormat::kMermaid);
}

std::string Dot(std::string_view text) {
  auto sm = Parse(text);
  return sm == nullptr ? "" : RenderGraph(*sm, GraphFormat::kDot);
}

// A rendered graph read back: node id -> label, and the edges.
struct Graph {
  struct Edge {
    std::string from, to, label;
    bool dashed = false;
  };
  std::map<std::string, std::string> nodes;
  std::vector<Edge> edges;
  std::vector<std::string> problems;

  // The ids of nodes whose label is exactly `label`.
  std::vector<std::string> Find(const std::string& label) const {
    std::vector<std::string> ids;
    for (const auto& [id, l] : nodes) {
      if (l == label) ids.push_back(id);
    }
    return ids;
  }
  bool HasEdge(const std::string& from_label, const std::string& to_label,
               const std::string& edge_label = "") const {
    for (const Edge& e : edges) {
      auto f = nodes.find(e.from);
      auto t = nodes.find(e.to);
      if (f != nodes.end() && t != nodes.end() && f->second == from_label &&
          t->second == to_label && (edge_label.empty() || e.label == edge_label)) {
        return true;
      }
    }
    return false;
  }
};

// Reads the label of a quoted string starting at s[pos] == '"'; leaves pos after the quote.
std::string ReadQuoted(const std::string& s, size_t* pos, bool dot) {
  std::string out;
  size_t i = *pos + 1;
  for (; i < s.size() && s[i] != '"'; ++i) {
    if (dot && s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      out += s[i] == 'n' ? '\n' : s[i];  // DOT's "\n" is a line break
      continue;
    }
    out += s[i];
  }
  *pos = i + 1;
  return out;
}

// Parses the subset of DOT that RenderGraph writes, checking that braces balance outside
// quoted strings and that every edge connects declared nodes.
Graph ReadDot(const std::string& text) {
  Graph g;
  int depth = 0;
  bool in_quote = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (in_quote) {
      if (text[i] == '\\') {
        ++i;
      } else if (text[i] == '"') {
        in_quote = false;
      }
    } else if (text[i] == '"') {
      in_quote = true;
    } else if (text[i] == '{') {
      ++depth;
    } else if (text[i] == '}') {
      if (--depth < 0) g.problems.push_back("unbalanced '}'");
    }
  }
  if (depth != 0 || in_quote) g.problems.push_back("unbalanced braces or quotes");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t b = line.find_first_not_of(' ');
    if (b == std::string::npos || line[b] != 'n') continue;
    size_t e = line.find_first_of(" [;", b);
    std::string id = line.substr(b, e - b);
    size_t arrow = line.find(" -> ", b);
    if (arrow == e) {
      size_t to_end = line.find_first_of(" ;", arrow + 4);
      Graph::Edge edge{id, line.substr(arrow + 4, to_end - arrow - 4), "", false};
      if (size_t l = line.find("label=\"", to_end); l != std::string::npos) {
        size_t p = l + 6;
        edge.label = ReadQuoted(line, &p, true);
      }
      edge.dashed = line.find("style=dashed", to_end) != std::string::npos;
      g.edges.push_back(edge);
    } else if (line.compare(e, 9, " [label=\"") == 0) {
      size_t p = e + 8;
      std::string label = ReadQuoted(line, &p, true);
      if (!g.nodes.emplace(id, label).second) g.problems.push_back("duplicate node " + id);
    }
  }
  for (const Graph::Edge& e : g.edges) {
    if (!g.nodes.count(e.from) || !g.nodes.count(e.to)) {
      g.problems.push_back("edge to an undeclared node: " + e.from + " -> " + e.to);
    }
  }
  return g;
}

// Decodes Mermaid's "#NN;" entity codes and turns "<br/>" back into "\n" (as DOT labels have).
std::string MermaidDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '#') {
      size_t semi = s.find(';', i);
      out += static_cast<char>(std::atoi(s.substr(i + 1, semi - i - 1).c_str()));
      i = semi;
    } else if (s.compare(i, 5, "<br/>") == 0) {
      out += '\n';
      i += 4;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Parses the subset of Mermaid that RenderGraph writes, checking subgraph/end balance and that
// every edge connects declared nodes.
Graph ReadMermaid(const std::string& text) {
  Graph g;
  std::istringstream in(text);
  std::string line;
  int depth = 0;
  std::getline(in, line);
  if (line != "flowchart TD") g.problems.push_back("missing header");
  while (std::getline(in, line)) {
    size_t b = line.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    if (line.compare(b, 9, "subgraph ") == 0) {
      ++depth;
      continue;
    }
    if (line.substr(b) == "end") {
      if (--depth < 0) g.problems.push_back("unbalanced end");
      continue;
    }
    size_t e = line.find_first_of(" ([{>", b);
    std::string id = line.substr(b, e - b);
    if (line[e] == ' ') {
      size_t arrow_end = line.find(' ', e + 1);
      std::string arrow = line.substr(e + 1, arrow_end - e - 1);
      Graph::Edge edge{id, "", "", arrow.compare(0, 4, "-.->") == 0};
      size_t p = arrow_end + 1;
      if (arrow.size() > 4) {  // -->|"label"|
        size_t q = line.find('"', e);
        edge.label = MermaidDecode(ReadQuoted(line, &q, false));
        p = line.find("| ", q) + 2;
      }
      edge.to = line.substr(p);
      g.edges.push_back(edge);
    } else {
      size_t q = line.find('"', e);
      std::string label = MermaidDecode(ReadQuoted(line, &q, false));
      if (!g.nodes.emplace(id, label).second) g.problems.push_back("duplicate node " + id);
    }
  }
  if (depth != 0) g.problems.push_back("unbalanced subgraph/end");
  for (const Graph::Edge& e : g.edges) {
    if (!g.nodes.count(e.from) || !g.nodes.count(e.to)) {
      g.problems.push_back("edge to an undeclared node: " + e.from + " -> " + e.to);
    }
  }
  return g;
}

Graph Read(const std::string& text, GraphFormat format) {
  return format == GraphFormat::kDot ? ReadDot(text) : ReadMermaid(text);
}

std::string NodeLabel(const State& st) { return st.name + "\n(" + StateTypeName(st.type) + ")"; }

constexpr char kLinear[] = R"({
  "StartAt": "First",
  "States": {
    "First": {"Type": "Pass", "Next": "Second"},
    "Second": {"Type": "Task", "Resource": "arn:x", "End": true}
  }
})";

constexpr char kChoice[] = R"({
  "StartAt": "Check",
  "States": {
    "Check": {
      "Type": "Choice",
      "Choices": [
        {"Variable": "$.x", "NumericEquals": 0, "Next": "Zero"},
        {"Variable": "$.s", "StringEqualsPath": "$.t", "Next": "Zero"},
        {"And": [{"Variable": "$.a", "IsPresent": true},
                 {"Not": {"Variable": "$.b", "BooleanEquals": false}}], "Next": "Bad"}
      ],
      "Default": "Done"
    },
    "Zero": {"Type": "Succeed"},
    "Bad": {"Type": "Fail", "Error": "E"},
    "Done": {"Type": "Wait", "Seconds": 1, "End": true}
  }
})";

TEST(GraphTest, MermaidHasHeaderAndStartMarker) {
  std::string out = Mermaid(kLinear);
  EXPECT_EQ(out.rfind("flowchart TD\n", 0), 0u) << out;
  Graph g = ReadMermaid(out);
  EXPECT_THAT(g.problems, ::testing::IsEmpty());
  EXPECT_TRUE(g.HasEdge("Start", "First\n(Pass)")) << out;
}

TEST(GraphTest, DotIsADigraphWithStartMarker) {
  std::string out = Dot(kLinear);
  EXPECT_EQ(out.rfind("digraph StateMachine {\n", 0), 0u) << out;
  EXPECT_EQ(out.substr(out.size() - 2), "}\n");
  Graph g = ReadDot(out);
  EXPECT_THAT(g.problems, ::testing::IsEmpty());
  EXPECT_TRUE(g.HasEdge("Start", "First\n(Pass)")) << out;
}

TEST(GraphTest, EveryStateIsANodeLabelledWithNameAndType) {
  for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
    auto sm = Parse(kChoice);
    Graph g = Read(RenderGraph(*sm, f), f);
    for (const std::string& name : sm->order) {
      EXPECT_EQ(g.Find(NodeLabel(*sm->Find(name))).size(), 1u) << name;
    }
  }
}

TEST(GraphTest, NextBecomesAnEdge) {
  Graph g = ReadMermaid(Mermaid(kLinear));
  EXPECT_TRUE(g.HasEdge("First\n(Pass)", "Second\n(Task)"));
}

TEST(GraphTest, EndStatesLeadToAnEndMarker) {
  for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
    Graph g = Read(RenderGraph(*Parse(kLinear), f), f);
    EXPECT_TRUE(g.HasEdge("Second\n(Task)", "End"));
    EXPECT_EQ(g.Find("End").size(), 1u);
  }
}

TEST(GraphTest, ShapesFollowStateTypeInMermaid) {
  std::string out = Mermaid(kChoice);
  EXPECT_THAT(out, HasSubstr("{\"Check<br/>(Choice)\"}"));
  EXPECT_THAT(out, HasSubstr("([\"Zero<br/>(Succeed)\"])"));
  EXPECT_THAT(out, HasSubstr("(((\"Bad<br/>(Fail)\")))"));
  EXPECT_THAT(out, HasSubstr("{{\"Done<br/>(Wait)\"}}"));
}

TEST(GraphTest, ShapesFollowStateTypeInDot) {
  std::string out = Dot(kChoice);
  EXPECT_THAT(out, HasSubstr("[label=\"Check\\n(Choice)\", shape=diamond]"));
  EXPECT_THAT(out, HasSubstr("[label=\"Zero\\n(Succeed)\", shape=oval, peripheries=2"));
  EXPECT_THAT(out, HasSubstr("[label=\"Bad\\n(Fail)\", shape=doubleoctagon"));
  EXPECT_THAT(out, HasSubstr("[label=\"Done\\n(Wait)\", shape=hexagon]"));
}

TEST(GraphTest, ChoiceEdgesCarryConditions) {
  for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
    Graph g = Read(RenderGraph(*Parse(kChoice), f), f);
    EXPECT_TRUE(g.HasEdge("Check\n(Choice)", "Zero\n(Succeed)", "$.x NumericEquals 0"));
    EXPECT_TRUE(g.HasEdge("Check\n(Choice)", "Zero\n(Succeed)", "$.s StringEqualsPath $.t"));
  }
}

TEST(GraphTest, ChoiceCombinatorsAreSummarised) {
  Graph g = ReadDot(Dot(kChoice));
  EXPECT_TRUE(g.HasEdge("Check\n(Choice)", "Bad\n(Fail)",
                        "($.a IsPresent true) And (Not ($.b BooleanEquals false))"));
}

TEST(GraphTest, DefaultEdgeIsLabelled) {
  Graph g = ReadMermaid(Mermaid(kChoice));
  EXPECT_TRUE(g.HasEdge("Check\n(Choice)", "Done\n(Wait)", "Default"));
}

TEST(GraphTest, JsonataConditionIsShownAndTruncated) {
  std::string long_cond(100, 'y');
  std::string def = R"({
    "QueryLanguage": "JSONata", "StartAt": "C",
    "States": {
      "C": {"Type": "Choice", "Choices": [
        {"Condition": "{% $states.input.n > 1 %}", "Next": "S"},
        {"Condition": "{% $states.input.)" +
                    long_cond + R"( = 1 %}", "Next": "S"}], "Default": "S"},
      "S": {"Type": "Succeed"}
    }
  })";
  Graph g = ReadDot(Dot(def));
  EXPECT_TRUE(g.HasEdge("C\n(Choice)", "S\n(Succeed)", "$states.input.n > 1"));
  std::string cut = ("$states.input." + long_cond).substr(0, 60) + "...";
  EXPECT_TRUE(g.HasEdge("C\n(Choice)", "S\n(Succeed)", cut));
}

TEST(GraphTest, LongLabelsAreCutAtACharacterBoundary) {
  // The label's bytes 59 and 60 are one 2-byte character straddling the 60-byte limit.
  std::string value = std::string(41, 'a') + "\xc3\xa9";
  std::string def = R"({"StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [
      {"Variable": "$.v", "StringEquals": ")" +
                    value + R"(", "Next": "S"}]},
    "S": {"Type": "Succeed"}}})";
  Graph g = ReadDot(Dot(def));
  // "$.v StringEquals \"" is 18 bytes, then 41 'a's: the character is dropped whole.
  EXPECT_TRUE(g.HasEdge("C\n(Choice)", "S\n(Succeed)",
                        "$.v StringEquals \"" + std::string(41, 'a') + "..."));
}

constexpr char kCatchRetry[] = R"({
  "StartAt": "Work",
  "States": {
    "Work": {
      "Type": "Task", "Resource": "arn:x", "End": true,
      "Retry": [{"ErrorEquals": ["States.Timeout", "Custom"], "MaxAttempts": 5}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}]
    },
    "Recover": {"Type": "Fail", "Error": "Failed"}
  }
})";

TEST(GraphTest, CatchEdgesAreDashedAndListErrors) {
  for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
    Graph g = Read(RenderGraph(*Parse(kCatchRetry), f), f);
    EXPECT_TRUE(g.HasEdge("Work\n(Task)", "Recover\n(Fail)", "Catch [States.ALL]"));
    for (const Graph::Edge& e : g.edges) {
      if (e.label == "Catch [States.ALL]") {
        EXPECT_TRUE(e.dashed);
      }
    }
  }
  EXPECT_THAT(Dot(kCatchRetry), HasSubstr("[label=\"Catch [States.ALL]\", style=dashed]"));
  EXPECT_THAT(Mermaid(kCatchRetry), HasSubstr("-.->|\"Catch [States.ALL]\"|"));
}

TEST(GraphTest, RetryIsASelfLoopWithErrorsAndAttempts) {
  for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
    Graph g = Read(RenderGraph(*Parse(kCatchRetry), f), f);
    EXPECT_TRUE(g.HasEdge("Work\n(Task)", "Work\n(Task)", "Retry [States.Timeout, Custom] x5"));
  }
}

constexpr char kParallel[] = R"({
  "StartAt": "Fan",
  "States": {
    "Fan": {
      "Type": "Parallel", "End": true,
      "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
                                    "B": {"Type": "Succeed"}}}
      ]
    }
  }
})";

TEST(GraphTest, ParallelBranchesBecomeSubgraphs) {
  std::string mermaid = Mermaid(kParallel);
  EXPECT_THAT(mermaid, HasSubstr("subgraph g0 [\"Fan: branch 1\"]"));
  EXPECT_THAT(mermaid, HasSubstr("subgraph g1 [\"Fan: branch 2\"]"));
  std::string dot = Dot(kParallel);
  EXPECT_THAT(dot, HasSubstr("subgraph cluster_g0 {"));
  EXPECT_THAT(dot, HasSubstr("label=\"Fan: branch 2\";"));
  Graph g = ReadDot(dot);
  EXPECT_THAT(g.problems, ::testing::IsEmpty());
  EXPECT_EQ(g.Find("A\n(Pass)").size(), 2u);
  EXPECT_TRUE(g.HasEdge("Fan\n(Parallel)", "A\n(Pass)", "branch 1"));
  EXPECT_TRUE(g.HasEdge("Fan\n(Parallel)", "A\n(Pass)", "branch 2"));
  EXPECT_TRUE(g.HasEdge("A\n(Pass)", "B\n(Succeed)"));
  // The top level and branch 1 each end in their own End marker.
  EXPECT_EQ(g.Find("End").size(), 2u);
}

TEST(GraphTest, NestedMapStatesGetUniqueIds) {
  // Three machines that all use the names "Loop" and "Work".
  constexpr char kNested[] = R"({
    "StartAt": "Loop",
    "States": {
      "Loop": {"Type": "Map", "Next": "Work", "ItemProcessor": {
        "StartAt": "Loop",
        "States": {
          "Loop": {"Type": "Map", "Next": "Work", "ItemProcessor": {
            "StartAt": "Work", "States": {"Work": {"Type": "Pass", "End": true}}}},
          "Work": {"Type": "Pass", "End": true}}}},
      "Work": {"Type": "Pass", "End": true}
    }
  })";
  for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
    std::string out = RenderGraph(*Parse(kNested), f);
    Graph g = Read(out, f);
    EXPECT_THAT(g.problems, ::testing::IsEmpty()) << out;
    std::vector<std::string> loops = g.Find("Loop\n(Map)");
    std::vector<std::string> works = g.Find("Work\n(Pass)");
    ASSERT_EQ(loops.size(), 2u) << out;
    ASSERT_EQ(works.size(), 3u) << out;
    std::set<std::string> ids(works.begin(), works.end());
    ids.insert(loops.begin(), loops.end());
    EXPECT_EQ(ids.size(), 5u);
    // Each Loop leads (Next) to a Work of its own machine and into exactly one item processor.
    for (const std::string& loop : loops) {
      int next = 0, into = 0;
      for (const Graph::Edge& e : g.edges) {
        if (e.from == loop && e.label.empty()) ++next;
        if (e.from == loop && e.label == "each item") ++into;
      }
      EXPECT_EQ(next, 1);
      EXPECT_EQ(into, 1);
    }
    EXPECT_TRUE(g.HasEdge("Loop\n(Map)", "Loop\n(Map)", "each item"));
    EXPECT_TRUE(g.HasEdge("Loop\n(Map)", "Work\n(Pass)", "each item"));
  }
}

constexpr char kAwkwardNames[] = R"({
  "StartAt": "say \"hi\"",
  "States": {
    "say \"hi\"": {"Type": "Pass", "Next": "back\\slash {x} [y] <z>"},
    "back\\slash {x} [y] <z>": {"Type": "Pass", "Next": "end"},
    "end": {"Type": "Pass", "Next": "a|b;c#d&e`f"},
    "a|b;c#d&e`f": {"Type": "Pass", "Next": "caf\u00e9 \u2192 \u65e5\u672c"},
    "caf\u00e9 \u2192 \u65e5\u672c": {"Type": "Succeed"}
  }
})";

TEST(GraphTest, DotEscapesQuotes) {
  std::string out = Dot(kAwkwardNames);
  EXPECT_THAT(out, HasSubstr("[label=\"say \\\"hi\\\"\\n(Pass)\""));
  EXPECT_THAT(out, HasSubstr("[label=\"back\\\\slash {x} [y] <z>\\n(Pass)\""));
  Graph g = ReadDot(out);
  EXPECT_THAT(g.problems, ::testing::IsEmpty()) << out;
  EXPECT_TRUE(g.HasEdge("say \"hi\"\n(Pass)", "back\\slash {x} [y] <z>\n(Pass)"));
}

TEST(GraphTest, MermaidEscapesSpecialCharacters) {
  std::string out = Mermaid(kAwkwardNames);
  EXPECT_THAT(out, HasSubstr("say #34;hi#34;"));
  EXPECT_THAT(out, HasSubstr("a#124;b#59;c#35;d#38;e#96;f"));
  EXPECT_THAT(out, HasSubstr("#60;z#62;"));
  // No raw quote or pipe survives inside a label.
  Graph g = ReadMermaid(out);
  EXPECT_THAT(g.problems, ::testing::IsEmpty()) << out;
  EXPECT_TRUE(g.HasEdge("say \"hi\"\n(Pass)", "back\\slash {x} [y] <z>\n(Pass)"));
  EXPECT_TRUE(g.HasEdge("a|b;c#d&e`f\n(Pass)", "caf\u00e9 \u2192 \u65e5\u672c\n(Succeed)"));
}

TEST(GraphTest, StateNamedEndDoesNotBreakMermaid) {
  // "end" closes a subgraph in Mermaid; node ids never come from names, so it is only a label.
  std::string out = Mermaid(kAwkwardNames);
  EXPECT_THAT(out, Not(HasSubstr("\nend\n")));
  EXPECT_THAT(out, HasSubstr("(\"end<br/>(Pass)\")"));
}

TEST(GraphTest, NewlinesInNamesDoNotSplitStatements) {
  std::string def = R"({"StartAt": "a\nb", "States": {"a\nb": {"Type": "Succeed"}}})";
  EXPECT_THAT(Mermaid(def), HasSubstr("([\"a b<br/>(Succeed)\"])"));
  EXPECT_THAT(Dot(def), HasSubstr("[label=\"a b\\n(Succeed)\""));
}

TEST(GraphTest, OutputFollowsDefinitionOrderAndIsDeterministic) {
  constexpr char kOrder[] = R"({
    "StartAt": "Zed",
    "States": {
      "Zed": {"Type": "Pass", "Next": "Alpha"},
      "Alpha": {"Type": "Pass", "Next": "Mid"},
      "Mid": {"Type": "Succeed"}
    }
  })";
  for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
    auto sm = Parse(kOrder);
    std::string out = RenderGraph(*sm, f);
    EXPECT_EQ(out, RenderGraph(*sm, f));
    size_t zed = out.find("Zed");
    size_t alpha = out.find("Alpha");
    size_t mid = out.find("Mid");
    EXPECT_LT(zed, alpha);
    EXPECT_LT(alpha, mid);
  }
}

TEST(GraphTest, TransitionToUnknownStateIsDrawnAsPlaceholder) {
  // Hand-built: ParseDefinition would reject this machine.
  StateMachine sm;
  sm.start_at = "A";
  State a;
  a.name = "A";
  a.next = "Nowhere";
  sm.states.emplace("A", a);
  sm.order.push_back("A");
  for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
    Graph g = Read(RenderGraph(sm, f), f);
    EXPECT_THAT(g.problems, ::testing::IsEmpty());
    EXPECT_TRUE(g.HasEdge("A\n(Pass)", "Nowhere\n(missing)"));
  }
}

// ---- the conformance corpus ----

std::string AslCorpusDir() {
  for (const char* cand : {ENGAGE_SOURCE_DIR "/../shared/conformance/asl/cases",
                           "/work/shared/conformance/asl/cases"}) {
    if (std::filesystem::is_directory(cand)) return cand;
  }
  return "";
}

// Every state of `sm` and its nested machines, with the Next edges they must have produced.
void CheckTransitionsDrawn(const StateMachine& sm, const Graph& g, const std::string& where) {
  for (const std::string& name : sm.order) {
    const State& st = *sm.Find(name);
    EXPECT_FALSE(g.Find(NodeLabel(st)).empty()) << where << ": no node for " << name;
    if (!st.next.empty()) {
      EXPECT_TRUE(g.HasEdge(NodeLabel(st), NodeLabel(*sm.Find(st.next))))
          << where << ": no edge " << name << " -> " << st.next;
    }
    if (!st.default_next.empty()) {
      EXPECT_TRUE(g.HasEdge(NodeLabel(st), NodeLabel(*sm.Find(st.default_next)), "Default"))
          << where << ": no Default edge from " << name;
    }
    for (const ChoiceRule& r : st.choices) {
      EXPECT_TRUE(g.HasEdge(NodeLabel(st), NodeLabel(*sm.Find(r.next))))
          << where << ": no choice edge " << name << " -> " << r.next;
    }
    for (const Catcher& c : st.catchers) {
      EXPECT_TRUE(g.HasEdge(NodeLabel(st), NodeLabel(*sm.Find(c.next))))
          << where << ": no catch edge " << name << " -> " << c.next;
    }
    for (const auto& b : st.branches) CheckTransitionsDrawn(*b, g, where);
    if (st.processor != nullptr) CheckTransitionsDrawn(*st.processor, g, where);
  }
}

TEST(GraphTest, RendersEveryCorpusDefinitionWellFormed) {
  std::string dir = AslCorpusDir();
  if (dir.empty()) GTEST_SKIP() << "shared/conformance/asl is not available";
  std::vector<std::filesystem::path> cases;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (std::filesystem::exists(entry.path() / "definition.json")) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  int rendered = 0;
  for (const auto& c : cases) {
    std::ifstream in(c / "definition.json", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    Json j = Json::parse(ss.str(), nullptr, false);
    if (j.is_discarded()) continue;
    std::vector<Diagnostic> problems;
    auto sm = ParseDefinition(j, &problems);
    if (sm == nullptr) continue;  // cases about invalid definitions
    ++rendered;
    for (GraphFormat f : {GraphFormat::kMermaid, GraphFormat::kDot}) {
      std::string out = RenderGraph(*sm, f);
      std::string where =
          c.filename().string() + (f == GraphFormat::kDot ? " (dot)" : " (mermaid)");
      Graph g = Read(out, f);
      EXPECT_THAT(g.problems, ::testing::IsEmpty()) << where << "\n" << out;
      EXPECT_FALSE(g.Find(NodeLabel(*sm->Find(sm->start_at))).empty()) << where;
      CheckTransitionsDrawn(*sm, g, where);
    }
  }
  EXPECT_GT(rendered, static_cast<int>(cases.size()) / 2) << "most corpus definitions parse";
}

TEST(GraphTest, GraphvizAcceptsCorpusDot) {
  if (std::system("which dot >/dev/null 2>&1") != 0) GTEST_SKIP() << "graphviz is not installed";
  std::string dir = AslCorpusDir();
  if (dir.empty()) GTEST_SKIP() << "shared/conformance/asl is not available";
  testing::TempDir tmp;
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    auto loaded = LoadDefinition((entry.path() / "definition.json").string());
    if (!loaded.ok()) continue;
    std::string file = tmp.WriteFile("g.dot", RenderGraph(*loaded.value(), GraphFormat::kDot));
    EXPECT_EQ(std::system(("dot -Tsvg -o /dev/null " + file).c_str()), 0) << entry.path();
    if (++checked == 50) break;  // a sample keeps the test fast
  }
}

}  // namespace
}  // namespace engage::flow
