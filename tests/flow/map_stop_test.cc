// A Map or Parallel state whose iteration or branch fails (the failure not caught in it) stops
// the iterations or branches still running, and records them as aborted the way AWS does
// (<Type>StateAborted for the state each was in, MapIterationAborted for a Map iteration); a
// redrive of a failed Map runs again only the iterations that did not succeed.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "engage/flow/engine.h"
#include "engage/flow/store.h"
#include "engage/flow/tasks.h"
#include "testing/temp_dir.h"

namespace engage::flow {
namespace {

std::shared_ptr<const StateMachine> Parse(const std::string& text) {
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(Json::parse(text), &problems);
  EXPECT_NE(sm, nullptr) << (problems.empty() ? "" : problems[0].ToString());
  return sm;
}

class CollectSink final : public EventSink {
 public:
  Status Append(const Event& e) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    return Status::Ok();
  }
  int Count(const std::string& type) {
    std::lock_guard<std::mutex> lock(mu);
    int n = 0;
    for (const Event& e : events) n += e.type == type ? 1 : 0;
    return n;
  }
  std::vector<int64_t> Indices(const std::string& type) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<int64_t> out;
    for (const Event& e : events) {
      if (e.type == type) out.push_back(e.details["index"].get<int64_t>());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::mutex mu;
  std::vector<Event> events;
};

// Resource "slow" holds its task until the engine says it is stopped (TaskRequest::stopped) or
// 10 s pass (then it succeeds, and the test fails on the history it sees). Resource "fail" waits
// until `wait_for` slow tasks are in flight, then fails.
class StopAwareTasks final : public TaskRunner {
 public:
  explicit StopAwareTasks(int wait_for) : wait_for_(wait_for) {}
  std::variant<Json, TaskError> Run(const TaskRequest& request) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (request.resource == "fail") {
      cv_.wait_for(lock, std::chrono::seconds(10), [&] { return slow_in_flight_ >= wait_for_; });
      for (int k = 0; k < 10000 && also && !also(); ++k) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return TaskError{"Item.Failed", "asked to"};
    }
    ++slow_in_flight_;
    cv_.notify_all();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!(request.stopped && request.stopped())) {
      if (std::chrono::steady_clock::now() > deadline) return Json{{"finished", true}};
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      lock.lock();
    }
    ++stopped_seen_;
    return Json{{"finished", false}};
  }
  // Also waited for before a "fail" task fails, when set.
  std::function<bool()> also;
  int stopped_seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_seen_;
  }

 private:
  const int wait_for_;
  std::mutex mu_;
  std::condition_variable cv_;
  int slow_in_flight_ = 0, stopped_seen_ = 0;
};

TEST(MapStopTest, FailingIterationStopsTheRunningOnes) {
  auto sm = Parse(R"j({"StartAt":"M","States":{"M":{"Type":"Map","End":true,
    "ItemProcessor":{"StartAt":"C","States":{
      "C":{"Type":"Choice","Choices":[{"Variable":"$","StringEquals":"fail","Next":"F"}],
           "Default":"S"},
      "F":{"Type":"Task","Resource":"fail","End":true},
      "S":{"Type":"Task","Resource":"slow","End":true}}}}}})j");
  ASSERT_NE(sm, nullptr);
  StopAwareTasks tasks(2);
  CollectSink sink;
  FakeClock clock(1700000000LL * 1000000);
  EngineOptions o;
  o.clock = &clock;
  o.tasks = &tasks;
  o.events = &sink;
  o.map_threads = 4;
  Engine engine(o);
  ExecutionResult r = engine.Run(*sm, Json::array({"slow", "fail", "slow"}), "stop");
  ASSERT_EQ(r.status, ExecutionStatus::kFailed) << r.ToJson();
  EXPECT_EQ(r.error, std::optional<std::string>("Item.Failed"));
  EXPECT_EQ(tasks.stopped_seen(), 2);
  EXPECT_EQ(sink.Indices("MapIterationFailed"), (std::vector<int64_t>{1}));
  EXPECT_EQ(sink.Indices("MapIterationAborted"), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(sink.Count("TaskStateAborted"), 2);
  EXPECT_EQ(sink.Count("MapIterationSucceeded"), 0);
  EXPECT_EQ(sink.Count("TaskSucceeded"), 0);
  EXPECT_EQ(sink.Count("MapStateFailed"), 1);
  EXPECT_EQ(sink.events.back().type, "ExecutionFailed");
}

TEST(MapStopTest, ToleratedFailureDoesNotStopTheOthers) {
  auto sm = Parse(R"j({"StartAt":"M","States":{"M":{"Type":"Map","End":true,
    "ToleratedFailureCount":1,
    "ItemProcessor":{"StartAt":"C","States":{
      "C":{"Type":"Choice","Choices":[{"Variable":"$","StringEquals":"fail","Next":"F"}],
           "Default":"S"},
      "F":{"Type":"Task","Resource":"fail","End":true},
      "S":{"Type":"Task","Resource":"slow","End":true}}}}}})j");
  ASSERT_NE(sm, nullptr);
  // Nothing stops the slow task: it succeeds after its safety wait (no timing is asserted).
  class Runner final : public TaskRunner {
   public:
    std::variant<Json, TaskError> Run(const TaskRequest& request) override {
      if (request.resource == "fail") return TaskError{"Item.Failed", "asked to"};
      return Json{{"stopped", request.stopped && request.stopped()}};
    }
  } tasks;
  CollectSink sink;
  FakeClock clock(1700000000LL * 1000000);
  EngineOptions o;
  o.clock = &clock;
  o.tasks = &tasks;
  o.events = &sink;
  o.map_threads = 4;
  ExecutionResult r = Engine(o).Run(*sm, Json::array({"slow", "fail"}), "tolerated");
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(r.output[0], Json({{"stopped", false}}));
  EXPECT_EQ(sink.Count("MapIterationAborted"), 0);
}

TEST(ParallelStopTest, FailingBranchStopsTheRunningOnes) {
  auto sm = Parse(R"j({"StartAt":"P","States":{"P":{"Type":"Parallel","End":true,"Branches":[
    {"StartAt":"S","States":{"S":{"Type":"Task","Resource":"slow","End":true}}},
    {"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":3600,"Next":"After"},
                             "After":{"Type":"Pass","End":true}}},
    {"StartAt":"F","States":{"F":{"Type":"Task","Resource":"fail","End":true}}}]}}})j");
  ASSERT_NE(sm, nullptr);
  StopAwareTasks tasks(1);
  std::atomic<bool> waiting{false};
  tasks.also = [&waiting] { return waiting.load(); };  // fail once the Wait waits
  CollectSink sink;
  FakeClock clock(1700000000LL * 1000000);
  EngineOptions o;
  o.clock = &clock;
  // The Wait advances the virtual clock in steps, each a millisecond of real time, so it is
  // still waiting when the failing branch fails.
  o.sleep = [&clock, &waiting](int64_t us) {
    waiting = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    clock.AdvanceMicros(us);
  };
  o.tasks = &tasks;
  o.events = &sink;
  o.map_threads = 4;
  ExecutionResult r = Engine(o).Run(*sm, Json::object(), "stop");
  ASSERT_EQ(r.status, ExecutionStatus::kFailed) << r.ToJson();
  EXPECT_EQ(r.error, std::optional<std::string>("Item.Failed"));
  EXPECT_EQ(tasks.stopped_seen(), 1);
  EXPECT_EQ(sink.Count("TaskStateAborted"), 1);
  EXPECT_EQ(sink.Count("WaitStateAborted"), 1);
  EXPECT_EQ(sink.Count("WaitStateExited"), 0);
  EXPECT_EQ(sink.Count("ParallelStateFailed"), 1);
  EXPECT_EQ(sink.Count("ParallelStateAborted"), 0);
}

TEST(MapStopTest, StoppedExecutionAbortsTheMapAndItsIterations) {
  auto sm = Parse(R"j({"StartAt":"M","States":{"M":{"Type":"Map","End":true,
    "ItemProcessor":{"StartAt":"S","States":{"S":{"Type":"Task","Resource":"slow","End":true}}}
  }}})j");
  ASSERT_NE(sm, nullptr);
  StopAwareTasks tasks(0);
  CollectSink sink;
  FakeClock clock(1700000000LL * 1000000);
  std::atomic<bool> cancel{false};
  EngineOptions o;
  o.clock = &clock;
  o.tasks = &tasks;
  o.events = &sink;
  o.cancel = &cancel;
  o.map_threads = 4;
  std::thread stopper([&] {
    // Stops the execution once both tasks run (their TaskStarted events are in the history).
    for (int k = 0; k < 10000 && sink.Count("TaskStarted") < 2; ++k) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    cancel = true;
  });
  ExecutionResult r = Engine(o).Run(*sm, Json::array({1, 2}), "stopped");
  stopper.join();
  EXPECT_EQ(r.status, ExecutionStatus::kAborted) << r.ToJson();
  EXPECT_EQ(sink.Indices("MapIterationAborted"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(sink.Count("TaskStateAborted"), 2);
  EXPECT_EQ(sink.Count("MapStateAborted"), 1);
  EXPECT_EQ(sink.Count("MapStateFailed"), 0);
  EXPECT_EQ(sink.events.back().type, "ExecutionAborted");
}

// Counts the iterations that succeeded, forwarding every call to the store's sink.
class CountingSink final : public EventSink {
 public:
  explicit CountingSink(EventSink* inner) : inner_(inner) {}
  Status Append(const Event& e) override {
    if (e.type == "MapIterationSucceeded") ++succeeded;
    return inner_->Append(e);
  }
  Status Flush() override { return inner_->Flush(); }
  Status Sync() override { return inner_->Sync(); }
  Status Checkpoint(const std::string& state, const Json& input, const std::string& input_json,
                    const Json& variables) override {
    return inner_->Checkpoint(state, input, input_json, variables);
  }
  std::atomic<int> succeeded{0};

 private:
  EventSink* inner_;
};

// Counts invocations per item; item "b" fails while `fail_b` is set, once `wait_succeeded`
// iterations have succeeded (so that, on threads, the others are done when it fails).
class CountingTasks final : public TaskRunner {
 public:
  std::variant<Json, TaskError> Run(const TaskRequest& request) override {
    std::string item = request.parameters.get<std::string>();
    int n;
    {
      std::lock_guard<std::mutex> lock(mu);
      n = ++calls[item];
    }
    if (item == "b" && fail_b) {
      for (int k = 0; k < 10000 && sink != nullptr && sink->succeeded < wait_succeeded; ++k) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return TaskError{"Item.Failed", "b is down"};
    }
    return Json("done-" + item + "-" + std::to_string(n));
  }
  std::mutex mu;
  std::map<std::string, int> calls;
  bool fail_b = true;
  int wait_succeeded = 0;
  CountingSink* sink = nullptr;
};

// Runs ["a","b","c"] through a Map where "b" fails, then redrives it with "b" fixed.
void RedriveRerunsOnlyUnsuccessfulIterations(int map_threads, const std::string& concurrency,
                                             const std::map<int64_t, Json>& kept) {
  testing::TempDir dir;
  FakeClock clock(1700000000LL * 1000000);
  auto store = ExecutionStore::Open(dir.path() + "/meta.db", clock);
  ASSERT_TRUE(store.ok());
  std::string def = R"j({"StartAt":"Prep","States":{
    "Prep":{"Type":"Pass","Next":"M"},
    "M":{"Type":"Map","End":true,"MaxConcurrency":)j" +
                    concurrency + R"j(,
      "ItemProcessor":{"StartAt":"T","States":{
        "T":{"Type":"Task","Resource":"work","Next":"Done"},
        "Done":{"Type":"Pass","End":true}}}}}})j";
  auto sm = Parse(def);
  ASSERT_NE(sm, nullptr);
  CreateExecutionRequest req{"r", "sm", def, "", Json::array({"a", "b", "c"}), ""};
  auto rec = (*store)->Create(req);
  ASSERT_TRUE(rec.ok());
  CountingTasks tasks;
  auto store_sink = (*store)->Sink(rec->id);
  CountingSink sink(store_sink.get());
  tasks.sink = &sink;
  tasks.wait_succeeded = static_cast<int>(kept.size());
  EngineOptions o;
  o.clock = &clock;
  o.events = &sink;
  o.tasks = &tasks;
  o.map_threads = map_threads;
  ExecutionResult r = Engine(o).Run(*sm, rec->input, rec->name);
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  ASSERT_OK((*store)->Finish(rec->id, r));
  store_sink.reset();

  tasks.fail_b = false;
  auto point = (*store)->BeginRedrive(rec->id);
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  EXPECT_EQ(point->state, "M");
  EXPECT_EQ(point->succeeded_iterations, kept);
  auto sink2 = (*store)->Sink(rec->id);
  o.events = sink2.get();
  ExecutionResult r2 = Engine(o).Redrive(*sm, rec->input, rec->name, *point);
  ASSERT_EQ(r2.status, ExecutionStatus::kSucceeded) << r2.ToJson();
  EXPECT_EQ(r2.output, Json::array({"done-a-1", "done-b-2", "done-c-1"}));
  EXPECT_EQ(tasks.calls["a"], 1);  // kept its output: not run again
  EXPECT_EQ(tasks.calls["b"], 2);
  EXPECT_EQ(tasks.calls["c"], 1);
}

TEST(MapRedriveTest, RedriveRerunsOnlyUnsuccessfulIterationsInline) {
  // Inline iterations run in order: "c" never started before "b" failed.
  RedriveRerunsOnlyUnsuccessfulIterations(1, "0", {{0, Json("done-a-1")}});
}

TEST(MapRedriveTest, RedriveRerunsOnlyUnsuccessfulIterationsOnThreads) {
  // Side by side, "a" and "c" succeeded before "b" failed: both keep their output.
  RedriveRerunsOnlyUnsuccessfulIterations(4, "0", {{0, Json("done-a-1")}, {2, Json("done-c-1")}});
}

TEST(MapRedriveTest, SecondRedriveKeepsWhatTheFirstOneRan) {
  // Events of a Map M whose iteration 0 succeeded first, iteration 1 in the first redrive; a
  // later visit of M (a loop) would start over, and a visit before the last one does not count.
  auto ev = [](int64_t id, int64_t prev, std::string type, Json details) {
    Event e;
    e.id = id;
    e.previous_event_id = prev;
    e.type = std::move(type);
    e.details = std::move(details);
    return e;
  };
  Json m = Json{{"name", "M"}};
  auto it = [](int64_t i) { return Json{{"name", "M"}, {"index", i}}; };
  auto exited = [](const std::string& out) { return Json{{"name", "T"}, {"output", out}}; };
  std::vector<Event> h = {
      ev(1, 0, "ExecutionStarted", Json::object()),
      ev(2, 1, "MapStateEntered", m),  // an earlier visit, before a loop
      ev(3, 2, "MapIterationStarted", it(0)),
      ev(4, 3, "TaskStateExited", exited("\"old\"")),
      ev(5, 4, "MapIterationSucceeded", it(0)),
      ev(6, 5, "MapStateExited", m),
      ev(7, 6, "MapStateEntered", m),  // the last visit
      ev(8, 7, "MapIterationStarted", it(0)),
      ev(9, 8, "TaskStateExited", exited("\"a\"")),
      ev(10, 9, "MapIterationSucceeded", it(0)),
      ev(11, 7, "MapIterationStarted", it(1)),
      ev(12, 11, "MapIterationFailed", it(1)),
      ev(13, 12, "ExecutionFailed", Json::object()),
      ev(14, 13, "ExecutionRedriven", Json::object()),
      ev(15, 14, "MapStateEntered", m),  // the first redrive
      ev(16, 15, "MapIterationStarted", it(1)),
      ev(17, 16, "PassStateExited", exited("{\"b\":2}")),
      ev(18, 17, "MapIterationSucceeded", it(1)),
      ev(19, 15, "MapIterationStarted", it(2)),
      ev(20, 19, "MapIterationFailed", it(2)),
      ev(21, 20, "ExecutionFailed", Json::object()),
  };
  EXPECT_EQ(SucceededMapIterations(h, "M"),
            (std::map<int64_t, Json>{{0, Json("a")}, {1, Json({{"b", 2}})}}));
  EXPECT_TRUE(SucceededMapIterations(h, "Other").empty());
}

}  // namespace
}  // namespace engage::flow
