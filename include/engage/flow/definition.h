// A parsed and validated Amazon States Language definition.
//
//   std::vector<Diagnostic> problems;
//   auto sm = ParseDefinition(json, &problems);   // null when any problem is an error
//   for (const Diagnostic& d : problems) std::cout << d.ToString() << "\n";
//
// Parsing compiles every JSONPath, intrinsic call and JSONata expression once, so running a
// state does no parsing. Validation reports every problem it finds (not only the first), each
// with the state name, the JSON path of the field ("/States/Check/Choices/0/Next") and a
// message.
//
// Thread-safety: a StateMachine is immutable after parsing and safe to share between threads.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/flow/intrinsics.h"
#include "engage/flow/jsonpath.h"
#include "engage/jsonata/jsonata.h"

namespace engage::flow {

struct Diagnostic {
  std::string state;    // "" for machine-level problems
  std::string pointer;  // JSON pointer of the field, e.g. "/States/A/Next"
  std::string message;
  std::string ToString() const;  // "/States/A/Next (state 'A'): ..."
};

enum class QueryLanguage { kJsonPath, kJsonata };
enum class StateType { kPass, kTask, kChoice, kWait, kSucceed, kFail, kParallel, kMap };

// AWS's bounds on the time fields of a definition (and of their values read at run time).
// TimeoutSeconds, HeartbeatSeconds, Retry IntervalSeconds and MaxAttempts, and Wait Seconds are
// integers up to 99999999; Retry MaxDelaySeconds is below 31622401 (a leap year).
inline constexpr int64_t kMaxTimeoutSeconds = 99999999;
inline constexpr int64_t kMaxWaitSeconds = 99999999;
inline constexpr int64_t kMaxRetryDelaySeconds = 31622400;
// MaxConcurrency and ToleratedFailureCount: non-negative 32-bit integers (AWS's Java ints).
inline constexpr int64_t kMaxMapCount = 2147483647;

// "Pass", "Task", ... as in the definition and in event type names.
const char* StateTypeName(StateType t);

// A payload template compiled once: Parameters / ItemSelector / ResultSelector / Assign in
// JSONPath mode (keys ending in ".$" hold paths or intrinsic calls) or any JSONata-mode field
// (strings "{% ... %}" hold expressions).
struct Template {
  // User-provided (defined in definition.cc): with an implicit one, clang + libstdc++ 12 cannot
  // instantiate std::pair<std::string, Template> below while Template is still incomplete.
  Template();
  enum class Kind { kLiteral, kObject, kArray, kPath, kIntrinsic, kJsonata };
  Kind kind = Kind::kLiteral;
  Json literal;
  std::vector<std::pair<std::string, Template>> fields;  // kObject (keys without ".$")
  std::vector<Template> items;                           // kArray
  std::shared_ptr<const JsonPath> path;
  std::shared_ptr<const Intrinsic> intrinsic;
  std::shared_ptr<const jsonata::Expression> expr;
  std::string source;  // the path / call / expression text
  std::string field;   // location for error texts, e.g. "Output/result" or "x.$"
};

struct Retrier {
  std::vector<std::string> error_equals;
  double interval_seconds = 1;
  int max_attempts = 3;
  double backoff_rate = 2.0;
  std::optional<double> max_delay_seconds;
  bool full_jitter = false;
};

struct Catcher {
  std::vector<std::string> error_equals;
  std::string next;
  std::optional<JsonPath> result_path;  // JSONPath mode
  bool result_path_null = false;
  std::optional<Template> output;  // JSONata mode
  std::optional<Template> assign;
};

struct ChoiceRule {
  // Boolean combinators.
  enum class Kind { kAnd, kOr, kNot, kCompare, kJsonata };
  Kind kind = Kind::kCompare;
  std::vector<ChoiceRule> children;
  // kCompare: Variable, the operator (e.g. "NumericEquals") and its operand; `path_operand` for
  // the ...Path forms.
  std::optional<JsonPath> variable;
  std::string op;
  Json operand;
  std::optional<JsonPath> path_operand;
  // kJsonata: Condition.
  std::optional<Template> condition;
  // Top-level rules only.
  std::string next;
  std::optional<Template> assign;
  std::optional<Template> output;
};

struct StateMachine;

struct State {
  std::string name;
  StateType type = StateType::kPass;
  QueryLanguage language = QueryLanguage::kJsonPath;
  std::string comment;
  std::string next;
  bool end = false;

  // JSONPath-mode data flow. nullopt means the default "$"; *_null means the field is null.
  std::optional<JsonPath> input_path, output_path, result_path;
  bool input_path_null = false, output_path_null = false, result_path_null = false;
  std::optional<Template> parameters;  // Parameters, or ItemSelector for Map
  std::optional<Template> result_selector;
  std::optional<Json> result;  // Pass "Result"
  // JSONata-mode data flow.
  std::optional<Template> arguments;  // Arguments (Task/Parallel), ItemSelector (Map)
  std::optional<Template> output;
  std::optional<Template> assign;

  std::vector<Retrier> retry;
  std::vector<Catcher> catchers;

  // Task.
  std::string resource;
  std::optional<Template> timeout_seconds, heartbeat_seconds;  // literal or path/expression
  // Choice.
  std::vector<ChoiceRule> choices;
  std::string default_next;
  // Wait: exactly one of these.
  std::optional<Template> wait_seconds, wait_timestamp;
  std::optional<JsonPath> seconds_path, timestamp_path;
  // Fail.
  std::optional<Template> error, cause;  // literal, path (ErrorPath/CausePath) or expression
  bool error_from_path = false, cause_from_path = false;
  // Parallel.
  std::vector<std::shared_ptr<const StateMachine>> branches;
  // Map.
  std::shared_ptr<const StateMachine> processor;
  bool distributed = false;
  std::optional<JsonPath> items_path;
  std::optional<Template> items;  // JSONata Items
  std::optional<Template> max_concurrency;
  std::optional<Template> tolerated_failure_count, tolerated_failure_percentage;
  std::string max_concurrency_path_text, tolerated_count_path_text, tolerated_pct_path_text;
  std::optional<JsonPath> max_concurrency_path, tolerated_count_path, tolerated_pct_path;
  Json item_reader, item_batcher, result_writer;  // null when absent
  // Their compiled Parameters (JSONPath) / Arguments (JSONata), and ItemBatcher's BatchInput.
  std::optional<Template> reader_parameters, writer_parameters, batch_input;
  std::string label;
};

struct StateMachine {
  std::string comment;
  std::string start_at;
  QueryLanguage language = QueryLanguage::kJsonPath;
  std::optional<int64_t> timeout_seconds;
  std::map<std::string, State, std::less<>> states;
  // Definition order of the state names (for graphs and listings).
  std::vector<std::string> order;

  const State* Find(std::string_view name) const;
};

// Parses and validates `definition`. Appends every problem to `problems`; returns nullptr when
// the definition is invalid.
std::shared_ptr<const StateMachine> ParseDefinition(const Json& definition,
                                                    std::vector<Diagnostic>* problems);

// AWS's maximum wait (and execution duration) for standard workflows: one year.
inline constexpr int64_t kMaxWaitUntilSeconds = 31536000;

// Wait states (at any depth) whose literal Timestamp lies more than `max_seconds` after
// `now_micros`: such a wait cannot end before the execution times out. One problem per state,
// at its Timestamp field. `flow validate` checks this against the clock; parsing does not.
std::vector<Diagnostic> FarTimestamps(const StateMachine& sm, int64_t now_micros,
                                      int64_t max_seconds = kMaxWaitUntilSeconds);

// What AWS refuses in an EXPRESS state machine: Express Workflows "only support Request
// Response integrations" (AWS Step Functions developer guide, "Integrating optimized services"),
// so a Task resource with the Run a Job (.sync, .sync:2) or Wait for Callback
// (.waitForTaskToken) pattern is a problem, and so is an activity
// (arn:aws:states:<region>:<account>:activity:<name>), which Express Workflows do not support.
// Nested Parallel branches and Map processors are checked too. Empty: fine as EXPRESS.
std::vector<Diagnostic> ExpressProblems(const StateMachine& sm);
// The same as a Status: kInvalidArgument listing every problem (AWS refuses such a definition
// for an EXPRESS state machine with a ValidationException).
Status CheckExpressDefinition(const StateMachine& sm);

// Reads, parses and validates a definition file. kNotFound for a missing file,
// kInvalidArgument listing the problems for an invalid one.
Result<std::shared_ptr<const StateMachine>> LoadDefinition(const std::string& path);

}  // namespace engage::flow
