// Parallel states: every branch on the state's input, side by side when they wait.

#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

#include "flow/engine_internal.h"

namespace engage::flow {

Flow<Json> Engine::Impl::RunParallel(const State& st, const Json& input, Lane& lane,
                                     const StateRun& sr) {
  (void)sr;
  Emit(lane, "ParallelStateStarted", Json());
  Json results = Json::array();
  // Branches that wait on tasks or timers run side by side (as on AWS); the first failing
  // branch in definition order fails the state, like the inline loop. A branch that fails stops
  // the others: AWS's ASL specification says that when a branch fails, "the entire Parallel
  // state is considered to have failed and all its branches are stopped". A stopped branch ends
  // with <Type>StateAborted for the state it was in (a Task or a Wait, say).
  bool waits = false;
  for (const auto& branch : st.branches) waits |= Waits(*branch);
  if (opt.map_threads > 1 && waits && st.branches.size() > 1) {
    const size_t n = st.branches.size();
    std::vector<std::optional<Flow<Json>>> done(n);
    std::vector<int64_t> last(n, 0);
    std::vector<std::thread> pool;
    StopSignal stop_branches;
    stop_branches.parent = lane.stop;
    const int64_t first_prev = lane.prev_event;
    auto run = [&](size_t i) {
      VarScope scope;
      scope.parent = lane.vars;
      Lane child;
      child.prev_event = first_prev;
      child.vars = &scope;
      child.record_events = lane.record_events;
      child.child_events = lane.child_events;
      child.stop = &stop_branches;
      Flow<Json> r = RunMachineCaught(*st.branches[i], input, child, st.branches[i]->start_at);
      if (!r.ok() && !IsAbort(r.failure())) stop_branches.raised.store(true);
      done[i].emplace(std::move(r));
      last[i] = child.prev_event;
    };
    size_t started = 1;
    try {
      for (; started < n; ++started) pool.emplace_back(run, started);
    } catch (const std::system_error&) {
      // No thread left on this system: the branches without one run here, after the first.
    }
    run(0);
    for (size_t i = started; i < n; ++i) run(i);
    for (std::thread& t : pool) t.join();
    for (size_t i = 0; i < n; ++i) lane.prev_event = std::max(lane.prev_event, last[i]);
    // The Parallel state itself was stopped (the execution, or a Map or Parallel around it).
    if (Stopping(lane)) return StopFailure(lane);
    for (size_t i = 0; i < n; ++i) {
      if (done[i]->ok()) {
        results.push_back(std::move(done[i]->value()));
        continue;
      }
      if (IsAbort(done[i]->failure())) continue;  // stopped by the branch that failed
      Emit(lane, "ParallelStateFailed", Json());
      return std::move(done[i]->failure());
    }
    Emit(lane, "ParallelStateSucceeded", Json(), false);
    return results;
  }
  // Every branch's first event follows ParallelStateStarted; the state's closing event
  // follows the last event of any branch.
  const int64_t started = lane.prev_event;
  for (const auto& branch : st.branches) {
    VarScope scope;
    scope.parent = lane.vars;
    Lane child;
    child.prev_event = started;
    child.vars = &scope;
    child.record_events = lane.record_events;
    child.child_events = lane.child_events;
    child.stop = lane.stop;
    Flow<Json> r = RunMachineCaught(*branch, input, child, branch->start_at);
    lane.prev_event = std::max(lane.prev_event, child.prev_event);
    if (!r.ok()) {
      // A stop ends the state as aborted (Execute records ParallelStateAborted), not failed.
      if (!IsAbort(r.failure())) Emit(lane, "ParallelStateFailed", Json());
      return std::move(r.failure());
    }
    results.push_back(std::move(r.value()));
  }
  Emit(lane, "ParallelStateSucceeded", Json(), false);
  return results;
}

}  // namespace engage::flow
