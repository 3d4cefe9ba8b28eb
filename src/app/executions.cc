#include "engage/app/executions.h"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include "engage/app/monitoring.h"
#include "engage/app/steps.h"
#include "engage/core/config.h"
#include "engage/core/sqlite.h"
#include "engage/flow/tasks.h"
#include "engage/serve/machines.h"

namespace engage::app {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// How often the watcher looks for stop requests from other processes and reaps ended runs.
constexpr milliseconds kWatchInterval(100);

// Stop requests for executions running in another process: `engage flow stop` (or a server)
// writes one; the runner of the execution honours it and removes it.
constexpr const char* kStopRequestsSchema =
    "CREATE TABLE IF NOT EXISTS flow_stop_requests ("
    "execution_id TEXT PRIMARY KEY, requested_micros INTEGER NOT NULL)";

// Passes every event to the store's sink and to an observer.
class ObservedSink final : public flow::EventSink {
 public:
  ObservedSink(flow::EventSink& inner, std::function<void(const flow::Event&)> observer)
      : inner_(inner), observer_(std::move(observer)) {}
  Status Append(const flow::Event& event) override {
    ENGAGE_RETURN_IF_ERROR(inner_.Append(event));
    observer_(event);
    return Status::Ok();
  }
  Status Flush() override { return inner_.Flush(); }
  Status Sync() override { return inner_.Sync(); }
  Status Checkpoint(const std::string& state, const Json& input, const std::string& input_json,
                    const Json& variables) override {
    return inner_.Checkpoint(state, input, input_json, variables);
  }

 private:
  flow::EventSink& inner_;
  std::function<void(const flow::Event&)> observer_;
};

}  // namespace

// One execution on a runner thread.
struct ExecutionRunner::Run {
  flow::ExecutionRecord record;
  std::shared_ptr<const flow::StateMachine> machine;
  std::function<void(const flow::Event&)> on_event;
  bool background = false;
  Config config;
  std::unique_ptr<flow::TaskRegistry> tasks;
  std::atomic<bool> stop{false};
  std::thread thread;
  bool done = false;  // guarded by the runner's mutex
  std::optional<ExecutionOutcome> outcome;
};

ExecutionRunner::ExecutionRunner(HomePaths home, std::shared_ptr<ReadSides> reads,
                                 std::shared_ptr<Monitoring> monitoring)
    : home_(std::move(home)), reads_(std::move(reads)), monitoring_(std::move(monitoring)) {}

ExecutionRunner::~ExecutionRunner() {
  Shutdown(ShutdownMode::kAbort, 10000);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, run] : runs_) {
      if (run->thread.joinable()) threads.push_back(std::move(run->thread));
    }
    runs_.clear();
  }
  // A run that did not stop within the wait (a Task blocked in a command) is still joined:
  // no thread outlives the runner.
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed_.notify_all();
  }
  if (watcher_.joinable()) watcher_.join();
}

Result<std::unique_ptr<flow::ExecutionStore>> ExecutionRunner::OpenStore(int64_t* recovered) const {
  ENGAGE_RETURN_IF_ERROR(home_.Require("executions"));
  ENGAGE_ASSIGN_OR_RETURN(auto store,
                          flow::ExecutionStore::Open(home_.meta_db(), SystemClock::Default()));
  ENGAGE_ASSIGN_OR_RETURN(int64_t n, store->RecoverInterrupted());
  if (recovered != nullptr) *recovered = n;
  if (n > 0) {
    spdlog::warn(
        "{} interrupted execution(s) marked FAILED (their process died); see `engage flow list "
        "--status FAILED`",
        n);
  }
  ENGAGE_RETURN_IF_ERROR(store->db().Exec(kStopRequestsSchema));
  return store;
}

namespace {

// The task registry an execution runs with: Engage's steps, mapped commands and mocks; with a
// role, every Task is checked against it and ingest inputs are confined to [flow] input_dirs.
Result<std::unique_ptr<flow::TaskRegistry>> MakeTasks(
    const HomePaths& home, const std::shared_ptr<ReadSides>& reads, const Config& config,
    const std::string& machine, const std::shared_ptr<const serve::Policy>& role,
    const std::string& mock_path, const std::string& mock_case) {
  auto tasks = std::make_unique<flow::TaskRegistry>(config.flow);
  StepConfinement confinement;
  if (role != nullptr) {
    tasks->SetAuthorizer(serve::RoleAuthorizer(role, machine));
    confinement.confine_inputs = true;
    confinement.input_dirs = ResolveInputDirs(config.flow, home);
  }
  RegisterEngageSteps(*tasks, home, confinement, reads);
  if (!mock_path.empty()) ENGAGE_RETURN_IF_ERROR(tasks->LoadMocks(mock_path, machine, mock_case));
  return tasks;
}

// The engine's options for one run: identity from [flow], limits, the S3 stand-in (bounded by
// the role), and the run's own stop flag for the execution and its waits.
flow::EngineOptions EngineOptionsFor(const HomePaths& home, const Config& cfg,
                                     flow::TaskRegistry* tasks, const flow::ExecutionRecord& rec,
                                     flow::EventSink* sink, std::atomic<bool>* stop) {
  flow::EngineOptions options;
  options.tasks = tasks;
  options.events = sink;
  options.cancel = stop;
  options.sleep = [stop](int64_t micros) {
    auto end = steady_clock::now() + std::chrono::microseconds(micros);
    while (!stop->load()) {
      auto left = end - steady_clock::now();
      if (left <= steady_clock::duration::zero()) return;
      std::this_thread::sleep_for(std::min<steady_clock::duration>(left, milliseconds(50)));
    }
  };
  options.region = cfg.flow.region;
  options.account = cfg.flow.account;
  options.state_machine_name = rec.state_machine;
  options.role_arn = fmt::format("arn:aws:iam::{}:role/engage-local", cfg.flow.account);
  options.express = rec.express;
  options.execution_id = rec.id;
  ConfigureObjectStore(options, cfg, home);
  if (tasks->has_authorizer()) {
    auto buckets = options.bucket_dir;
    options.bucket_dir = [tasks, buckets](const std::string& bucket,
                                          bool for_write) -> Result<std::string> {
      ENGAGE_RETURN_IF_ERROR(
          tasks->Authorize(for_write ? "s3:PutObject" : "s3:GetObject", "bucket/" + bucket));
      return buckets(bucket, for_write);
    };
  }
  // Map iterations that run tasks go side by side, except under mocks (whose answers are
  // numbered per invocation, so they need a fixed order).
  options.map_threads = tasks->has_mocks() ? 1 : 40;
  options.max_history_events = cfg.flow.max_history_events;
  options.max_execution_seconds = cfg.flow.max_execution_seconds;
  options.max_payload_bytes = cfg.flow.max_payload_bytes;
  return options;
}

}  // namespace

Result<flow::ExecutionRecord> ExecutionRunner::Start(ExecutionRequest request) {
  if (request.machine == nullptr) return InvalidArgumentError("no state machine to run");
  if (monitoring_ != nullptr) {
    ENGAGE_RETURN_IF_ERROR(monitoring_->AdmitPipeline(request.state_machine));
  }
  ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore());
  auto run = std::make_shared<Run>();
  // Built before the execution is recorded, so a bad config or mock file leaves nothing behind.
  ENGAGE_ASSIGN_OR_RETURN(run->config, Config::Load(home_.config()));
  ENGAGE_ASSIGN_OR_RETURN(run->tasks,
                          MakeTasks(home_, reads_, run->config, request.state_machine, request.role,
                                    request.mock_path, request.mock_case));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return UnavailableError("Engage is shutting down: no new executions");
  }
  flow::CreateExecutionRequest create;
  create.name = request.name;
  create.state_machine = request.state_machine;
  create.definition = request.definition;
  create.definition_path = request.definition_path;
  create.input = request.input;
  create.mock_case = request.mock_case;
  create.mock_path = request.mock_path;
  create.express = request.express;
  ENGAGE_ASSIGN_OR_RETURN(run->record, store->Create(create));
  run->machine = std::move(request.machine);
  run->on_event = std::move(request.on_event);
  run->background = request.background;
  return Launch(std::move(store), run, std::nullopt);
}

Result<flow::ExecutionRecord> ExecutionRunner::StartRedrive(const RedriveRequest& request,
                                                            flow::RedrivePoint* point) {
  ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore());
  auto run = std::make_shared<Run>();
  ENGAGE_ASSIGN_OR_RETURN(run->record, store->Get(request.execution));
  const flow::ExecutionRecord& rec = run->record;
  ENGAGE_ASSIGN_OR_RETURN(Json def, ParseJson(rec.definition, "the stored definition"));
  std::vector<flow::Diagnostic> problems;
  run->machine = flow::ParseDefinition(def, &problems);
  if (run->machine == nullptr) {
    return FailedPreconditionError(
        fmt::format("the stored definition of '{}' no longer parses: {}", rec.name,
                    problems.empty() ? "" : problems.front().ToString()));
  }
  // The execution's own mocks unless others are given; reused mocks continue numbering
  // invocations where the execution left off (a Throw on invocation 0 is not repeated).
  bool reuse = request.mock_path.empty() && !rec.mock_path.empty();
  if (request.mock_path.empty() && !reuse && !request.mock_case.empty()) {
    return InvalidArgumentError(
        fmt::format("--mock-case needs --mock: execution '{}' ran without mocks", rec.name));
  }
  std::string mock_file = reuse ? rec.mock_path : request.mock_path;
  std::string test_case =
      !request.mock_case.empty() ? request.mock_case : (reuse ? rec.mock_case : "");
  ENGAGE_RETURN_IF_ERROR(flow::ExecutionStore::CheckRedrivable(rec));
  if (monitoring_ != nullptr) ENGAGE_RETURN_IF_ERROR(monitoring_->AdmitPipeline(rec.state_machine));
  ENGAGE_ASSIGN_OR_RETURN(run->config, Config::Load(home_.config()));
  ENGAGE_ASSIGN_OR_RETURN(run->tasks, MakeTasks(home_, reads_, run->config, rec.state_machine,
                                                nullptr, mock_file, test_case));
  if (reuse) {
    ENGAGE_ASSIGN_OR_RETURN(auto counts, store->TaskInvocations(rec.id));
    run->tasks->SetInvocationCounts(std::move(counts));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return UnavailableError("Engage is shutting down: no new executions");
  }
  ENGAGE_ASSIGN_OR_RETURN(flow::RedrivePoint resume, store->BeginRedrive(rec.id));
  if (point != nullptr) *point = resume;
  run->on_event = request.on_event;
  return Launch(std::move(store), run, std::move(resume));
}

Result<flow::ExecutionRecord> ExecutionRunner::Launch(std::unique_ptr<flow::ExecutionStore> store,
                                                      std::shared_ptr<Run> run,
                                                      std::optional<flow::RedrivePoint> redrive) {
  std::lock_guard<std::mutex> lock(mu_);
  runs_[run->record.id] = run;
  run->thread =
      std::thread([this, run, s = std::move(store), redrive = std::move(redrive)]() mutable {
        Execute(run, std::move(s), std::move(redrive));
      });
  if (!watcher_.joinable()) watcher_ = std::thread([this] { Watch(); });
  return run->record;
}

void ExecutionRunner::Execute(const std::shared_ptr<Run>& run,
                              std::unique_ptr<flow::ExecutionStore> store,
                              std::optional<flow::RedrivePoint> redrive) {
  const flow::ExecutionRecord& rec = run->record;
  auto sink = store->Sink(rec.id);
  std::unique_ptr<ObservedSink> observed;
  flow::EventSink* events = sink.get();
  if (run->on_event) {
    observed = std::make_unique<ObservedSink>(*sink, run->on_event);
    events = observed.get();
  }
  flow::EngineOptions options =
      EngineOptionsFor(home_, run->config, run->tasks.get(), rec, events, &run->stop);
  // The execution is one entry of the cost ledger (its state transitions) and each Engage step
  // one more (a Lambda invocation), with the queries and training inside them nested.
  std::optional<WorkRecorder> work;
  if (monitoring_ != nullptr) {
    work.emplace(monitoring_.get(), run->config, "execution", rec.state_machine,
                 CostContext{.execution_id = rec.id, .pipeline = rec.state_machine});
    std::string parent = work->entry().id;
    // The registry belongs to the run: a raw pointer back to it makes no cycle.
    Run* self = run.get();
    run->tasks->SetStepWrapper([this, self, parent](const flow::TaskRequest& task,
                                                    const std::string& step,
                                                    const std::function<Result<Json>()>& fn) {
      const flow::ExecutionRecord& r = self->record;
      WorkRecorder step_work(monitoring_.get(), self->config, "step", step,
                             CostContext{.parent = parent,
                                         .execution_id = r.id,
                                         .pipeline = r.state_machine,
                                         .step = task.state_name});
      step_work.entry().parent = parent;
      return fn();
    });
  }
  flow::Engine engine(options);
  flow::ExecutionResult r = redrive ? engine.Redrive(*run->machine, rec.input, rec.name, *redrive)
                                    : engine.Run(*run->machine, rec.input, rec.name);
  Status finished = store->Finish(rec.id, r);
  if (!finished.ok()) spdlog::error("execution {}: {}", rec.name, finished.ToString());
  if (work) {
    int64_t transitions = 0;
    if (auto history = store->History(rec.id); history.ok()) {
      for (const flow::Event& e : *history) transitions += e.type.ends_with("StateEntered");
    }
    work->set_units(transitions);
    work->Finish();
    if (r.status == flow::ExecutionStatus::kFailed ||
        r.status == flow::ExecutionStatus::kTimedOut) {
      monitor::Alert alert;
      alert.kind = "execution";
      alert.name = rec.name;
      alert.message = fmt::format("execution {} of {} ended {}: {} {}", rec.name, rec.state_machine,
                                  flow::ExecutionStatusName(r.status), r.error.value_or(""),
                                  r.cause.value_or(""));
      alert.details = Json{{"execution_id", rec.id},
                           {"state_machine", rec.state_machine},
                           {"status", flow::ExecutionStatusName(r.status)},
                           {"error", r.error.value_or("")},
                           {"cause", r.cause.value_or("")}};
      monitoring_->Raise(run->config, std::move(alert));
    }
  }
  // A stop request that arrived as the execution ended has nothing left to stop.
  if (auto del = store->db().Prepare("DELETE FROM flow_stop_requests WHERE execution_id = ?");
      del.ok()) {
    (void)del->Bind(1, rec.id).Run();
  }
  auto done = store->Get(rec.id);
  std::lock_guard<std::mutex> lock(mu_);
  run->outcome = ExecutionOutcome{done.ok() ? *done : rec, std::move(r)};
  run->done = true;
  changed_.notify_all();
}

Result<ExecutionOutcome> ExecutionRunner::Wait(const std::string& id) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = runs_.find(id);
  if (it == runs_.end() || it->second->background) {
    return NotFoundError(fmt::format("execution {} is not run by this runner", id));
  }
  std::shared_ptr<Run> run = it->second;
  changed_.wait(lock, [&run] { return run->done; });
  runs_.erase(id);
  std::thread t = std::move(run->thread);
  lock.unlock();
  if (t.joinable()) t.join();
  return std::move(*run->outcome);
}

Status ExecutionRunner::Stop(const std::string& id_or_name) {
  ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore());
  ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, store->Get(id_or_name));
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = runs_.find(rec.id);
    if (it != runs_.end() && !it->second->done) {
      it->second->stop.store(true);
      return Status::Ok();
    }
  }
  if (rec.status != "RUNNING") {
    return FailedPreconditionError(
        fmt::format("execution {} ({}) is not running: it is {}", rec.name, rec.id, rec.status));
  }
  // Running in another process: its runner sees the request within kWatchInterval.
  ENGAGE_ASSIGN_OR_RETURN(
      SqliteStmt st, store->db().Prepare("INSERT OR REPLACE INTO flow_stop_requests (execution_id, "
                                         "requested_micros) VALUES (?, ?)"));
  st.Bind(1, rec.id).Bind(2, SystemClock::Default().NowMicros());
  return st.Run();
}

void ExecutionRunner::StopAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, run] : runs_) run->stop.store(true);
}

Result<flow::ExecutionRecord> ExecutionRunner::AwaitEnd(const std::string& id_or_name,
                                                        int64_t timeout_ms) {
  ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore());
  auto end = steady_clock::now() + milliseconds(timeout_ms);
  while (true) {
    ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, store->Get(id_or_name));
    if (rec.status != "RUNNING" || steady_clock::now() >= end) return rec;
    std::this_thread::sleep_for(milliseconds(50));
  }
}

int64_t ExecutionRunner::Shutdown(ShutdownMode mode, int64_t wait_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  shutting_down_ = true;
  if (mode == ShutdownMode::kAbort) {
    for (auto& [id, run] : runs_) run->stop.store(true);
  }
  auto all_done = [this] {
    for (const auto& [id, run] : runs_) {
      if (!run->done) return false;
    }
    return true;
  };
  changed_.wait_for(lock, milliseconds(wait_ms), all_done);
  int64_t left = 0;
  for (const auto& [id, run] : runs_) left += run->done ? 0 : 1;
  return left;
}

int64_t ExecutionRunner::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& [id, run] : runs_) n += run->done ? 0 : 1;
  return n;
}

void ExecutionRunner::ReapLocked() {
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (it->second->background && it->second->done) {
      // The thread has recorded the end and returns without taking the lock again.
      if (it->second->thread.joinable()) it->second->thread.join();
      it = runs_.erase(it);
    } else {
      ++it;
    }
  }
}

void ExecutionRunner::Watch() {
  std::unique_ptr<flow::ExecutionStore> store;  // opened on first need, used by this thread only
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    changed_.wait_for(lock, kWatchInterval);
    ReapLocked();
    if (runs_.empty()) {
      if (shutting_down_) return;
      continue;
    }
    std::set<std::string> running;
    for (const auto& [id, run] : runs_) {
      if (!run->done && !run->stop.load()) running.insert(id);
    }
    if (running.empty()) continue;
    lock.unlock();
    std::vector<std::string> requested;
    if (store == nullptr) {
      auto opened = OpenStore();
      if (opened.ok()) store = std::move(*opened);
    }
    if (store != nullptr) {
      auto st = store->db().Prepare("SELECT execution_id FROM flow_stop_requests");
      while (st.ok()) {
        auto row = st->Step();
        if (!row.ok() || !*row) break;
        std::string id = st->Text(0);
        if (running.count(id) > 0) requested.push_back(std::move(id));
      }
      for (const std::string& id : requested) {
        auto del = store->db().Prepare("DELETE FROM flow_stop_requests WHERE execution_id = ?");
        if (del.ok()) (void)del->Bind(1, id).Run();
      }
    }
    lock.lock();
    for (const std::string& id : requested) {
      auto it = runs_.find(id);
      if (it != runs_.end()) it->second->stop.store(true);
    }
  }
}

Json ExecutionOutcome::ToJson() const {
  Json j = result.ToJson();
  j["executionId"] = record.id;
  j["name"] = record.name;
  return j;
}

std::string ExecutionOutcome::ToText() const {
  std::string out = fmt::format("execution {} ({}): {}\n", record.name, record.id,
                                flow::ExecutionStatusName(result.status));
  if (result.status == flow::ExecutionStatus::kSucceeded)
    return out + DumpJson(result.output, 2) + "\n";
  if (result.error) out += fmt::format("error: {}\n", *result.error);
  if (result.cause) out += fmt::format("cause: {}\n", *result.cause);
  return out + fmt::format("history: engage flow history {}\n", record.id);
}

Status ExecutionOutcome::ToStatus() const {
  if (result.status == flow::ExecutionStatus::kSucceeded) return Status::Ok();
  return Status(StatusCode::kAborted, fmt::format("execution '{}' {}", record.name,
                                                  flow::ExecutionStatusName(result.status)));
}

BlockStopSignals::BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, &previous_);
}

BlockStopSignals::~BlockStopSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

Result<ExecutionOutcome> RunInForeground(
    ExecutionRunner& runner, const std::function<Result<flow::ExecutionRecord>()>& start) {
  // The signals go to a thread that waits for them and stops the run; every other thread, the
  // runner's included (blocked before they start, so they inherit it), blocks them.
  sigset_t signals, previous;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, &previous);
  auto begun = start();
  if (!begun.ok()) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return begun.status();
  }
  const std::string id = begun->id;
  std::atomic<bool> ended{false};
  std::thread stopper([&] {
    timespec tick{0, 100 * 1000 * 1000};
    while (!ended.load()) {
      if (sigtimedwait(&signals, nullptr, &tick) > 0) (void)runner.Stop(id);
    }
  });
  auto outcome = runner.Wait(id);
  ended.store(true);
  stopper.join();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return outcome;
}

}  // namespace engage::app
