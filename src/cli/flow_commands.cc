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
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "engage/app/definitions.h"
#include "engage/app/executions.h"
#include "engage/app/pipelines.h"
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

// An invalid definition exits with 1 (as `flow validate` does), not with the usage-error code.
Status InvalidDefinition(std::string message) {
  return Status(StatusCode::kUnknown, std::move(message));
}

using CheckedDefinition = app::DefinitionFile;

Result<CheckedDefinition> CheckDefinition(const std::string& path) {
  return app::CheckDefinitionFile(path, SystemClock::Default().NowMicros());
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

// Opens the execution store of the home and fails executions whose process died (saying so).
Result<std::unique_ptr<flow::ExecutionStore>> OpenStore(const GlobalOptions& g) {
  int64_t recovered = 0;
  ENGAGE_ASSIGN_OR_RETURN(auto store,
                          app::ExecutionRunner(ResolveHome(g.home)).OpenStore(&recovered));
  if (recovered > 0) {
    std::fprintf(stderr,
                 "engage: %lld interrupted execution(s) marked FAILED; see `engage flow list "
                 "--status FAILED`\n",
                 static_cast<long long>(recovered));
  }
  return store;
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

// The top-level states of an execution as they run: printed as they start and end when stderr
// is a terminal, and summarized in a table at the end (`engage run pipeline`).
class StateTimeline {
 public:
  StateTimeline(const flow::StateMachine& machine, bool live) : live_(live) {
    for (const auto& [name, state] : machine.states) top_level_.insert(name);
  }

  void OnEvent(const flow::Event& e) {
    std::lock_guard<std::mutex> lock(mu_);
    auto ends_with = [&e](std::string_view suffix) {
      return e.type.size() > suffix.size() &&
             e.type.compare(e.type.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    std::string name = e.details.is_object() ? e.details.value("name", "") : "";
    if (ends_with("StateEntered") && top_level_.count(name) > 0 && current_ < 0) {
      rows_.push_back(Row{name, e.timestamp_micros, 0, "running"});
      current_ = static_cast<int64_t>(rows_.size()) - 1;
      if (live_) std::fprintf(stderr, "  %-24s ...\n", name.c_str());
    } else if (e.type == "TaskSucceeded" && current_ >= 0) {
      rows_[current_].result = Brief(e.details.value("output", ""));
    } else if (ends_with("StateExited") && current_ >= 0 && rows_[current_].state == name) {
      Row& r = rows_[current_];
      r.end = e.timestamp_micros;
      if (r.result == "running") r.result = "ok";
      if (live_) {
        std::fprintf(stderr, "  %-24s %7.1f s  %s\n", name.c_str(), (r.end - r.start) / 1e6,
                     r.result.c_str());
      }
      current_ = -1;
    } else if ((e.type == "ExecutionFailed" || e.type == "ExecutionAborted" ||
                e.type == "ExecutionTimedOut") &&
               current_ >= 0) {
      Row& r = rows_[current_];
      r.end = e.timestamp_micros;
      std::string error = e.details.is_object() ? e.details.value("error", "") : "";
      r.result = (e.type == "ExecutionFailed" ? "FAILED" : e.type.substr(9)) +
                 (error.empty() ? "" : ": " + error);
      if (live_) {
        std::fprintf(stderr, "  %-24s %7.1f s  %s\n", r.state.c_str(), (r.end - r.start) / 1e6,
                     r.result.c_str());
      }
      current_ = -1;
    }
  }

  void PrintSummary() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::vector<std::string>> rows;
    for (const Row& r : rows_) {
      rows.push_back(
          {r.state, r.end > 0 ? fmt::format("{:.1f}", (r.end - r.start) / 1e6) : "", r.result});
    }
    PrintTable({"state", "seconds", "result"}, rows);
  }

 private:
  struct Row {
    std::string state;
    int64_t start = 0, end = 0;
    std::string result;
  };
  // A task's result in a line: its scalar fields as key=value, cut to 60 characters.
  static std::string Brief(const std::string& output_json) {
    Json j = Json::parse(output_json, nullptr, false);
    std::string s;
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it->is_structured() || it->is_null()) continue;
        std::string v = it->is_number_float()
                            ? fmt::format("{:.4g}", it->get<double>())
                            : (it->is_string() ? it->get<std::string>() : it->dump());
        s += (s.empty() ? "" : " ") + it.key() + "=" + v;
      }
    }
    if (s.empty()) s = "ok";
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
  }
  mutable std::mutex mu_;
  bool live_;
  std::set<std::string> top_level_;
  std::vector<Row> rows_;
  int64_t current_ = -1;
};

// Runs an execution started on `runner` to its end in the foreground: a Ctrl-C or SIGTERM stops
// it cleanly (ABORTED) instead of killing the process mid-state. Prints the result.
// With a `timeline`, prints its summary table instead of the full output (unless `json`).
Status RunInForeground(app::ExecutionRunner& runner,
                       const std::function<Result<flow::ExecutionRecord>()>& start, bool json,
                       const StateTimeline* timeline = nullptr) {
  // Signals go to a thread that waits for them and stops the run; every other thread, the
  // runner's included (so blocked before it starts them), blocks them.
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
  const flow::ExecutionRecord& started = *begun;
  std::atomic<bool> ended{false};
  std::thread stopper([&] {
    timespec tick{0, 100 * 1000 * 1000};
    while (!ended.load()) {
      if (sigtimedwait(&signals, nullptr, &tick) > 0) (void)runner.Stop(started.id);
    }
  });
  auto outcome = runner.Wait(started.id);
  ended.store(true);
  stopper.join();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  ENGAGE_RETURN_IF_ERROR(outcome.status());
  if (timeline != nullptr && !json) {
    const flow::ExecutionRecord& rec = outcome->record;
    std::printf("execution %s (%s): %s\n", rec.name.c_str(), rec.id.c_str(),
                flow::ExecutionStatusName(outcome->result.status));
    timeline->PrintSummary();
    if (outcome->result.error) std::printf("error: %s\n", outcome->result.error->c_str());
    if (outcome->result.cause) std::printf("cause: %s\n", outcome->result.cause->c_str());
    std::printf("full output: engage flow describe %s   history: engage flow history %s\n",
                rec.id.c_str(), rec.id.c_str());
  } else {
    PrintResult(outcome->result, outcome->record, json);
  }
  if (outcome->result.status != flow::ExecutionStatus::kSucceeded) {
    return Status(StatusCode::kAborted,
                  fmt::format("execution '{}' {}", started.name,
                              flow::ExecutionStatusName(outcome->result.status)));
  }
  return Status::Ok();
}

}  // namespace

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
        ENGAGE_ASSIGN_OR_RETURN(std::string text, ReadTextArgument(o->input, "input file"));
        ENGAGE_ASSIGN_OR_RETURN(input,
                                ParseJson(text, o->input == "-" ? "stdin (--input -)" : o->input));
      }
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
      app::ExecutionRunner runner(ResolveHome(g.home));
      app::ExecutionRequest req;
      req.state_machine = app::MachineNameFromPath(o->definition);
      req.machine = def.machine;
      req.definition = def.text;
      std::error_code ec;
      req.definition_path = fs::absolute(o->definition, ec).string();
      req.name = o->name;
      req.input = input;
      req.mock_case = o->mock_case;
      if (!o->mock.empty()) req.mock_path = fs::absolute(o->mock, ec).string();
      req.express = o->type == "EXPRESS";
      return RunInForeground(
          runner, [&] { return runner.Start(std::move(req)); }, o->json);
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
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
      app::ExecutionRunner runner(ResolveHome(g.home));
      app::RedriveRequest req;
      req.execution = *id;
      req.mock_path = *mock;
      req.mock_case = *mock_case;
      auto start = [&]() -> Result<flow::ExecutionRecord> {
        flow::RedrivePoint point;
        ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, runner.StartRedrive(req, &point));
        if (!*json) {
          std::printf("redriving %s from state '%s' (redrive #%lld)\n", rec.name.c_str(),
                      point.state.c_str(), static_cast<long long>(point.redrive_count));
          std::fflush(stdout);
        }
        return rec;
      };
      return RunInForeground(runner, start, *json);
    };
  });
}

void AddStop(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "stop", "Stop a running execution (as StopExecution): it ends ABORTED, wherever it runs");
  auto id = std::make_shared<std::string>();
  auto wait = std::make_shared<double>(30);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("execution", *id, "Execution id or name")->required();
  cmd->add_option("--wait", *wait, "Seconds to wait for it to stop (default 30; 0: do not wait)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_flag("--json", *json, "Print the execution as JSON (as DescribeExecution)");
  cmd->footer(
      "The execution may run in this shell's `engage flow run`, another terminal or `engage "
      "serve`: its process stops it at the state it is in (ExecutionAborted in its history). "
      "Exit 7 when it is not running, 3 when there is no such execution, 1 when it did not "
      "stop within --wait.");
  cmd->callback([&g, action, id, wait, json] {
    *action = [&g, id, wait, json]() -> Status {
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
      app::ExecutionRunner runner(ResolveHome(g.home));
      ENGAGE_RETURN_IF_ERROR(runner.Stop(*id));
      ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord r,
                              runner.AwaitEnd(*id, static_cast<int64_t>(*wait * 1000)));
      if (*json) {
        PrintJson(r.ToJson());
      } else if (r.status == "RUNNING") {
        std::printf("stop requested for %s (%s); still running\n", r.name.c_str(), r.id.c_str());
      } else {
        std::printf("execution %s (%s): %s\n", r.name.c_str(), r.id.c_str(), r.status.c_str());
      }
      if (r.status == "RUNNING" && *wait > 0) {
        return Status(StatusCode::kAborted,
                      fmt::format("execution '{}' did not stop within {} s (its process stops it "
                                  "at the next state boundary or wait)",
                                  r.name, *wait));
      }
      return Status::Ok();
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
      ENGAGE_ASSIGN_OR_RETURN(std::string role_text, ReadTextArgument(*role, "role policy"));
      auto role_json = ParseJson(role_text, *role);
      if (!role_json.ok()) return InvalidDefinition(role_json.status().message());
      ENGAGE_ASSIGN_OR_RETURN(Json definition, ParseJson(def.text, *path));
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
        std::printf("%s\n", app::EngagementPipelineDefinition());
        return Status::Ok();
      }
      ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
      app::ExecutionRequest req;
      if (definition->empty()) {
        // The compiled-in definition, run parsed: no file is written for it.
        ENGAGE_ASSIGN_OR_RETURN(req.machine, app::EngagementPipeline());
        req.state_machine = app::kEngagementPipelineName;
        req.definition = app::EngagementPipelineDefinition();
      } else {
        ENGAGE_ASSIGN_OR_RETURN(CheckedDefinition def, LoadMachine(*definition));
        req.machine = def.machine;
        req.state_machine = app::MachineNameFromPath(*definition);
        req.definition = def.text;
        std::error_code ec;
        req.definition_path = fs::absolute(*definition, ec).string();
      }
      ENGAGE_ASSIGN_OR_RETURN(req.input, app::EngagementPipelineInput(*model, *ingest));
      req.name = *name;
      StateTimeline timeline(*req.machine, !*json && ::isatty(STDERR_FILENO) == 1);
      req.on_event = [&timeline](const flow::Event& e) { timeline.OnEvent(e); };
      app::ExecutionRunner runner(ResolveHome(g.home));
      auto start = [&]() -> Result<flow::ExecutionRecord> {
        ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, runner.Start(std::move(req)));
        if (!*json && ::isatty(STDERR_FILENO) == 1) {
          std::fprintf(stderr, "execution %s (%s) started\n", rec.name.c_str(), rec.id.c_str());
        }
        return rec;
      };
      return RunInForeground(runner, start, *json, &timeline);
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
  AddStop(*flow, g, action);
  AddRegister(*flow, g, action);
  AddMachines(*flow, g, action);
  AddGraph(*flow, action);
  AddConformance(*flow, action);
  AddJsonataConformance(*flow, action);
}

}  // namespace engage::cli
