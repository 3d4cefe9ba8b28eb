// Renders a parsed state machine as a diagram: Mermaid (for Markdown, GitHub, the docs) or
// Graphviz DOT (for `dot -Tsvg`).
//
//   std::string mermaid = RenderGraph(*machine, GraphFormat::kMermaid);
//   std::string dot = RenderGraph(*machine, GraphFormat::kDot);
//
// Every state becomes a node labelled with its name and type, shaped by type (Choice a diamond,
// Succeed/Fail terminal shapes, Task a box, ...). Edges: a start marker to StartAt, Next,
// Choice rules (labelled with a condition summary such as "$.x NumericEquals 0" or the JSONata
// Condition, truncated), Default, Catch (dashed, labelled with ErrorEquals) and End (to an end
// marker). Retry appears as a dotted self-loop labelled with the retried errors. Parallel
// branches and Map item processors become nested subgraphs, recursively.
//
// Node ids are generated ("s0", "s1", ...), never taken from state names, so they are unique
// across nested machines that reuse names and need no escaping; names appear only in labels,
// which are escaped for the target format. Output depends only on the machine and follows
// definition order (StateMachine::order), so it is stable across runs.
//
// Thread-safety: a pure function of its arguments.
#pragma once

#include <string>

#include "engage/flow/definition.h"

namespace engage::flow {

enum class GraphFormat { kMermaid, kDot };

// Never fails: transitions to unknown states (impossible after ParseDefinition validation)
// are drawn to a placeholder node labelled with the missing name.
std::string RenderGraph(const StateMachine& sm, GraphFormat format);

}  // namespace engage::flow
