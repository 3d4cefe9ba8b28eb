// `engage flow ...`: validate, run, list, describe, history, redrive, graph and the conformance
// runners. Argument parsing and printing only; the engine and store live in engage::flow.
#include <fmt/format.h>
#include <glob.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/flow_s3.h"
#include "cli/pipelines.h"
#include "engage/core/config.h"
#include "engage/core/fs.h"
#include "engage/core/home.h"
#include "engage/core/ids.h"
#include "engage/flow/conformance.h"
#include "engage/flow/definition.h"
#include "engage/flow/engine.h"
#include "engage/flow/graph.h"
#include "engage/flow/registry.h"
#include "engage/flow/store.h"
#include "engage/flow/tasks.h"
#include "engage/jsonata/conformance.h"
#include "engage/lake/ingest.h"
#include "engage/lake/lake.h"
#include "engage/serve/machines.h"
#include "engage/sql/query.h"

namespace engage::cli {
namespace {

namespace fs = std::filesystem;

// Reads a file ("-": stdin); `what` names it in errors ("input file", ...).
Result<std::string> ReadText(const std::string& path, const std::string& what = "file") {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return InvalidArgumentError(fmt::format("{} '{}' is a directory", what, path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return NotFoundError(fmt::format("cannot read {} '{}': {}", what, path, std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parses JSON; a syntax error names the source (`what`, if not empty) and the position. A
// document nested deeper than kMaxJsonDepth is refused before anything is built (copying or
// printing it would overflow the stack).
Result<Json> ParseJsonText(const std::string& text, const std::string& what) {
  if (JsonTextDepth(text) > kMaxJsonDepth) {
    return InvalidArgumentError(fmt::format("{}JSON nested deeper than {} levels",
                                            what.empty() ? "" : what + ": ", kMaxJsonDepth));
  }
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    std::string detail = e.what();
    size_t bracket = detail.find("] ");
    if (detail.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) {
      detail = detail.substr(bracket + 2);
    }
    return InvalidArgumentError(
        fmt::format("{}not valid JSON: {}", what.empty() ? "" : what + ": ", detail));
  }
}

// An invalid definition exits with 1 (as `flow validate` does), not with the usage-error code.
Status InvalidDefinition(std::string message) {
  return Status(StatusCode::kUnknown, std::move(message));
}

// Reads and checks a definition file: every problem (or the JSON syntax error) in `problems`.
// kNotFound when it cannot be read.
struct CheckedDefinition {
  std::string text;
  std::shared_ptr<const flow::StateMachine> machine;  // null when invalid
  std::vector<flow::Diagnostic> problems;
};

Result<CheckedDefinition> CheckDefinition(const std::string& path) {
  CheckedDefinition d;
  ENGAGE_ASSIGN_OR_RETURN(d.text, ReadText(path, "state machine definition"));
  Result<Json> json = ParseJsonText(d.text, "");
  if (!json.ok()) {
    d.problems.push_back(flow::Diagnostic{"", "", json.status().message()});
    return d;
  }
  d.machine = flow::ParseDefinition(*json, &d.problems);
  if (d.machine != nullptr) {
    // A literal Timestamp past AWS's maximum wait cannot be reached: the execution times out.
    std::vector<flow::Diagnostic> far =
        flow::FarTimestamps(*d.machine, SystemClock::Default().NowMicros());
    if (!far.empty()) {
      d.problems.insert(d.problems.end(), far.begin(), far.end());
      d.machine = nullptr;
    }
  }
  if (d.machine == nullptr && d.problems.empty()) {
    d.problems.push_back(flow::Diagnostic{"", "", "not a valid state machine"});
  }
  return d;
}

std::string ProblemSummary(const std::string& path, const std::vector<flow::Diagnostic>& problems) {
  return fmt::format("'{}' is not a valid state machine ({} problem{})", path, problems.size(),
                     problems.size() == 1 ? "" : "s");
}

// A valid definition, or an error listing every problem (exit 1).
Result<CheckedDefinition> LoadMachine(const std::string& path) {
  ENGAGE_ASSIGN_OR_RETURN(CheckedDefinition d, CheckDefinition(path));
  if (d.machine == nullptr) {
    std::string msg = ProblemSummary(path, d.problems) + ":";
    for (const flow::Diagnostic& p : d.problems) msg += "\n  " + p.ToString();
    msg += fmt::format("\n(see `engage flow validate {}`)", path);
    return InvalidDefinition(std::move(msg));
  }
  return d;
}

// "pipelines/daily.asl.json" -> "daily".
std::string MachineName(const std::string& path) {
  std::string stem = fs::path(path).filename().string();
  for (const char* ext : {".json", ".asl"}) {
    std::string e(ext);
    if (stem.size() > e.size() && stem.compare(stem.size() - e.size(), e.size(), e) == 0) {
      stem.resize(stem.size() - e.size());
    }
  }
  return stem.empty() ? "StateMachine" : stem;
}

// Opens the execution store of the home and fails executions whose process died.
Result<std::unique_ptr<flow::ExecutionStore>> OpenStore(const GlobalOptions& g) {
  HomePaths home = ResolveHome(g.home);
  std::error_code ec;
  if (!fs::exists(home.config(), ec)) {
    return FailedPreconditionError(fmt::format(
        "no Engage home at '{}' (executions are kept in its meta.db): run `engage init` first "
        "or pass --home",
        home.root));
  }
  ENGAGE_ASSIGN_OR_RETURN(auto store,
                          flow::ExecutionStore::Open(home.meta_db(), SystemClock::Default()));
  ENGAGE_ASSIGN_OR_RETURN(int64_t recovered, store->RecoverInterrupted());
  if (recovered > 0) {
    std::fprintf(stderr,
                 "engage: %lld interrupted execution(s) marked FAILED; see `engage flow list "
                 "--status FAILED`\n",
                 static_cast<long long>(recovered));
  }
  return store;
}

// How far an execution's steps may reach beyond its role. The local CLI user is trusted: runs
// started from the CLI read any input file. Executions started over HTTP are confined: an
// engage:ingest input must resolve inside [flow] input_dirs.
struct StepConfinement {
  bool confine_inputs = false;
  std::vector<std::string> input_dirs;  // resolved (realpath); directories that exist only
};

// [flow] input_dirs resolved: relative ones against the home, symlinks followed.
std::vector<std::string> ResolveInputDirs(const FlowConfig& flow, const HomePaths& home) {
  std::vector<std::string> out;
  for (const std::string& d : flow.input_dirs) {
    fs::path p(d);
    if (!p.is_absolute()) p = fs::path(home.root) / p;
    std::error_code ec;
    fs::path real = fs::canonical(p, ec);
    if (!ec && fs::is_directory(real, ec)) out.push_back(real.string());
  }
  return out;
}

bool HasGlob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// The files an engage:ingest input names, each resolved (symlinks and `..` followed) and inside
// one of `c.input_dirs`; a glob is expanded here, so the lake reads exactly what was checked.
// Relative inputs resolve against the home. The refusal names the input as given and the config
// key, is the same whether or not the file exists, and reads nothing.
Result<std::vector<std::string>> ConfinedInputs(const std::string& input, const StepConfinement& c,
                                                const HomePaths& home) {
  auto refused = [&input] {
    return PermissionDeniedError(fmt::format(
        "{}engage:ingest input '{}' is not a file inside [flow] input_dirs of engage.toml "
        "(executions started over HTTP read only those directories)",
        flow::kAccessDeniedPrefix, input));
  };
  if (input.empty() || c.input_dirs.empty()) return refused();
  fs::path p(input);
  if (!p.is_absolute()) p = fs::path(home.root) / p;
  std::vector<std::string> candidates;
  if (HasGlob(input)) {
    glob_t g{};
    int rc = ::glob(p.string().c_str(), GLOB_NOSORT, nullptr, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) candidates.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
    if (candidates.empty()) return refused();
  } else {
    candidates.push_back(p.string());
  }
  std::vector<std::string> out;
  for (const std::string& cand : candidates) {
    std::error_code ec;
    fs::path real = fs::canonical(cand, ec);
    if (ec || !fs::is_regular_file(real, ec)) return refused();
    std::string r = real.string();
    bool inside = std::any_of(c.input_dirs.begin(), c.input_dirs.end(), [&r](const std::string& d) {
      return r.size() > d.size() && r.compare(0, d.size(), d) == 0 && r[d.size()] == '/';
    });
    if (!inside) return refused();
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Replaces every occurrence of `from` in `s` by `to`.
void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// Engage's own steps, callable as "engage:<name>" Task resources. The lake is opened lazily so
// definitions that do not use it run without one. With an authorizer on `tasks` (a role),
// engage:query checks each table the query reads and engage:ingest its target table.
void RegisterEngageSteps(flow::TaskRegistry& tasks, const GlobalOptions& g,
                         const StepConfinement& confinement) {
  HomePaths home = ResolveHome(g.home);
  flow::TaskRegistry* registry = &tasks;
  tasks.RegisterStep(
      "query",
      [home, registry](const Json& p) -> Result<Json> {
        if (!p.is_object() || !p.contains("sql") || !p["sql"].is_string()) {
          return InvalidArgumentError("engage:query needs Parameters {\"sql\": \"SELECT ...\"}");
        }
        lake::LakeOptions opts;
        opts.writer = false;
        ENGAGE_ASSIGN_OR_RETURN(auto l, lake::Lake::Open(home, opts));
        ENGAGE_ASSIGN_OR_RETURN(auto qe, sql::QueryEngine::Open(*l));
        sql::QueryRequest req;
        req.sql = p["sql"].get<std::string>();
        req.source = "flow";
        // A step's query is bounded like the CLI's (the Task's TimeoutSeconds bounds the step).
        req.timeout_ms =
            l->config().query.timeout_seconds.value_or(sql::kDefaultCliQueryTimeoutSeconds) * 1000;
        if (p.contains("max_scan_bytes") && p["max_scan_bytes"].is_number_integer()) {
          req.max_scan_bytes = p["max_scan_bytes"].get<int64_t>();
        }
        if (registry->has_authorizer()) {
          // The tables are those the query engine resolves, whatever the spelling.
          req.authorize = [registry](const std::set<std::string>& tables) -> Status {
            for (const auto& t : tables) {
              ENGAGE_RETURN_IF_ERROR(
                  registry->Authorize("engage:query", t == "*" ? "table/*" : "table/" + t));
            }
            return Status::Ok();
          };
        }
        ENGAGE_ASSIGN_OR_RETURN(auto r, qe->Run(req));
        return r.ToJson();
      },
      "Runs read-only SQL over the lake: {\"sql\": \"SELECT ...\", \"max_scan_bytes\": n}",
      // Checked per table by the query engine (above).
      [](const Json&) -> Result<std::vector<std::string>> { return std::vector<std::string>{}; });
  tasks.RegisterStep(
      "ingest",
      [home, confinement](const Json& p) -> Result<Json> {
        if (!p.is_object() || !p.contains("table") || !p["table"].is_string() ||
            !p.contains("inputs") || !p["inputs"].is_array()) {
          return InvalidArgumentError(
              "engage:ingest needs Parameters {\"table\": \"events\", \"inputs\": [\"f.csv\"]}");
        }
        lake::IngestRequest req;
        req.table = p["table"].get<std::string>();
        // Resolved path -> the input as given, to put back into error messages.
        std::vector<std::pair<std::string, std::string>> given;
        for (const Json& in : p["inputs"]) {
          if (!in.is_string()) return InvalidArgumentError("engage:ingest inputs must be strings");
          std::string input = in.get<std::string>();
          if (!confinement.confine_inputs) {
            req.inputs.push_back(input);
            continue;
          }
          ENGAGE_ASSIGN_OR_RETURN(auto files, ConfinedInputs(input, confinement, home));
          for (auto& f : files) {
            given.emplace_back(f, input);
            req.inputs.push_back(std::move(f));
          }
        }
        if (p.contains("ingest_id") && p["ingest_id"].is_string()) {
          req.ingest_id = p["ingest_id"].get<std::string>();
        }
        lake::LakeOptions opts;
        opts.writer = true;
        ENGAGE_ASSIGN_OR_RETURN(auto l, lake::Lake::Open(home, opts));
        auto r = lake::Ingest(*l, req);
        if (!r.ok() && !given.empty()) {
          std::string msg = r.status().message();
          for (const auto& [resolved, as_given] : given) ReplaceAll(msg, resolved, as_given);
          return Status(r.status().code(), std::move(msg));
        }
        ENGAGE_RETURN_IF_ERROR(r.status());
        return r->ToJson();
      },
      "Ingests files into a lake table: {\"table\": \"events\", \"inputs\": [\"a.csv\"]}",
      [](const Json& p) -> Result<std::vector<std::string>> {
        if (!p.is_object() || !p.contains("table") || !p["table"].is_string()) {
          return InvalidArgumentError(
              "engage:ingest needs Parameters {\"table\": \"events\", \"inputs\": [\"f.csv\"]}");
        }
        return std::vector<std::string>{"table/" + p["table"].get<std::string>()};
      });
  RegisterMlSteps(tasks, home);
}

struct RunOptions {
  std::string definition;
  std::string input = "";
  std::string name;
  bool json = false;
  std::string mock;
  std::string mock_case;
  std::string type = "STANDARD";
};

void PrintResult(const flow::ExecutionResult& r, const flow::ExecutionRecord& rec, bool json) {
  if (json) {
    Json j = r.ToJson();
    j["executionId"] = rec.id;
    j["name"] = rec.name;
    PrintJson(j);
    return;
  }
  std::printf("execution %s (%s): %s\n", rec.name.c_str(), rec.id.c_str(),
              flow::ExecutionStatusName(r.status));
  if (r.status == flow::ExecutionStatus::kSucceeded) {
    std::printf("%s\n", DumpJson(r.output, 2).c_str());
  } else {
    if (r.error) std::printf("error: %s\n", r.error->c_str());
    if (r.cause) std::printf("cause: %s\n", r.cause->c_str());
    std::printf("history: engage flow history %s\n", rec.id.c_str());
  }
}

// A Ctrl-C stops the execution cleanly (ABORTED) instead of killing the process mid-state.
std::atomic<bool> g_cancel{false};
void OnSignal(int) { g_cancel.store(true); }

// Waits (Wait states, retry intervals) that end early when the execution is stopped.
void CancellableSleep(int64_t micros) {
  auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  while (!g_cancel.load()) {
    auto left = end - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
  }
}

// What an execution runs with: the home's [flow] config and the task registry (Engage steps,
// mapped commands and mocks). Built before the execution is recorded, so a bad config or mock
// file leaves no execution behind.
struct Runtime {
  HomePaths home;
  Config config;
  std::unique_ptr<flow::TaskRegistry> tasks;
};

// `role`: every Task is checked against it and engage:ingest reads only [flow] input_dirs (an
// execution started over HTTP); null: the local CLI user, trusted.
Result<Runtime> MakeRuntime(const GlobalOptions& g, const std::string& machine,
                            const std::string& mock, const std::string& mock_case,
                            std::shared_ptr<const serve::Policy> role = nullptr) {
  Runtime rt;
  rt.home = ResolveHome(g.home);
  ENGAGE_ASSIGN_OR_RETURN(rt.config, Config::Load(rt.home.config()));
  rt.tasks = std::make_unique<flow::TaskRegistry>(rt.config.flow);
  StepConfinement confinement;
  if (role != nullptr) {
    rt.tasks->SetAuthorizer(serve::RoleAuthorizer(role, machine));
    confinement.confine_inputs = true;
    confinement.input_dirs = ResolveInputDirs(rt.config.flow, rt.home);
  }
  RegisterEngageSteps(*rt.tasks, g, confinement);
  if (!mock.empty()) ENGAGE_RETURN_IF_ERROR(rt.tasks->LoadMocks(mock, machine, mock_case));
  return rt;
}

// The engine's options for running `rec` with the runtime's steps, history into `sink`.
flow::EngineOptions ExecutionOptions(Runtime& rt, const flow::ExecutionRecord& rec,
                                     flow::EventSink* sink) {
  const Config& cfg = rt.config;
  flow::EngineOptions options;
  options.tasks = rt.tasks.get();
  options.events = sink;
  options.cancel = &g_cancel;
  options.sleep = CancellableSleep;
  options.region = cfg.flow.region;
  options.account = cfg.flow.account;
  options.state_machine_name = rec.state_machine;
  options.role_arn = fmt::format("arn:aws:iam::{}:role/engage-local", cfg.flow.account);
  options.express = rec.express;
  options.execution_id = rec.id;
  ConfigureObjectStore(options, cfg, rt.home);
  if (rt.tasks->has_authorizer()) {
    // The local S3 stand-in (distributed Map ItemReader / ResultWriter) is bounded by the role.
    flow::TaskRegistry* tasks = rt.tasks.get();
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
  options.map_threads = rt.tasks->has_mocks() ? 1 : 40;
  options.max_history_events = cfg.flow.max_history_events;
  options.max_execution_seconds = cfg.flow.max_execution_seconds;
  options.max_payload_bytes = cfg.flow.max_payload_bytes;
  return options;
}

Status RunExecution(flow::ExecutionStore& store, const flow::StateMachine& sm,
                    const flow::ExecutionRecord& rec, const flow::RedrivePoint* redrive,
                    Runtime& rt, bool json) {
  auto sink = store.Sink(rec.id);
  flow::EngineOptions options = ExecutionOptions(rt, rec, sink.get());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  flow::Engine engine(options);
  flow::ExecutionResult r = redrive == nullptr ? engine.Run(sm, rec.input, rec.name)
                                               : engine.Redrive(sm, rec.input, rec.name, *redrive);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  ENGAGE_RETURN_IF_ERROR(store.Finish(rec.id, r));
  PrintResult(r, rec, json);
  if (r.status != flow::ExecutionStatus::kSucceeded) {
    return Status(StatusCode::kAborted,
                  fmt::format("execution '{}' {}", rec.name, flow::ExecutionStatusName(r.status)));
  }
  return Status::Ok();
}

}  // namespace

std::shared_ptr<std::atomic<bool>> BackgroundExecutions::Add(const std::string& id) {
  auto flag = std::make_shared<std::atomic<bool>>(false);
  std::lock_guard<std::mutex> lock(mu_);
  running_[id] = flag;
  return flag;
}

void BackgroundExecutions::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(id);
  ended_.notify_all();
}

Status BackgroundExecutions::Stop(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(id);
  if (it == running_.end()) {
    return FailedPreconditionError(fmt::format("execution {} is not running", id));
  }
  it->second->store(true);
  return Status::Ok();
}

int64_t BackgroundExecutions::StopAll(int64_t wait_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  for (auto& [id, flag] : running_) flag->store(true);
  ended_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return running_.empty(); });
  return static_cast<int64_t>(running_.size());
}

Result<Json> StartExecutionInBackground(const GlobalOptions& g, const Json& request,
                                        BackgroundExecutions& runs) {
  HomePaths home = ResolveHome(g.home);
  if (!request.is_object()) return InvalidArgumentError("the request must be a JSON object");
  if (request.contains("definition")) {
    return InvalidArgumentError(
        "inline definitions are not run: register the state machine first (PUT "
        "/v1/state-machines/{name} or `engage flow register`), then send {\"state_machine\": "
        "NAME, \"input\": {...}}");
  }
  std::string machine_name;
  bool shipped = false;
  if (request.contains("pipeline")) {
    if (!request["pipeline"].is_string() ||
        request["pipeline"].get<std::string>() != serve::kEngagementMachine) {
      return NotFoundError(
          "no shipped pipeline of that name (the shipped one is 'engagement'; register others "
          "and start them with {\"state_machine\": NAME})");
    }
    machine_name = std::string(serve::kEngagementMachine);
    shipped = true;
  } else if (request.contains("state_machine") && request["state_machine"].is_string()) {
    machine_name = request["state_machine"].get<std::string>();
  } else {
    return InvalidArgumentError(
        "send {\"state_machine\": NAME, \"input\": {...}} (a registered state machine) or "
        "{\"pipeline\": \"engagement\"}");
  }
  ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(machine_name));
  std::string execution_name;
  if (request.contains("name")) {
    if (!request["name"].is_string()) return InvalidArgumentError("name must be a string");
    execution_name = request["name"].get<std::string>();
    ENGAGE_RETURN_IF_ERROR(flow::ValidateStateMachineName(execution_name, "execution name"));
  }
  Json input = request.value("input", Json::object());
  if (!input.is_object()) return InvalidArgumentError("input must be a JSON object");
  ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
  ENGAGE_ASSIGN_OR_RETURN(auto machines,
                          flow::StateMachineRegistry::Open(home.meta_db(), SystemClock::Default()));
  ENGAGE_ASSIGN_OR_RETURN(serve::RunnableMachine m,
                          serve::LoadRunnableMachine(*machines, machine_name, kEngagementPipeline));
  if (shipped || machine_name == serve::kEngagementMachine) {
    if (!input.contains("model")) input["model"] = "engagement";
    if (!input.contains("ingest")) input["ingest"] = Json::array();
  }
  // The definition runs parsed, from meta.db: no file is written for it.
  ENGAGE_ASSIGN_OR_RETURN(Runtime rt, MakeRuntime(g, m.name, "", "", m.role));
  flow::CreateExecutionRequest req;
  req.name = execution_name;
  req.state_machine = m.name;
  req.definition = m.definition;
  req.input = input;
  ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, store->Create(req));
  Json started = rec.ToJson();
  // The run owns the store, the runtime and the definition; a process that dies mid-run leaves
  // the execution RUNNING, and the next open of the store marks it FAILED.
  auto shared_store = std::shared_ptr<flow::ExecutionStore>(std::move(store));
  auto shared_rt = std::make_shared<Runtime>(std::move(rt));
  std::shared_ptr<const flow::StateMachine> machine_ptr = m.machine;
  std::shared_ptr<std::atomic<bool>> stop = runs.Add(rec.id);
  std::thread([shared_store, shared_rt, machine_ptr, rec, stop, &runs] {
    auto sink = shared_store->Sink(rec.id);
    flow::EngineOptions options = ExecutionOptions(*shared_rt, rec, sink.get());
    // This run's own stop flag (StopExecution, server shutdown), for the run and its waits.
    options.cancel = stop.get();
    options.sleep = [stop](int64_t micros) {
      auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
      while (!stop->load() && std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            end - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
      }
    };
    flow::Engine engine(options);
    flow::ExecutionResult r = engine.Run(*machine_ptr, rec.input, rec.name);
    Status s = shared_store->Finish(rec.id, r);
    if (!s.ok()) spdlog::error("execution {}: {}", rec.name, s.ToString());
    runs.Remove(rec.id);
  }).detach();
  return started;
}

namespace {

void AddValidate(CLI::App& flow, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "validate",
      "Check an ASL definition; every problem with its state and field; exit 1 if invalid");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("definition", *path, "State machine definition (JSON)")->required();
  cmd->add_flag("--json", *json, "Print {\"valid\": bool, \"problems\": [...]}");
  cmd->callback([action, path, json] {
    *action = [path, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(CheckedDefinition d, CheckDefinition(*path));
      const std::vector<flow::Diagnostic>& problems = d.problems;
      const auto& sm = d.machine;
      if (*json) {
        Json arr = Json::array();
        for (const auto& p : problems) {
          arr.push_back(Json{{"state", p.state}, {"path", p.pointer}, {"message", p.message}});
        }
        PrintJson(Json{{"valid", sm != nullptr}, {"problems", arr}});
      } else if (sm != nullptr) {
        std::printf("%s: valid (%zu states)\n", path->c_str(), sm->states.size());
      } else {
        for (const auto& p : problems) std::printf("%s: %s\n", path->c_str(), p.ToString().c_str());
      }
      if (sm == nullptr) return InvalidDefinition(ProblemSummary(*path, problems));
      return Status::Ok();
    };
  });
}

void AddRun(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "run", "Run a definition to a terminal state; the execution and its history go to meta.db");
  auto o = std::make_shared<RunOptions>();
  cmd->add_option("definition", o->definition, "State machine definition (JSON)")->required();
  cmd->add_option("--input", o->input, "Execution input: a JSON file, or - for stdin (default {})");
  cmd->add_option("--name", o->name, "Execution name, unique per state machine (default: the id)");
  cmd->add_flag("--json", o->json,
                "Print {\"status\", \"output\"} or {\"status\", \"error\", \"cause\"}");
  auto* mock = cmd->add_option("--mock", o->mock,
                               "Mock Task results per state (Step Functions Local mock config, or "
                               "{\"States\": {...}}) for deterministic tests");
  cmd->add_option("--mock-case", o->mock_case, "Test case in a Step Functions Local mock config")
      ->needs(mock);
  cmd->add_option("--type", o->type,
                  "STANDARD or EXPRESS: an Express workflow execution (5-minute limit, no "
                  "redrive, no .sync/.waitForTaskToken)")
      ->check(CLI::IsMember({"STANDARD", "EXPRESS"}))
      ->default_str("STANDARD");
  cmd->footer(
      "Exit status: 0 when the execution SUCCEEDED, 1 when it FAILED, TIMED_OUT or was ABORTED "
      "(or the definition is invalid), 2 when an EXPRESS run's definition uses what Express "
      "workflows do not support, 4 when --name is taken.");
  cmd->callback([&g, action, o] {
    *action = [&g, o]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(CheckedDefinition def, LoadMachine(o->definition));
      if (o->type == "EXPRESS") ENGAGE_RETURN_IF_ERROR(flow::CheckExpressDefinition(*def.machine));
      Json input = Json::object();
      if (!o->input.empty()) {
        ENGAGE_ASSIGN_OR_RETURN(std::string text, ReadText(o->input, "input file"));
        ENGAGE_ASSIGN_OR_RETURN(
            input, ParseJsonText(text, o->input == "-" ? "stdin (--input -)" : o->input));
      }
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
      std::string machine = MachineName(o->definition);
      ENGAGE_ASSIGN_OR_RETURN(Runtime rt, MakeRuntime(g, machine, o->mock, o->mock_case));
      flow::CreateExecutionRequest req;
      req.name = o->name;
      req.state_machine = machine;
      req.definition = def.text;
      std::error_code ec;
      req.definition_path = fs::absolute(o->definition, ec).string();
      req.input = input;
      req.mock_case = o->mock_case;
      if (!o->mock.empty()) req.mock_path = fs::absolute(o->mock, ec).string();
      req.express = o->type == "EXPRESS";
      ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, store->Create(req));
      return RunExecution(*store, *def.machine, rec, nullptr, rt, o->json);
    };
  });
}

void AddRedrive(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "redrive", "Resume a FAILED/TIMED_OUT/ABORTED execution from the state that failed");
  auto id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto mock = std::make_shared<std::string>();
  auto mock_case = std::make_shared<std::string>();
  cmd->add_option("execution", *id, "Execution id or name")->required();
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->add_option("--mock", *mock,
                  "Mock Task results (as for flow run); default: the mocks the execution ran "
                  "with, continuing their invocation numbering");
  cmd->add_option("--mock-case", *mock_case, "Test case in a Step Functions Local mock config");
  cmd->footer(
      "The execution resumes at the top-level state that failed (or was running when the "
      "process died), with the input and variables it had then; earlier states do not run "
      "again. Exit status as for flow run; 7 when the execution cannot be redriven.");
  cmd->callback([&g, action, id, json, mock, mock_case] {
    *action = [&g, id, json, mock, mock_case]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
      ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, store->Get(*id));
      ENGAGE_ASSIGN_OR_RETURN(Json def, ParseJsonText(rec.definition, "stored definition"));
      std::vector<flow::Diagnostic> problems;
      auto sm = flow::ParseDefinition(def, &problems);
      if (sm == nullptr) {
        return FailedPreconditionError(
            fmt::format("the stored definition of '{}' no longer parses: {}", rec.name,
                        problems.empty() ? "" : problems.front().ToString()));
      }
      // The execution's own mocks unless others are given; reused mocks continue numbering
      // invocations where the execution left off (a Throw on invocation 0 is not repeated).
      bool reuse = mock->empty() && !rec.mock_path.empty();
      if (mock->empty() && !reuse && !mock_case->empty()) {
        return InvalidArgumentError(
            fmt::format("--mock-case needs --mock: execution '{}' ran without mocks", rec.name));
      }
      std::string mock_file = reuse ? rec.mock_path : *mock;
      std::string test_case = !mock_case->empty() ? *mock_case : (reuse ? rec.mock_case : "");
      ENGAGE_RETURN_IF_ERROR(flow::ExecutionStore::CheckRedrivable(rec));
      ENGAGE_ASSIGN_OR_RETURN(Runtime rt, MakeRuntime(g, rec.state_machine, mock_file, test_case));
      if (reuse) {
        ENGAGE_ASSIGN_OR_RETURN(auto counts, store->TaskInvocations(rec.id));
        rt.tasks->SetInvocationCounts(std::move(counts));
      }
      ENGAGE_ASSIGN_OR_RETURN(flow::RedrivePoint point, store->BeginRedrive(rec.id));
      if (!*json) {
        std::printf("redriving %s from state '%s' (redrive #%lld)\n", rec.name.c_str(),
                    point.state.c_str(), static_cast<long long>(point.redrive_count));
      }
      return RunExecution(*store, *sm, rec, &point, rt, *json);
    };
  });
}

std::string Micros(int64_t us) { return FormatIsoUtc(us); }

void AddList(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand("list", "List executions, newest first");
  auto status = std::make_shared<std::string>();
  auto limit = std::make_shared<int64_t>(50);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--status", *status, "Only RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED")
      ->check(CLI::IsMember({"RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}));
  cmd->add_option("--limit", *limit, "At most this many (default 50)")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", *json, "Print a JSON array");
  cmd->callback([&g, action, status, limit, json] {
    *action = [&g, status, limit, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
      ENGAGE_ASSIGN_OR_RETURN(auto list, store->List(*limit, *status));
      if (*json) {
        Json arr = Json::array();
        for (const auto& r : list) {
          Json j = r.ToJson();
          j.erase("input");
          j.erase("output");
          arr.push_back(std::move(j));
        }
        PrintJson(arr);
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& r : list) {
        std::string dur =
            r.stop_micros ? fmt::format("{:.3f}s", (*r.stop_micros - r.start_micros) / 1e6) : "";
        rows.push_back({r.id, r.name, r.state_machine, r.status, Micros(r.start_micros), dur,
                        r.error.value_or("")});
      }
      PrintTable({"id", "name", "state machine", "status", "started", "duration", "error"}, rows);
      return Status::Ok();
    };
  });
}

void AddDescribe(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand("describe", "Show one execution: status, input, output, error");
  auto id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("execution", *id, "Execution id or name")->required();
  cmd->add_flag("--json", *json, "Print as JSON (like DescribeExecution)");
  cmd->callback([&g, action, id, json] {
    *action = [&g, id, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
      ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord r, store->Get(*id));
      if (*json) {
        PrintJson(r.ToJson());
        return Status::Ok();
      }
      std::printf("execution:     %s\nname:          %s\nstate machine: %s\nstatus:        %s\n",
                  r.id.c_str(), r.name.c_str(), r.state_machine.c_str(), r.status.c_str());
      std::printf("started:       %s\n", Micros(r.start_micros).c_str());
      if (r.stop_micros) std::printf("stopped:       %s\n", Micros(*r.stop_micros).c_str());
      if (r.redrive_count > 0) {
        std::printf("redrives:      %lld\n", static_cast<long long>(r.redrive_count));
      }
      if (!r.definition_path.empty()) {
        std::printf("definition:    %s\n", r.definition_path.c_str());
      }
      std::printf("input:         %s\n", DumpJson(r.input).c_str());
      if (r.output) std::printf("output:        %s\n", DumpJson(*r.output).c_str());
      if (r.error) std::printf("error:         %s\n", r.error->c_str());
      if (r.cause) std::printf("cause:         %s\n", r.cause->c_str());
      return Status::Ok();
    };
  });
}

void AddHistory(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand("history", "Show an execution's events (AWS event types)");
  auto id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("execution", *id, "Execution id or name")->required();
  cmd->add_flag("--json", *json, "Print {\"events\": [...]} like GetExecutionHistory");
  cmd->callback([&g, action, id, json] {
    *action = [&g, id, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
      ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord r, store->Get(*id));
      ENGAGE_ASSIGN_OR_RETURN(auto events, store->History(r.id));
      if (*json) {
        Json arr = Json::array();
        for (const auto& e : events) arr.push_back(e.ToJson());
        PrintJson(Json{{"events", arr}});
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& e : events) {
        std::string detail;
        if (e.details.is_object()) {
          if (e.details.contains("name")) detail = e.details["name"].get<std::string>();
          if (e.details.contains("error")) {
            detail += (detail.empty() ? "" : " ") + e.details["error"].get<std::string>();
          }
          if (e.details.contains("index")) {
            detail += fmt::format(" #{}", e.details["index"].dump());
          }
        }
        rows.push_back({std::to_string(e.id), std::to_string(e.previous_event_id),
                        Micros(e.timestamp_micros), e.type, detail});
      }
      PrintTable({"id", "prev", "time", "type", "detail"}, rows);
      return Status::Ok();
    };
  });
}

void AddRegister(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "register",
      "Register a state machine under a name, with the role policy bounding its steps (what "
      "executions started over HTTP may run)");
  auto name = std::make_shared<std::string>();
  auto path = std::make_shared<std::string>();
  auto role = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "State machine name: 1-80 characters of A-Z a-z 0-9 _ -")
      ->required();
  cmd->add_option("definition", *path, "State machine definition (JSON)")->required();
  cmd->add_option("--role", *role,
                  "Role policy (JSON): which engage:<step> actions its Tasks may run on which "
                  "table/, model/, function/, task-definition/ and bucket/ resources")
      ->required();
  cmd->add_flag("--json", *json, "Print the registered machine as JSON");
  cmd->footer(
      "Registering a name again replaces its definition and role (its version goes up). "
      "Executions start with POST /v1/executions {\"state_machine\": NAME}. Exit 2 for a bad "
      "name, 1 for an invalid definition or role.");
  cmd->callback([&g, action, name, path, role, json] {
    *action = [&g, name, path, role, json]() -> Status {
      if (Status s = flow::ValidateStateMachineName(*name); !s.ok()) return s;  // exit 2
      ENGAGE_ASSIGN_OR_RETURN(CheckedDefinition def, LoadMachine(*path));
      ENGAGE_ASSIGN_OR_RETURN(std::string role_text, ReadText(*role, "role policy"));
      auto role_json = ParseJson(role_text, *role);
      if (!role_json.ok()) return InvalidDefinition(role_json.status().message());
      ENGAGE_ASSIGN_OR_RETURN(Json definition, ParseJsonText(def.text, *path));
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
      ENGAGE_ASSIGN_OR_RETURN(
          auto machines,
          flow::StateMachineRegistry::Open(ResolveHome(g.home).meta_db(), SystemClock::Default()));
      auto m = serve::RegisterStateMachine(*machines, *name, definition, *role_json, "cli");
      if (!m.ok()) {
        // A bad definition or role is not a usage error: exit 1, as flow validate.
        if (m.status().code() == StatusCode::kInvalidArgument &&
            flow::ValidateStateMachineName(*name).ok() && *name != serve::kEngagementMachine) {
          return InvalidDefinition(m.status().message());
        }
        return m.status();
      }
      if (*json) {
        PrintJson(m->ToJson(false));
        return Status::Ok();
      }
      std::printf("registered state machine %s (version %lld)\n", m->name.c_str(),
                  static_cast<long long>(m->version));
      return Status::Ok();
    };
  });
}

void AddMachines(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand("machines", "List the registered state machines");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json,
                "Print {\"state_machines\": [...]} with each definition and role, as GET "
                "/v1/state-machines/{name}");
  cmd->callback([&g, action, json] {
    *action = [&g, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
      ENGAGE_ASSIGN_OR_RETURN(
          auto machines,
          flow::StateMachineRegistry::Open(ResolveHome(g.home).meta_db(), SystemClock::Default()));
      ENGAGE_ASSIGN_OR_RETURN(auto list, machines->List());
      if (*json) {
        Json arr = Json::array();
        for (const auto& m : list) arr.push_back(m.ToJson(true));
        PrintJson(Json{{"state_machines", std::move(arr)}});
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& m : list) {
        rows.push_back(
            {m.name, std::to_string(m.version), m.registered_by, FormatIsoUtc(m.updated_micros)});
      }
      PrintTable({"name", "version", "registered by", "updated"}, rows);
      return Status::Ok();
    };
  });
}

void AddGraph(CLI::App& flow, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand("graph", "Draw a definition as a Mermaid or Graphviz DOT graph");
  auto path = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("mermaid");
  cmd->add_option("definition", *path, "State machine definition (JSON)")->required();
  cmd->add_option("--format", *format, "mermaid (default) or dot")
      ->check(CLI::IsMember({"mermaid", "dot"}));
  cmd->callback([action, path, format] {
    *action = [path, format]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(CheckedDefinition d, LoadMachine(*path));
      std::printf("%s",
                  flow::RenderGraph(*d.machine, *format == "dot" ? flow::GraphFormat::kDot
                                                                 : flow::GraphFormat::kMermaid)
                      .c_str());
      return Status::Ok();
    };
  });
}

void AddConformance(CLI::App& flow, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "conformance", "Run the ASL conformance corpus (cases recorded on AWS) and print pass rates");
  auto dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("dir", *dir, "Corpus directory (holding cases/ or case folders)")->required();
  cmd->add_flag("--json", *json, "Print the full report as JSON");
  cmd->callback([action, dir, json] {
    *action = [dir, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto results, flow::RunAslCorpus(*dir));
      Json report = flow::AslReportToJson(results);
      if (*json) {
        PrintJson(report);
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (auto it = report["categories"].begin(); it != report["categories"].end(); ++it) {
        rows.push_back({it.key(), std::to_string((*it)["passed"].get<int64_t>()),
                        std::to_string((*it)["total"].get<int64_t>()),
                        fmt::format("{:.1f}%", 100 * (*it)["rate"].get<double>())});
      }
      const Json& o = report["overall"];
      rows.push_back({"overall", std::to_string(o["passed"].get<int64_t>()),
                      std::to_string(o["total"].get<int64_t>()),
                      fmt::format("{:.1f}%", 100 * o["rate"].get<double>())});
      PrintTable({"category", "passed", "total", "rate"}, rows);
      if (!report["failures"].empty()) std::printf("\nfailures (first difference):\n");
      for (const Json& f : report["failures"]) {
        std::printf("  %s%s\n    %s\n", f["case"].get<std::string>().c_str(),
                    f["cause_only"].get<bool>() ? " [cause text only]" : "",
                    f["detail"].get<std::string>().c_str());
      }
      return Status::Ok();
    };
  });
}

void AddJsonataConformance(CLI::App& flow, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "jsonata-conformance",
      "Run the JSONata reference test cases (cases.jsonl) and print pass rates");
  auto file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("file", *file, "cases.jsonl")->required();
  cmd->add_flag("--json", *json, "Print the full report as JSON");
  cmd->callback([action, file, json] {
    *action = [file, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto results, jsonata::RunJsonataCorpus(*file));
      std::map<std::string, std::pair<int64_t, int64_t>> per;
      int64_t passed = 0;
      Json failures = Json::array();
      for (const auto& r : results) {
        auto& [p, t] = per[r.group];
        ++t;
        if (r.passed) {
          ++p;
          ++passed;
        } else {
          failures.push_back(Json{{"id", r.id}, {"group", r.group}, {"detail", r.detail}});
        }
      }
      double total = static_cast<double>(results.size());
      if (*json) {
        Json groups = Json::object();
        for (const auto& [name, pt] : per) {
          groups[name] = Json{{"passed", pt.first},
                              {"total", pt.second},
                              {"rate", static_cast<double>(pt.first) / pt.second}};
        }
        PrintJson(Json{{"overall", Json{{"passed", passed},
                                        {"total", results.size()},
                                        {"rate", total > 0 ? passed / total : 0.0}}},
                       {"groups", groups},
                       {"failures", failures}});
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& [name, pt] : per) {
        rows.push_back({name, std::to_string(pt.first), std::to_string(pt.second),
                        fmt::format("{:.1f}%", 100.0 * pt.first / pt.second)});
      }
      rows.push_back({"overall", std::to_string(passed), std::to_string(results.size()),
                      fmt::format("{:.1f}%", total > 0 ? 100.0 * passed / total : 0.0)});
      PrintTable({"group", "passed", "total", "rate"}, rows);
      if (!failures.empty()) std::printf("\nfailures (first difference):\n");
      for (const Json& f : failures) {
        std::printf("  %s\n    %s\n", f["id"].get<std::string>().c_str(),
                    f["detail"].get<std::string>().c_str());
      }
      return Status::Ok();
    };
  });
}

}  // namespace

// `engage run pipeline`: the shipped engagement pipeline (pipelines/engagement.asl.json,
// compiled in) or another definition, with its input built from the flags.
void AddRunPipeline(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* run = app.add_subcommand("run", "Run a shipped pipeline");
  run->require_subcommand(1);
  auto* cmd = run->add_subcommand(
      "pipeline",
      "The engagement pipeline: ingest, data quality, features, train, evaluate, promote if "
      "better, score, publish, cost summary");
  auto definition = std::make_shared<std::string>();
  auto ingest = std::make_shared<std::vector<std::string>>();
  auto model = std::make_shared<std::string>("engagement");
  auto name = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto print = std::make_shared<bool>(false);
  cmd->add_option("--ingest", *ingest,
                  "TABLE=FILE_OR_GLOB to ingest first (repeatable), e.g. events='data/events/*'");
  cmd->add_option("--model", *model, "Model name to train and promote")->default_str("engagement");
  cmd->add_option("--definition", *definition,
                  "Run this ASL file instead of the shipped pipelines/engagement.asl.json");
  cmd->add_option("--name", *name, "Execution name (default: the id)");
  cmd->add_flag("--json", *json, "Print {\"status\", \"output\"} as JSON");
  cmd->add_flag("--print-definition", *print, "Print the shipped pipeline definition and stop");
  cmd->footer(
      "The execution is recorded like `engage flow run`: see `engage flow history`, and "
      "`engage flow redrive` resumes a failed run at the failed step.");
  cmd->callback([&g, action, definition, ingest, model, name, json, print] {
    *action = [&g, definition, ingest, model, name, json, print]() -> Status {
      if (*print) {
        std::printf("%s\n", kEngagementPipeline);
        return Status::Ok();
      }
      HomePaths home = ResolveHome(g.home);
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
      std::string path = *definition;
      if (path.empty()) {
        // The compiled-in definition, written where the execution can point to it.
        path = home.tmp() + "/engagement.asl.json";
        PosixFileSystem fs;
        ENGAGE_RETURN_IF_ERROR(fs.CreateDirs(home.tmp()));
        ENGAGE_RETURN_IF_ERROR(fs.WriteFileAtomic(path, kEngagementPipeline));
      }
      ENGAGE_ASSIGN_OR_RETURN(CheckedDefinition def, LoadMachine(path));
      Json input = Json::object();
      input["model"] = *model;
      std::map<std::string, Json> by_table;
      for (const std::string& spec : *ingest) {
        size_t eq = spec.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
          return InvalidArgumentError(
              fmt::format("--ingest '{}': expected TABLE=FILE_OR_GLOB", spec));
        }
        Json& entry = by_table[spec.substr(0, eq)];
        if (entry.is_null()) entry = Json{{"table", spec.substr(0, eq)}, {"inputs", Json::array()}};
        entry["inputs"].push_back(spec.substr(eq + 1));
      }
      input["ingest"] = Json::array();
      // Customers before events, so attributes exist when events arrive; then the rest.
      for (const char* first : {"customers", "events"}) {
        auto it = by_table.find(first);
        if (it != by_table.end()) {
          input["ingest"].push_back(it->second);
          by_table.erase(it);
        }
      }
      for (auto& [t, entry] : by_table) input["ingest"].push_back(entry);
      std::string machine = MachineName(path);
      ENGAGE_ASSIGN_OR_RETURN(Runtime rt, MakeRuntime(g, machine, "", ""));
      flow::CreateExecutionRequest req;
      req.name = *name;
      req.state_machine = machine;
      req.definition = def.text;
      std::error_code ec;
      req.definition_path = fs::absolute(path, ec).string();
      req.input = input;
      ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, store->Create(req));
      return RunExecution(*store, *def.machine, rec, nullptr, rt, *json);
    };
  });
}

void RegisterFlowCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddRunPipeline(app, g, action);
  auto* flow = app.add_subcommand(
      "flow", "Run Amazon States Language state machines locally (Step Functions semantics)");
  flow->require_subcommand(1);
  AddValidate(*flow, action);
  AddRun(*flow, g, action);
  AddList(*flow, g, action);
  AddDescribe(*flow, g, action);
  AddHistory(*flow, g, action);
  AddRedrive(*flow, g, action);
  AddRegister(*flow, g, action);
  AddMachines(*flow, g, action);
  AddGraph(*flow, action);
  AddConformance(*flow, action);
  AddJsonataConformance(*flow, action);
}

}  // namespace engage::cli
