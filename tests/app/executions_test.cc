// The execution runner: executions on threads it owns, stopped on request (in this process or
// through meta.db from another runner), and shutdown that aborts and records what runs.
#include "engage/app/executions.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "engage/app/pipelines.h"
#include "engage/core/home.h"
#include "engage/lake/lake.h"
#include "testing/temp_dir.h"

namespace engage::app {
namespace {

using std::chrono::milliseconds;

class ExecutionRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_.root = dir_.path() + "/home";
    ASSERT_TRUE(lake::Lake::Init(home_, false).ok());
  }

  // A machine that waits `seconds` then succeeds with {"done": true}.
  static ExecutionRequest Waiting(int seconds, const std::string& name = "") {
    Json def = Json::parse(R"({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": )" +
                           std::to_string(seconds) + R"(, "Next": "P"},
        "P": {"Type": "Pass", "Result": {"done": true}, "End": true}}})");
    std::vector<flow::Diagnostic> problems;
    ExecutionRequest r;
    r.machine = flow::ParseDefinition(def, &problems);
    r.state_machine = "waiting";
    r.definition = def.dump();
    r.name = name;
    return r;
  }

  // Waits until the runner of another "process" has the execution RUNNING in meta.db.
  static bool EventuallyRunning(ExecutionRunner& r, const std::string& id) {
    for (int i = 0; i < 200; ++i) {
      auto rec = r.AwaitEnd(id, 0);
      if (rec.ok() && rec->status == "RUNNING") return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }

  engage::testing::TempDir dir_;
  HomePaths home_;
};

TEST_F(ExecutionRunnerTest, StartsOnItsOwnThreadAndWaitReturnsTheOutcome) {
  ExecutionRunner runner(home_);
  auto rec = runner.Start(Waiting(0, "quick"));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->status, "RUNNING");
  auto out = runner.Wait(rec->id);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->result.status, flow::ExecutionStatus::kSucceeded);
  EXPECT_EQ(out->result.output, Json::parse(R"({"done": true})"));
  EXPECT_EQ(out->record.status, "SUCCEEDED");
  EXPECT_EQ(runner.running(), 0);
  // Waited for once: a second Wait does not know it any more.
  EXPECT_EQ(runner.Wait(rec->id).status().code(), StatusCode::kNotFound);
}

TEST_F(ExecutionRunnerTest, EveryEventReachesTheObserverInOrder) {
  ExecutionRunner runner(home_);
  ExecutionRequest req = Waiting(0);
  std::vector<std::string> types;
  req.on_event = [&types](const flow::Event& e) { types.push_back(e.type); };
  auto rec = runner.Start(std::move(req));
  ASSERT_TRUE(rec.ok());
  ASSERT_TRUE(runner.Wait(rec->id).ok());
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.front(), "ExecutionStarted");
  EXPECT_EQ(types.back(), "ExecutionSucceeded");
}

TEST_F(ExecutionRunnerTest, StopEndsARunningExecutionAbortedWithItsHistory) {
  ExecutionRunner runner(home_);
  auto rec = runner.Start(Waiting(3600, "long"));
  ASSERT_TRUE(rec.ok());
  ASSERT_TRUE(runner.Stop("long").ok());  // by name
  auto out = runner.Wait(rec->id);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result.status, flow::ExecutionStatus::kAborted);
  EXPECT_EQ(out->record.status, "ABORTED");
  auto store = runner.OpenStore();
  ASSERT_TRUE(store.ok());
  auto history = (*store)->History(rec->id);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->back().type, "ExecutionAborted");
  // Stopping it again: it is not running.
  EXPECT_EQ(runner.Stop(rec->id).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(runner.Stop("no-such-execution").code(), StatusCode::kNotFound);
}

TEST_F(ExecutionRunnerTest, AnotherProcessStopsItThroughMetaDb) {
  ExecutionRunner owner(home_);
  ExecutionRunner other(home_);  // stands for `engage flow stop` in another process
  auto rec = owner.Start(Waiting(3600));
  ASSERT_TRUE(rec.ok());
  ASSERT_TRUE(EventuallyRunning(other, rec->id));
  ASSERT_TRUE(other.Stop(rec->id).ok());
  auto ended = other.AwaitEnd(rec->id, 30000);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->status, "ABORTED");
  auto out = owner.Wait(rec->id);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result.status, flow::ExecutionStatus::kAborted);
}

TEST_F(ExecutionRunnerTest, ShutdownAbortsWhatRunsAndRecordsIt) {
  std::string id;
  {
    ExecutionRunner runner(home_);
    ExecutionRequest req = Waiting(3600);
    req.background = true;
    auto rec = runner.Start(std::move(req));
    ASSERT_TRUE(rec.ok());
    id = rec->id;
    EXPECT_EQ(runner.Shutdown(ExecutionRunner::ShutdownMode::kAbort, 10000), 0);
    EXPECT_EQ(runner.Start(Waiting(0)).status().code(), StatusCode::kUnavailable);
  }
  ExecutionRunner after(home_);
  auto rec = after.AwaitEnd(id, 0);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->status, "ABORTED");
}

TEST_F(ExecutionRunnerTest, ShutdownInWaitModeLetsExecutionsFinish) {
  ExecutionRunner runner(home_);
  ExecutionRequest req = Waiting(1);
  req.background = true;
  auto rec = runner.Start(std::move(req));
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(runner.Shutdown(ExecutionRunner::ShutdownMode::kWait, 60000), 0);
  auto done = runner.AwaitEnd(rec->id, 0);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, "SUCCEEDED");
}

TEST_F(ExecutionRunnerTest, BackgroundExecutionsAreForgottenOnceEnded) {
  ExecutionRunner runner(home_);
  ExecutionRequest req = Waiting(0);
  req.background = true;
  auto rec = runner.Start(std::move(req));
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(runner.Wait(rec->id).status().code(), StatusCode::kNotFound);
  auto done = runner.AwaitEnd(rec->id, 30000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, "SUCCEEDED");
  for (int i = 0; i < 300 && runner.running() > 0; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(runner.running(), 0);
}

TEST_F(ExecutionRunnerTest, ABadMockFileRecordsNothing) {
  ExecutionRunner runner(home_);
  ExecutionRequest req = Waiting(0, "mocked");
  req.mock_path = dir_.path() + "/missing-mocks.json";
  EXPECT_FALSE(runner.Start(std::move(req)).ok());
  auto store = runner.OpenStore();
  ASSERT_TRUE(store.ok());
  auto list = (*store)->List(10, "");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(ExecutionRunnerTest, WithoutAHomeItSaysToRunInit) {
  HomePaths nowhere{dir_.path() + "/nowhere"};
  ExecutionRunner runner(nowhere);
  auto rec = runner.Start(Waiting(0));
  EXPECT_EQ(rec.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(rec.status().message().find("engage init"), std::string::npos);
}

TEST(PipelinesTest, TheShippedPipelineParsesAndItsInputOrdersCustomersFirst) {
  auto machine = EngagementPipeline();
  ASSERT_TRUE(machine.ok()) << machine.status().ToString();
  auto input = EngagementPipelineInput(
      "m", {"events=a.csv", "orders=o.csv", "customers=c.csv", "events=b.csv"});
  ASSERT_TRUE(input.ok());
  EXPECT_EQ((*input)["model"], "m");
  ASSERT_EQ((*input)["ingest"].size(), 3u);
  EXPECT_EQ((*input)["ingest"][0]["table"], "customers");
  EXPECT_EQ((*input)["ingest"][1]["table"], "events");
  EXPECT_EQ((*input)["ingest"][1]["inputs"], Json::parse(R"(["a.csv", "b.csv"])"));
  EXPECT_EQ((*input)["ingest"][2]["table"], "orders");
  EXPECT_EQ(EngagementPipelineInput("m", {"events"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EngagementPipelineInput("m", {"=x"}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace engage::app
