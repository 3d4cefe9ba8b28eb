// `engage flow ...`: validate, run, list, describe, history, redrive, graph and the conformance
// runners. Argument parsing and printing only; the engine and store live in engage::flow.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "engage/app/app.h"
#include "engage/app/definitions.h"
#include "engage/app/executions.h"
#include "engage/app/monitoring.h"
#include "engage/app/pipelines.h"
#include "engage/app/timeline.h"
#include "engage/core/home.h"
#include "engage/flow/conformance.h"
#include "engage/flow/graph.h"
#include "engage/flow/registry.h"
#include "engage/flow/store.h"
#include "engage/jsonata/conformance.h"

namespace engage::cli {
namespace {

namespace fs = std::filesystem;

int64_t Now() { return SystemClock::Default().NowMicros(); }

// Opens the execution store of the home and fails executions whose process died (saying so).
Result<std::unique_ptr<flow::ExecutionStore>> OpenStore(const GlobalOptions& g) {
  return app::ExecutionRunner(ResolveHome(g.home)).OpenStore();
}

// Runs an execution started by `start` to its end in the foreground (Ctrl-C stops it cleanly)
// and prints how it ended: with a `timeline`, its summary table instead of the full output.
Status RunAndPrint(app::ExecutionRunner& runner,
                   const std::function<Result<flow::ExecutionRecord>()>& start, bool json,
                   const app::StateTimeline* timeline = nullptr) {
  ENGAGE_ASSIGN_OR_RETURN(app::ExecutionOutcome out, app::RunInForeground(runner, start));
  Emit(json, out.ToJson(), [&] {
    std::fputs((timeline ? timeline->Report(out.record, out.result) : out.ToText()).c_str(),
               stdout);
  });
  return out.ToStatus();
}

void AddValidate(CLI::App& flow, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "validate",
      "Check an ASL definition; every problem with its state and field; exit 1 if invalid");
  struct O {
    std::string path;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("definition", o.path, "State machine definition (JSON)")->required();
  cmd->add_flag("--json", o.json, "Print {\"valid\": bool, \"problems\": [...]}");
  OnRun(cmd, action, [&o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto d, app::CheckDefinitionFile(o.path, Now()));
    Emit(o.json, d.ValidationJson(), [&] { std::fputs(d.ValidationText(o.path).c_str(), stdout); });
    return d.machine ? Status::Ok()
                     : app::InvalidDefinition(app::ProblemSummary(o.path, d.problems));
  });
}

void AddRun(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "run", "Run a definition to a terminal state; the execution and its history go to meta.db");
  struct O {
    std::string definition, input, name, mock, mock_case, type = "STANDARD";
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("definition", o.definition, "State machine definition (JSON)")->required();
  cmd->add_option("--input", o.input, "Execution input: a JSON file, or - for stdin (default {})");
  cmd->add_option("--name", o.name, "Execution name, unique per state machine (default: the id)");
  cmd->add_flag("--json", o.json,
                "Print {\"status\", \"output\"} or {\"status\", \"error\", \"cause\"}");
  auto* mock = cmd->add_option("--mock", o.mock,
                               "Mock Task results per state (Step Functions Local mock config, or "
                               "{\"States\": {...}}) for deterministic tests");
  cmd->add_option("--mock-case", o.mock_case, "Test case in a Step Functions Local mock config")
      ->needs(mock);
  cmd->add_option("--type", o.type,
                  "STANDARD or EXPRESS: an Express workflow execution (5-minute limit, no "
                  "redrive, no .sync/.waitForTaskToken)")
      ->check(CLI::IsMember({"STANDARD", "EXPRESS"}));
  cmd->footer(
      "Exit status: 0 when the execution SUCCEEDED, 1 when it FAILED, TIMED_OUT or was ABORTED "
      "(or the definition is invalid), 2 when an EXPRESS run's definition uses what Express "
      "workflows do not support, 4 when --name is taken.");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(app::ExecutionRequest req, app::RequestForFile(o.definition, Now()));
    if (o.type == "EXPRESS") ENGAGE_RETURN_IF_ERROR(flow::CheckExpressDefinition(*req.machine));
    if (!o.input.empty()) {
      ENGAGE_ASSIGN_OR_RETURN(std::string text, ReadTextArgument(o.input, "input file"));
      ENGAGE_ASSIGN_OR_RETURN(req.input,
                              ParseJson(text, o.input == "-" ? "stdin (--input -)" : o.input));
    }
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
    app::BlockStopSignals blocked;  // before the App's threads start: see RunInForeground
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));  // its runner: ledger, budgets
    app::ExecutionRunner& runner = application->executions();
    req.name = o.name;
    req.mock_case = o.mock_case;
    std::error_code ec;
    if (!o.mock.empty()) req.mock_path = fs::absolute(o.mock, ec).string();
    req.express = o.type == "EXPRESS";
    return RunAndPrint(
        runner, [&] { return runner.Start(std::move(req)); }, o.json);
  });
}

void AddRedrive(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "redrive", "Resume a FAILED/TIMED_OUT/ABORTED execution from the state that failed");
  struct O {
    app::RedriveRequest req;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("execution", o.req.execution, "Execution id or name")->required();
  cmd->add_flag("--json", o.json, "Print the result as JSON");
  cmd->add_option("--mock", o.req.mock_path,
                  "Mock Task results (as for flow run); default: the mocks the execution ran "
                  "with, continuing their invocation numbering");
  cmd->add_option("--mock-case", o.req.mock_case,
                  "Test case in a Step Functions Local mock config");
  cmd->footer(
      "The execution resumes at the top-level state that failed (or was running when the "
      "process died), with the input and variables it had then; earlier states do not run "
      "again. Exit status as for flow run; 7 when the execution cannot be redriven.");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
    app::BlockStopSignals blocked;  // before the App's threads start: see RunInForeground
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));  // its runner: ledger, budgets
    app::ExecutionRunner& runner = application->executions();
    auto start = [&]() -> Result<flow::ExecutionRecord> {
      flow::RedrivePoint point;
      ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, runner.StartRedrive(o.req, &point));
      if (!o.json) {
        std::printf("redriving %s from state '%s' (redrive #%lld)\n", rec.name.c_str(),
                    point.state.c_str(), static_cast<long long>(point.redrive_count));
        std::fflush(stdout);
      }
      return rec;
    };
    return RunAndPrint(runner, start, o.json);
  });
}

void AddStop(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "stop", "Stop a running execution (as StopExecution): it ends ABORTED, wherever it runs");
  struct O {
    std::string id;
    double wait = 30;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("execution", o.id, "Execution id or name")->required();
  cmd->add_option("--wait", o.wait, "Seconds to wait for it to stop (default 30; 0: do not wait)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_flag("--json", o.json, "Print the execution as JSON (as DescribeExecution)");
  cmd->footer(
      "The execution may run in this shell's `engage flow run`, another terminal or `engage "
      "serve`: its process stops it at the state it is in (ExecutionAborted in its history). "
      "Exit 7 when it is not running, 3 when there is no such execution, 1 when it did not "
      "stop within --wait.");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
    app::ExecutionRunner runner(ResolveHome(g.home));
    ENGAGE_RETURN_IF_ERROR(runner.Stop(o.id));
    ENGAGE_ASSIGN_OR_RETURN(auto r, runner.AwaitEnd(o.id, static_cast<int64_t>(o.wait * 1000)));
    const bool running = r.status == "RUNNING";
    Emit(o.json, r.ToJson(), [&r, running] {
      std::printf(
          running ? "stop requested for %s (%s); still running\n" : "execution %s (%s): %s\n",
          r.name.c_str(), r.id.c_str(), r.status.c_str());
    });
    if (!running || o.wait <= 0) return Status::Ok();
    return Status(StatusCode::kAborted,
                  fmt::format("execution '{}' did not stop within {} s (its process stops it "
                              "at the next state boundary or wait)",
                              r.name, o.wait));
  });
}

// `engage flow list|describe|history|machines`: reads of the home's executions and machines.
void AddReads(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  struct O {
    std::string status, id;
    int64_t limit = 50;
    bool json = false;
  };
  auto& o = Keep<O>();
  auto* list = flow.add_subcommand("list", "List executions, newest first");
  list->add_option("--status", o.status, "Only RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED")
      ->check(CLI::IsMember({"RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}));
  list->add_option("--limit", o.limit, "At most this many (default 50)")
      ->check(CLI::Range(int64_t{1}, int64_t{100'000}));
  list->add_flag("--json", o.json, "Print a JSON array");
  OnRun(list, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
    ENGAGE_ASSIGN_OR_RETURN(auto executions, store->List(o.limit, o.status));
    Emit(o.json, flow::ExecutionsJson(executions),
         [&] { std::fputs(flow::ExecutionsTable(executions).c_str(), stdout); });
    return Status::Ok();
  });
  auto* describe =
      flow.add_subcommand("describe", "Show one execution: status, input, output, error");
  describe->add_option("execution", o.id, "Execution id or name")->required();
  describe->add_flag("--json", o.json, "Print as JSON (like DescribeExecution)");
  OnRun(describe, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
    ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord r, store->Get(o.id));
    ENGAGE_ASSIGN_OR_RETURN(monitor::ExecutionCost cost,
                            app::ExecutionCostOf(ResolveHome(g.home), r.id));
    Json j = r.ToJson();
    j["cost"] = cost.ToJson();
    Emit(o.json, j, [&] { std::fputs((r.ToText() + cost.ToText()).c_str(), stdout); });
    return Status::Ok();
  });
  auto* history = flow.add_subcommand("history", "Show an execution's events (AWS event types)");
  history->add_option("execution", o.id, "Execution id or name")->required();
  history->add_flag("--json", o.json, "Print {\"events\": [...]} like GetExecutionHistory");
  OnRun(history, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));
    ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord r, store->Get(o.id));
    ENGAGE_ASSIGN_OR_RETURN(auto events, store->History(r.id));
    ENGAGE_ASSIGN_OR_RETURN(monitor::ExecutionCost cost,
                            app::ExecutionCostOf(ResolveHome(g.home), r.id));
    Emit(o.json, {{"events", flow::HistoryJson(events)}, {"cost", cost.ToJson()}},
         [&] { std::fputs((flow::HistoryTable(events) + cost.ToText()).c_str(), stdout); });
    return Status::Ok();
  });
  auto* machines = flow.add_subcommand("machines", "List the registered state machines");
  machines->add_flag("--json", o.json,
                     "Print {\"state_machines\": [...]} with each definition and role, as GET "
                     "/v1/state-machines/{name}");
  OnRun(machines, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
    ENGAGE_ASSIGN_OR_RETURN(
        auto registry,
        flow::StateMachineRegistry::Open(ResolveHome(g.home).meta_db(), SystemClock::Default()));
    ENGAGE_ASSIGN_OR_RETURN(auto registered, registry->List());
    Json arr = Json::array();
    for (const auto& m : registered) arr.push_back(m.ToJson(true));
    Emit(o.json, {{"state_machines", std::move(arr)}},
         [&] { std::fputs(flow::MachinesTable(registered).c_str(), stdout); });
    return Status::Ok();
  });
}

void AddRegister(CLI::App& flow, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand(
      "register",
      "Register a state machine under a name, with the role policy bounding its steps (what "
      "executions started over HTTP may run)");
  struct O {
    std::string name, path, role;
    bool json = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("name", o.name, "State machine name: 1-80 characters of A-Z a-z 0-9 _ -")
      ->required();
  cmd->add_option("definition", o.path, "State machine definition (JSON)")->required();
  cmd->add_option("--role", o.role,
                  "Role policy (JSON): which engage:<step> actions its Tasks may run on which "
                  "table/, model/, function/, task-definition/ and bucket/ resources")
      ->required();
  cmd->add_flag("--json", o.json, "Print the registered machine as JSON");
  cmd->footer(
      "Registering a name again replaces its definition and role (its version goes up). "
      "Executions start with POST /v1/executions {\"state_machine\": NAME}. Exit 2 for a bad "
      "name, 1 for an invalid definition or role.");
  OnRun(cmd, action, [&g, &o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto m,
                            app::RegisterMachineFiles(ResolveHome(g.home), o.name, o.path, o.role));
    Emit(o.json, m.ToJson(false), [&m] {
      std::printf("registered state machine %s (version %lld)\n", m.name.c_str(),
                  static_cast<long long>(m.version));
    });
    return Status::Ok();
  });
}

void AddGraph(CLI::App& flow, std::function<Status()>* action) {
  auto* cmd = flow.add_subcommand("graph", "Draw a definition as a Mermaid or Graphviz DOT graph");
  struct O {
    std::string path, format = "mermaid";
  };
  auto& o = Keep<O>();
  cmd->add_option("definition", o.path, "State machine definition (JSON)")->required();
  cmd->add_option("--format", o.format, "mermaid (default) or dot")
      ->check(CLI::IsMember({"mermaid", "dot"}));
  OnRun(cmd, action, [&o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(app::DefinitionFile d, app::LoadDefinitionFile(o.path, Now()));
    auto format = o.format == "dot" ? flow::GraphFormat::kDot : flow::GraphFormat::kMermaid;
    std::fputs(flow::RenderGraph(*d.machine, format).c_str(), stdout);
    return Status::Ok();
  });
}

void AddConformance(CLI::App& flow, std::function<Status()>* action) {
  struct O {
    std::string path;
    bool json = false;
  };
  auto& o = Keep<O>();
  auto* asl = flow.add_subcommand(
      "conformance", "Run the ASL conformance corpus (cases recorded on AWS) and print pass rates");
  asl->add_option("dir", o.path, "Corpus directory (holding cases/ or case folders)")->required();
  asl->add_flag("--json", o.json, "Print the full report as JSON");
  OnRun(asl, action, [&o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto results, flow::RunAslCorpus(o.path));
    Json report = flow::AslReportToJson(results);
    Emit(o.json, report, [&report] {
      std::fputs(flow::ConformanceReportText(report, "categories", "category").c_str(), stdout);
    });
    return Status::Ok();
  });
  auto* jsonata = flow.add_subcommand(
      "jsonata-conformance",
      "Run the JSONata reference test cases (cases.jsonl) and print pass rates");
  jsonata->add_option("file", o.path, "cases.jsonl")->required();
  jsonata->add_flag("--json", o.json, "Print the full report as JSON");
  OnRun(jsonata, action, [&o]() -> Status {
    ENGAGE_ASSIGN_OR_RETURN(auto results, jsonata::RunJsonataCorpus(o.path));
    Json report = jsonata::JsonataReportToJson(results);
    Emit(o.json, report, [&report] {
      std::fputs(flow::ConformanceReportText(report, "groups", "group").c_str(), stdout);
    });
    return Status::Ok();
  });
}

// `engage run pipeline`: the shipped engagement pipeline (pipelines/engagement.asl.json,
// compiled in) or another definition, with its input built from the flags.
void AddRunPipeline(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* run = app.add_subcommand("run", "Run a shipped pipeline");
  run->require_subcommand(1);
  auto* cmd = run->add_subcommand(
      "pipeline",
      "The engagement pipeline: ingest, data quality, features, train, evaluate, promote if "
      "better, score, publish, cost summary");
  struct O {
    std::string definition, model = "engagement", name;
    std::vector<std::string> ingest;
    bool json = false, print = false;
  };
  auto& o = Keep<O>();
  cmd->add_option("--ingest", o.ingest,
                  "TABLE=FILE_OR_GLOB to ingest first (repeatable), e.g. events='data/events/*'");
  cmd->add_option("--model", o.model, "Model name to train and promote");
  cmd->add_option("--definition", o.definition,
                  "Run this ASL file instead of the shipped pipelines/engagement.asl.json");
  cmd->add_option("--name", o.name, "Execution name (default: the id)");
  cmd->add_flag("--json", o.json, "Print {\"status\", \"output\"} as JSON");
  cmd->add_flag("--print-definition", o.print, "Print the shipped pipeline definition and stop");
  cmd->footer(
      "The execution is recorded like `engage flow run`: see `engage flow history`, and "
      "`engage flow redrive` resumes a failed run at the failed step.");
  OnRun(cmd, action, [&g, &o]() -> Status {
    if (o.print) {
      std::printf("%s\n", app::EngagementPipelineDefinition());
      return Status::Ok();
    }
    ENGAGE_ASSIGN_OR_RETURN(auto store, OpenStore(g));  // fails clearly without a home
    app::ExecutionRequest req;
    if (o.definition.empty()) {
      // The compiled-in definition, run parsed: no file is written for it.
      ENGAGE_ASSIGN_OR_RETURN(req.machine, app::EngagementPipeline());
      req.state_machine = app::kEngagementPipelineName;
      req.definition = app::EngagementPipelineDefinition();
    } else {
      ENGAGE_ASSIGN_OR_RETURN(req, app::RequestForFile(o.definition, Now()));
    }
    ENGAGE_ASSIGN_OR_RETURN(req.input, app::EngagementPipelineInput(o.model, o.ingest));
    req.name = o.name;
    const bool live = !o.json && ::isatty(STDERR_FILENO) == 1;
    app::StateTimeline timeline(*req.machine, [live](const std::string& line) {
      if (live) std::fputs(line.c_str(), stderr);
    });
    req.on_event = [&timeline](const flow::Event& e) { timeline.OnEvent(e); };
    app::BlockStopSignals blocked;  // before the App's threads start: see RunInForeground
    ENGAGE_ASSIGN_OR_RETURN(auto application, OpenApp(g));  // its runner: ledger, budgets
    app::ExecutionRunner& runner = application->executions();
    auto start = [&]() -> Result<flow::ExecutionRecord> {
      ENGAGE_ASSIGN_OR_RETURN(flow::ExecutionRecord rec, runner.Start(std::move(req)));
      if (live)
        std::fprintf(stderr, "execution %s (%s) started\n", rec.name.c_str(), rec.id.c_str());
      return rec;
    };
    return RunAndPrint(runner, start, o.json, &timeline);
  });
}

}  // namespace

void RegisterFlowCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddRunPipeline(app, g, action);
  auto* flow = app.add_subcommand(
      "flow", "Run Amazon States Language state machines locally (Step Functions semantics)");
  flow->require_subcommand(1);
  AddValidate(*flow, action);
  AddRun(*flow, g, action);
  AddReads(*flow, g, action);
  AddRedrive(*flow, g, action);
  AddStop(*flow, g, action);
  AddRegister(*flow, g, action);
  AddGraph(*flow, action);
  AddConformance(*flow, action);
}

}  // namespace engage::cli
