// Map iterations that run tasks go on up to MaxConcurrency threads (EngineOptions::map_threads),
// with results in item order and the inline loop's failure and tolerance rules.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include "engage/flow/engine.h"

namespace engage::flow {
namespace {

std::shared_ptr<const StateMachine> Parse(const std::string& text) {
  std::vector<Diagnostic> problems;
  auto sm = ParseDefinition(Json::parse(text), &problems);
  EXPECT_NE(sm, nullptr) << (problems.empty() ? "" : problems[0].ToString());
  return sm;
}

// Holds each task until `gate` tasks are in flight at once (or 10 s pass), so a run that never
// reaches that concurrency is detected without timing assertions. Items with "fail" fail.
class GateTasks final : public TaskRunner {
 public:
  explicit GateTasks(int gate) : gate_(gate) {}
  std::variant<Json, TaskError> Run(const TaskRequest& request) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    if (in_flight_ >= gate_) reached_ = true;
    cv_.notify_all();
    if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return reached_; })) timed_out_ = true;
    --in_flight_;
    if (request.parameters.value("fail", false)) return TaskError{"Item.Failed", "asked to"};
    return Json{{"done", request.parameters["n"]}};
  }
  int max_in_flight() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_in_flight_;
  }
  bool timed_out() {
    std::lock_guard<std::mutex> lock(mu_);
    return timed_out_;
  }

 private:
  const int gate_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0, max_in_flight_ = 0;
  bool reached_ = false, timed_out_ = false;
};

class CollectSink final : public EventSink {
 public:
  Status Append(const Event& e) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    return Status::Ok();
  }
  std::mutex mu;
  std::vector<Event> events;
};

std::string Machine(const std::string& map_fields) {
  return R"({"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.items",)" + map_fields +
         R"(,"ItemProcessor":{"StartAt":"T","States":{"T":{"Type":"Task",
           "Resource":"arn:aws:states:::lambda:invoke","End":true}}},"End":true}}})";
}

Json Items(int n, int failing = -1) {
  Json items = Json::array();
  for (int i = 0; i < n; ++i) items.push_back(Json{{"n", i}, {"fail", i == failing}});
  return Json{{"items", items}};
}

ExecutionResult RunWith(const StateMachine& sm, const Json& input, TaskRunner* tasks,
                        EventSink* sink, int map_threads) {
  EngineOptions o;
  o.tasks = tasks;
  o.events = sink;
  o.map_threads = map_threads;
  Engine engine(o);
  return engine.Run(sm, input, "concurrent");
}

TEST(MapConcurrencyTest, RunsUpToMaxConcurrencyIterationsAtOnceInItemOrder) {
  auto sm = Parse(Machine(R"("MaxConcurrency":3)"));
  GateTasks tasks(3);
  CollectSink sink;
  ExecutionResult r = RunWith(*sm, Items(9), &tasks, &sink, 40);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_FALSE(tasks.timed_out()) << "never had 3 iterations in flight";
  EXPECT_LE(tasks.max_in_flight(), 3);
  ASSERT_EQ(r.output.size(), 9u);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(r.output[i]["done"], i);
  std::set<int64_t> ids, started;
  for (const Event& e : sink.events) {
    EXPECT_TRUE(ids.insert(e.id).second) << "duplicate event id " << e.id;
    if (e.type == "MapIterationStarted") started.insert(e.details["index"].get<int64_t>());
  }
  EXPECT_EQ(started.size(), 9u);
  EXPECT_EQ(sink.events.back().type, "ExecutionSucceeded");
}

TEST(MapConcurrencyTest, OneThreadRunsIterationsInline) {
  auto sm = Parse(Machine(R"("MaxConcurrency":0)"));
  GateTasks tasks(1);
  ExecutionResult r = RunWith(*sm, Items(4), &tasks, nullptr, 1);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_EQ(tasks.max_in_flight(), 1);
}

TEST(MapConcurrencyTest, FailureWithoutToleranceFailsTheMap) {
  auto sm = Parse(Machine(R"("MaxConcurrency":2)"));
  GateTasks tasks(2);
  ExecutionResult r = RunWith(*sm, Items(6, 3), &tasks, nullptr, 40);
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "Item.Failed");
  EXPECT_EQ(r.cause, "asked to");
}

TEST(MapConcurrencyTest, ToleratedFailuresBecomeErrorObjects) {
  auto sm = Parse(Machine(R"("MaxConcurrency":4,"ToleratedFailureCount":1)"));
  GateTasks tasks(4);
  ExecutionResult r = RunWith(*sm, Items(8, 5), &tasks, nullptr, 40);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  ASSERT_EQ(r.output.size(), 8u);
  EXPECT_EQ(r.output[5], Json::parse(R"({"Error":"Item.Failed","Cause":"asked to"})"));
  EXPECT_EQ(r.output[7]["done"], 7);
}

}  // namespace
}  // namespace engage::flow

namespace engage::flow {
namespace {

std::string ParallelMachine(int branches, int failing) {
  std::string b;
  for (int i = 0; i < branches; ++i) {
    if (i > 0) b += ",";
    b += R"({"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
            "Parameters":{"n":)" +
         std::to_string(i) + R"(,"fail":)" + (i == failing ? "true" : "false") +
         R"(},"End":true}}})";
  }
  return R"({"StartAt":"P","States":{"P":{"Type":"Parallel","Branches":[)" + b +
         R"(],"End":true}}})";
}

TEST(ParallelConcurrencyTest, BranchesWithTasksRunSideBySide) {
  auto sm = Parse(ParallelMachine(3, -1));
  GateTasks tasks(3);
  ExecutionResult r = RunWith(*sm, Json::object(), &tasks, nullptr, 40);
  ASSERT_EQ(r.status, ExecutionStatus::kSucceeded) << r.ToJson();
  EXPECT_FALSE(tasks.timed_out()) << "the 3 branches never ran at once";
  EXPECT_EQ(r.output, Json::parse(R"([{"done":0},{"done":1},{"done":2}])"));
}

TEST(ParallelConcurrencyTest, FailingBranchFailsTheState) {
  auto sm = Parse(ParallelMachine(3, 1));
  GateTasks tasks(3);
  ExecutionResult r = RunWith(*sm, Json::object(), &tasks, nullptr, 40);
  ASSERT_EQ(r.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.error, "Item.Failed");
}

}  // namespace
}  // namespace engage::flow
