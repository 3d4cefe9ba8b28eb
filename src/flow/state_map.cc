// Map states (inline and distributed): items, ItemSelector, MaxConcurrency, tolerated
// failures and the iterations, on up to MaxConcurrency threads when they wait.

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "engage/core/ids.h"
#include "flow/engine_internal.h"
#include "flow/util_internal.h"

namespace engage::flow {

Flow<std::optional<double>> Engine::Impl::MapNumber(const std::optional<Template>& literal,
                                                    const std::optional<JsonPath>& path,
                                                    const std::string& path_name, bool integer,
                                                    const Json& eff, const Json& raw,
                                                    const StateRun& sr,
                                                    const VarScope& vars) const {
  Json v;
  if (path) {
    Result<Json> r = ResolvePath(*path, eff, sr, vars);
    if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
    if (!r.ok()) {
      return RuntimeError(sr, fmt::format("The {} field refers to a path that does not exist: {}",
                                          path_name, path->text()));
    }
    v = std::move(r).value();
    if (v.is_string()) {
      // AWS accepts numbers written as strings ("1") here.
      Json parsed = Json::parse(v.get<std::string>(), nullptr, false);
      if (!parsed.is_discarded() && parsed.is_number()) v = std::move(parsed);
    }
    bool ok = v.is_number() &&
              (!integer || v.is_number_integer() || v.get<double>() == std::floor(v.get<double>()));
    if (!ok) {
      std::string shown = v.is_string() ? v.get<std::string>() : DumpJson(v);
      return RuntimeError(
          sr, fmt::format("The {} field refers to value \"{}\" which is not a "
                          "valid {}: {}",
                          path_name, shown, integer ? "integer" : "float", path->text()));
    }
    return std::optional<double>(v.get<double>());
  }
  if (!literal) return std::optional<double>();
  if (literal->kind == Template::Kind::kLiteral) {
    v = literal->literal;
  } else {
    StatesVar sv;
    sv.input = &raw;
    FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*literal, sv, sr, vars));
  }
  if (!v.is_number() || !std::isfinite(v.get<double>())) {
    return QueryError(
        sr, fmt::format("The {} field must be a number, but was: {}", literal->field, DumpJson(v)));
  }
  return std::optional<double>(v.get<double>());
}

Flow<Json> Engine::Impl::RunMap(const State& st, const Json& raw, const Json& eff, Lane& lane,
                                StateRun& sr) {
  const bool jsonata = st.language == QueryLanguage::kJsonata;
  StatesVar sv;
  sv.input = &raw;
  // The items.
  Json items;
  if (jsonata) {
    if (st.items) {
      if (st.items->kind == Template::Kind::kJsonata) {
        FLOW_ASSIGN_OR_RETURN(items, EvalJsonata(*st.items, sv, sr, *lane.vars));
        if (!items.is_array()) {
          return QueryError(sr,
                            fmt::format("The JSONata expression '{}' specified for the field "
                                        "'Items' returned an unexpected result type. "
                                        "Expected 'array', but was '{}' for value: {}",
                                        st.items->source, JsonTypeName(items), DumpJson(items)));
        }
      } else {
        FLOW_ASSIGN_OR_RETURN(items, EvalJsonata(*st.items, sv, sr, *lane.vars));
      }
    } else {
      items = raw;
    }
  } else if (st.items_path) {
    Result<Json> r = ResolvePath(*st.items_path, eff, sr, *lane.vars);
    if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
    if (!r.ok()) {
      return RuntimeError(
          sr, fmt::format("Invalid path '{}' : {}", st.items_path->text(), r.status().message()));
    }
    items = std::move(r).value();
  } else {
    items = eff;
  }
  if (!st.item_reader.is_null()) {
    FLOW_ASSIGN_OR_RETURN(items, ReadItems(st, raw, eff, sr, *lane.vars));
  }
  if (!items.is_array()) {
    return QueryError(sr,
                      fmt::format("Map state input must be an array but was: {}", DumpJson(items)));
  }
  // Settings.
  FLOW_ASSIGN_OR_RETURN(std::optional<double> max_concurrency,
                        MapNumber(st.max_concurrency, st.max_concurrency_path, "MaxConcurrencyPath",
                                  true, eff, raw, sr, *lane.vars));
  FLOW_ASSIGN_OR_RETURN(std::optional<double> tolerated_count,
                        MapNumber(st.tolerated_failure_count, st.tolerated_count_path,
                                  "ToleratedFailureCountPath", true, eff, raw, sr, *lane.vars));
  FLOW_ASSIGN_OR_RETURN(
      std::optional<double> tolerated_pct,
      MapNumber(st.tolerated_failure_percentage, st.tolerated_pct_path,
                "ToleratedFailurePercentagePath", false, eff, raw, sr, *lane.vars));
  Emit(lane, "MapStateStarted", Json{{"length", items.size()}});
  // Counts beyond any item count act alike: clamped, they convert to integers safely.
  if (max_concurrency) {
    max_concurrency = std::min(*max_concurrency, static_cast<double>(kMaxMapCount));
  }
  if (tolerated_count) {
    tolerated_count = std::min(*tolerated_count, static_cast<double>(kMaxMapCount));
  }
  if (tolerated_count && *tolerated_count < 0) {
    return RuntimeError(sr, "ToleratedFailureCount cannot be negative.");
  }
  if (tolerated_pct && (*tolerated_pct < 0 || *tolerated_pct > 100)) {
    return RuntimeError(sr, "ToleratedFailurePercentage must be between 0 and 100.");
  }
  if (st.distributed) {
    Emit(lane, "MapRunStarted", Json::object());
  }
  const bool batched = !st.item_batcher.is_null();
  if (batched) {
    FLOW_ASSIGN_OR_RETURN(items, BatchMapItems(st, std::move(items), raw, eff, sr, *lane.vars));
  }
  const bool writer = !st.result_writer.is_null();
  std::vector<internal::ChildOutcome> outcomes;
  const std::string map_run_id = NewId(*clock);
  Json results = Json::array();
  int64_t failures = 0;
  const size_t n = items.size();
  // Iterations that wait on tasks or timers run on up to MaxConcurrency threads; pure data
  // flow runs inline, where threads would cost more than they save.
  const size_t threads = MapThreads(st, max_concurrency, n);
  // Redriven at this Map: iterations that succeeded before keep their output and do not run
  // again (AWS RedriveExecution "reschedules and redrives only the iterations and branches that
  // failed or aborted").
  const std::map<int64_t, Json> kept = TakeRedriveIterations(st, lane);
  auto kept_output = [&](size_t i) -> std::optional<Json> {
    auto it = kept.find(static_cast<int64_t>(i));
    if (it == kept.end()) return std::nullopt;
    return it->second;
  };
  std::vector<std::optional<Flow<Json>>> done;
  std::vector<int64_t> done_prev, done_start, done_stop;
  if (threads > 1) {
    std::vector<Json> inputs(n);
    for (size_t i = 0; i < n; ++i) {
      inputs[i] = items[i];
      if (!batched && (st.parameters || st.arguments)) {
        StateRun isr = sr;
        isr.map_item_value = &items[i];
        isr.map_item_index = static_cast<int64_t>(i);
        if (jsonata) {
          FLOW_ASSIGN_OR_RETURN(inputs[i], EvalJsonata(*st.arguments, sv, isr, *lane.vars));
        } else {
          FLOW_ASSIGN_OR_RETURN(inputs[i], EvalPathTemplate(*st.parameters, eff, isr, *lane.vars));
        }
      }
    }
    done.resize(n);
    done_prev.assign(n, 0);
    done_start.assign(n, 0);
    done_stop.assign(n, 0);
    std::atomic<size_t> next{0};
    // Raised when an iteration fails beyond the tolerance: no iteration starts after that, and
    // the running ones stop (AWS: a Map state whose iteration fails, the failure not caught in
    // it, fails and stops the others; each stopped iteration's history ends with
    // <Type>StateAborted for the state it was in and MapIterationAborted).
    StopSignal stop_iterations;
    stop_iterations.parent = lane.stop;
    std::atomic<int64_t> failed{0};
    const bool tolerant = tolerated_count || tolerated_pct;
    auto worker = [&] {
      for (size_t i = next++; i < n && !stop_iterations.Raised() && !Cancelled(); i = next++) {
        done_start[i] = clock->NowMicros();
        if (std::optional<Json> out = kept_output(i)) {
          done_stop[i] = done_start[i];
          done[i].emplace(std::move(*out));
          continue;
        }
        VarScope scope;
        scope.parent = st.distributed ? nullptr : lane.vars;
        Lane child;
        child.vars = &scope;
        child.prev_event = lane.prev_event;
        child.record_events = lane.record_events && !st.distributed;
        child.child_events = lane.record_events && st.distributed
                                 ? std::make_shared<std::atomic<int64_t>>(0)
                                 : lane.child_events;
        child.stop = &stop_iterations;
        if (!st.distributed) {
          Emit(child, "MapIterationStarted",
               Json{{"index", static_cast<int64_t>(i)}, {"name", st.name}});
        }
        Flow<Json> r =
            RunMachineCaught(*st.processor, std::move(inputs[i]), child, st.processor->start_at);
        if (!st.distributed) {
          const char* type = r.ok()                 ? "MapIterationSucceeded"
                             : IsAbort(r.failure()) ? "MapIterationAborted"
                                                    : "MapIterationFailed";
          Emit(child, type, Json{{"index", static_cast<int64_t>(i)}, {"name", st.name}}, !r.ok());
        }
        if (!r.ok() && !IsAbort(r.failure())) {
          // Fatal once neither tolerance can hold any more (failures only grow).
          int64_t f = ++failed;
          bool over_count = !tolerated_count || f > static_cast<int64_t>(*tolerated_count);
          bool over_pct = !tolerated_pct ||
                          static_cast<double>(f) * 100.0 / static_cast<double>(n) > *tolerated_pct;
          if (!tolerant || (over_count && over_pct)) stop_iterations.raised.store(true);
        }
        done_stop[i] = clock->NowMicros();
        done_prev[i] = child.prev_event;
        done[i].emplace(std::move(r));
      }
    };
    std::vector<std::thread> pool;
    try {
      for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    } catch (const std::system_error&) {
      // No thread left on this system: the workers that started (and this thread) share the
      // iterations.
    }
    worker();
    for (std::thread& t : pool) t.join();
    for (size_t i = 0; i < n; ++i) {
      if (done[i]) lane.prev_event = std::max(lane.prev_event, done_prev[i]);
    }
    // The Map state itself was stopped (the execution, or a Map or Parallel around it): it ends
    // as aborted (Execute records MapStateAborted).
    if (Stopping(lane)) return StopFailure(lane);
  }
  const bool tolerant = tolerated_count || tolerated_pct;
  // Records iteration i's outcome in index order. Returns the failure that ends the Map: a
  // stop, or a failing iteration when no tolerance is set (further failures are counted and
  // judged against the tolerance once every iteration ran).
  auto collect = [&](size_t i, Flow<Json>& r, int64_t start,
                     int64_t stop) -> std::optional<Failure> {
    if (writer) {
      internal::ChildOutcome o;
      o.name = fmt::format("{}:{}", map_run_id, i);
      o.succeeded = r.ok();
      o.input = items[i];
      if (r.ok()) {
        o.output = r.value();
      } else {
        o.error = r.failure().error.value_or("");
        o.cause = r.failure().cause.value_or("");
      }
      o.start_micros = start;
      o.stop_micros = stop;
      outcomes.push_back(std::move(o));
    }
    if (r.ok()) {
      results.push_back(std::move(r.value()));
      return std::nullopt;
    }
    if (IsAbort(r.failure())) return std::move(r.failure());
    ++failures;
    if (!tolerant) {
      Emit(lane, "MapStateFailed", Json());
      return std::move(r.failure());
    }
    Json err = Json::object();
    if (r.failure().error) err["Error"] = *r.failure().error;
    if (r.failure().cause) err["Cause"] = *r.failure().cause;
    results.push_back(std::move(err));
    return std::nullopt;
  };
  for (size_t i = 0; i < n; ++i) {
    if (threads > 1) {
      // Not started, or stopped because another iteration failed: the Map fails with that
      // iteration's error (collected at its index, or judged against the tolerance below).
      if (!done[i] || (!done[i]->ok() && IsAbort(done[i]->failure()))) continue;
      if (auto f = collect(i, *done[i], done_start[i], done_stop[i])) return std::move(*f);
      continue;
    }
    if (Stopping(lane)) return StopFailure(lane);  // start no iteration in a stopped lane
    const int64_t child_start = clock->NowMicros();
    if (std::optional<Json> out = kept_output(i)) {
      Flow<Json> r = std::move(*out);
      if (auto f = collect(i, r, child_start, child_start)) return std::move(*f);
      continue;
    }
    Json item_input = items[i];
    if (!batched && (st.parameters || st.arguments)) {
      StateRun isr = sr;
      isr.map_item_value = &items[i];
      isr.map_item_index = static_cast<int64_t>(i);
      if (jsonata) {
        FLOW_ASSIGN_OR_RETURN(item_input, EvalJsonata(*st.arguments, sv, isr, *lane.vars));
      } else {
        FLOW_ASSIGN_OR_RETURN(item_input, EvalPathTemplate(*st.parameters, eff, isr, *lane.vars));
      }
    }
    VarScope scope;
    scope.parent = st.distributed ? nullptr : lane.vars;
    Lane child;
    child.vars = &scope;
    child.prev_event = lane.prev_event;
    child.record_events = lane.record_events && !st.distributed;
    child.child_events = lane.record_events && st.distributed
                             ? std::make_shared<std::atomic<int64_t>>(0)
                             : lane.child_events;
    child.stop = lane.stop;
    if (!st.distributed) {
      Emit(child, "MapIterationStarted",
           Json{{"index", static_cast<int64_t>(i)}, {"name", st.name}});
    }
    Flow<Json> r =
        RunMachineCaught(*st.processor, std::move(item_input), child, st.processor->start_at);
    if (!st.distributed) {
      const char* type = r.ok()                 ? "MapIterationSucceeded"
                         : IsAbort(r.failure()) ? "MapIterationAborted"
                                                : "MapIterationFailed";
      Emit(child, type, Json{{"index", static_cast<int64_t>(i)}, {"name", st.name}}, !r.ok());
    }
    lane.prev_event = child.prev_event;
    if (auto f = collect(i, r, child_start, clock->NowMicros())) return std::move(*f);
  }
  if (failures > 0) {
    bool within =
        (tolerated_count && failures <= static_cast<int64_t>(*tolerated_count)) ||
        (tolerated_pct && n > 0 &&
         static_cast<double>(failures) * 100.0 / static_cast<double>(n) <= *tolerated_pct);
    if (!within) {
      if (st.distributed) Emit(lane, "MapRunFailed", Json::object());
      Emit(lane, "MapStateFailed", Json());
      return Failure{"States.ExceedToleratedFailureThreshold",
                     "The specified tolerated failure threshold was exceeded"};
    }
  }
  if (writer) {
    FLOW_ASSIGN_OR_RETURN(results,
                          WriteMapResults(st, outcomes, map_run_id, raw, eff, sr, *lane.vars));
  }
  if (st.distributed) Emit(lane, "MapRunSucceeded", Json::object());
  Emit(lane, "MapStateSucceeded", Json(), false);
  return results;
}

std::map<int64_t, Json> Engine::Impl::TakeRedriveIterations(const State& st, const Lane& lane) {
  if (!lane.top_level || redrive_map_state.empty() || st.name != redrive_map_state) return {};
  std::map<int64_t, Json> kept = std::move(redrive_iterations);
  redrive_iterations.clear();
  redrive_map_state.clear();
  return kept;
}

size_t Engine::Impl::MapThreads(const State& st, std::optional<double> max_concurrency,
                                size_t items) const {
  if (opt.map_threads <= 1 || items <= 1 || !Waits(*st.processor)) return 1;
  size_t limit = static_cast<size_t>(opt.map_threads);
  if (max_concurrency && *max_concurrency >= 1) {
    limit = std::min(limit, static_cast<size_t>(*max_concurrency));
  }
  return std::min(limit, items);
}

}  // namespace engage::flow
