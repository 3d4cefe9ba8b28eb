// libFuzzer target: bytes -> JSON -> ParseDefinition; a valid machine is also rendered as a graph
// and run by the Engine on a sample input.
//
// Runs must end quickly and deterministically, yet a fuzzed machine can loop forever (a Choice
// back to itself) or retry ~10^8 times (MaxAttempts 99999999 on a failing Task). The engine has
// no step limit and checks its cancel flag only between states, so this target (a) runs a copy
// of the machine with every MaxAttempts clamped and (b) counts clock reads (every state entry
// reads the clock, in every lane, including distributed Map children that record no events)
// and raises the cancel flag once a budget is spent. A watchdog thread would also work but
// makes crashes depend on timing.
#include <algorithm>
#include <atomic>

#include "engage/flow/definition.h"
#include "engage/flow/engine.h"
#include "engage/flow/graph.h"
#include "fuzz_common.h"

namespace {

using engage::Json;
using engage::Status;
namespace flow = engage::flow;

constexpr int64_t kClockReadBudget = 4000;
constexpr int kMaxAttempts = 2;

// A FuzzClock that raises the cancel flag after `budget` wall-clock reads.
class BudgetClock final : public engage::Clock {
 public:
  BudgetClock(std::atomic<bool>* cancel, int64_t budget) : cancel_(cancel), budget_(budget) {}
  int64_t NowMicros() const override {
    if (reads_.fetch_add(1) >= budget_) cancel_->store(true);
    return clock_.NowMicros();
  }
  // Real time, not budgeted: the engine hands this clock to JSONata, whose time guard reads it.
  int64_t MonotonicMicros() const override { return clock_.MonotonicMicros(); }
  void Advance(int64_t micros) { clock_.AdvanceMicros(micros); }

 private:
  engage::fuzz::FuzzClock clock_;
  std::atomic<bool>* cancel_;
  int64_t budget_;
  mutable std::atomic<int64_t> reads_{0};
};

// Serialises every event, so the history code runs too.
class SerializingSink final : public flow::EventSink {
 public:
  Status Append(const flow::Event& event) override {
    (void)engage::DumpJson(event.ToJson());
    return Status::Ok();
  }
};

// Echoes the parameters, or fails when the resource asks to, so Retry/Catch paths run as well.
class EchoTasks final : public flow::TaskRunner {
 public:
  std::variant<Json, flow::TaskError> Run(const flow::TaskRequest& request) override {
    if (request.resource.find("fail") != std::string::npos) {
      return flow::TaskError{"Fuzz.Failed", "asked to fail"};
    }
    return Json{{"echo", request.parameters}, {"state", request.state_name}};
  }
};

// A copy of `sm` (and its nested machines) with every retrier's MaxAttempts clamped.
std::shared_ptr<const flow::StateMachine> Bounded(const flow::StateMachine& sm) {
  auto copy = std::make_shared<flow::StateMachine>(sm);
  for (auto& [name, st] : copy->states) {
    for (flow::Retrier& r : st.retry) r.max_attempts = std::min(r.max_attempts, kMaxAttempts);
    for (auto& branch : st.branches) branch = Bounded(*branch);
    if (st.processor != nullptr) st.processor = Bounded(*st.processor);
  }
  return copy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Json definition = Json::parse(engage::fuzz::AsText(data, size), nullptr, false);
  if (definition.is_discarded()) return 0;
  std::vector<flow::Diagnostic> problems;
  auto sm = flow::ParseDefinition(definition, &problems);
  for (const flow::Diagnostic& d : problems) (void)d.ToString();
  if (sm == nullptr) return 0;

  (void)flow::RenderGraph(*sm, flow::GraphFormat::kMermaid);
  (void)flow::RenderGraph(*sm, flow::GraphFormat::kDot);

  std::atomic<bool> cancel{false};
  BudgetClock clock(&cancel, kClockReadBudget);
  SerializingSink sink;
  EchoTasks tasks;
  flow::EngineOptions options;
  options.clock = &clock;
  options.sleep = [&clock](int64_t micros) { clock.Advance(micros); };
  options.tasks = &tasks;
  options.events = &sink;
  options.cancel = &cancel;
  options.jsonata.max_depth = 200;
  options.jsonata.time_limit_ms = 200;
  flow::Engine engine(std::move(options));
  flow::ExecutionResult result =
      engine.Run(*Bounded(*sm), engage::fuzz::SampleDocument(), "fuzz-run");
  (void)engage::DumpJson(result.ToJson());
  return 0;
}
