#include "engage/flow/tasks.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace engage::flow {

namespace {

constexpr const char* kLambdaInvoke = "arn:aws:states:::lambda:invoke";
constexpr const char* kEcsRunTask = "arn:aws:states:::ecs:runTask";

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// "engage:query" or "arn:aws:states:::engage:query" -> "query".
std::optional<std::string> EngageStep(const std::string& resource) {
  for (std::string_view prefix : {"engage:", "arn:aws:states:::engage:"}) {
    if (StartsWith(resource, prefix)) return resource.substr(prefix.size());
  }
  return std::nullopt;
}

// "arn:aws:lambda:us-east-1:123:function:score:PROD" -> "score".
std::string LambdaName(const std::string& name_or_arn) {
  if (!StartsWith(name_or_arn, "arn:")) return name_or_arn.substr(0, name_or_arn.find(':'));
  size_t p = name_or_arn.find(":function:");
  if (p == std::string::npos) return name_or_arn;
  std::string rest = name_or_arn.substr(p + 10);
  return rest.substr(0, rest.find(':'));
}

// "arn:aws:ecs:...:task-definition/train:3" or "train:3" -> "train".
std::string EcsFamily(const std::string& td) {
  std::string s = td;
  size_t slash = s.rfind('/');
  if (slash != std::string::npos) s = s.substr(slash + 1);
  return s.substr(0, s.find(':'));
}

const FlowCommand* FindCommand(const std::map<std::string, FlowCommand>& m,
                               const std::vector<std::string>& keys) {
  for (const std::string& k : keys) {
    auto it = m.find(k);
    if (it != m.end()) return &it->second;
  }
  return nullptr;
}

Status ParseRange(const std::string& key, int64_t* from, int64_t* to) {
  size_t dash = key.find('-');
  try {
    size_t used = 0;
    *from = std::stoll(key.substr(0, dash), &used);
    if (used != (dash == std::string::npos ? key.size() : dash)) throw std::invalid_argument(key);
    *to = *from;
    if (dash != std::string::npos) {
      std::string rest = key.substr(dash + 1);
      *to = std::stoll(rest, &used);
      if (used != rest.size()) throw std::invalid_argument(key);
    }
  } catch (const std::exception&) {
    return InvalidArgumentError(
        fmt::format("invocation key '{}' must be a number or a range like \"1-3\"", key));
  }
  if (*from < 0 || *to < *from) {
    return InvalidArgumentError(fmt::format("invocation range '{}' is empty or negative", key));
  }
  return Status::Ok();
}

}  // namespace

TaskRegistry::TaskRegistry(FlowConfig config) : config_(std::move(config)) {}

void TaskRegistry::RegisterStep(const std::string& name, StepFn fn, std::string description,
                                StepResourcesFn resources) {
  steps_[name] = Step{std::move(fn), std::move(description), std::move(resources)};
}

void TaskRegistry::SetAuthorizer(TaskAuthorizer authorizer) { authorizer_ = std::move(authorizer); }

Status TaskRegistry::Authorize(std::string_view action, const std::string& resource) const {
  if (!authorizer_) return Status::Ok();
  Status s = authorizer_(action, resource);
  if (s.ok()) return s;
  return PermissionDeniedError(std::string(kAccessDeniedPrefix) + s.message());
}

std::vector<std::pair<std::string, std::string>> TaskRegistry::Steps() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, step] : steps_) out.emplace_back(name, step.description);
  return out;
}

Status TaskRegistry::LoadMocks(const std::string& path, const std::string& machine,
                               const std::string& test_case) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(fmt::format("cannot read mock file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  ENGAGE_ASSIGN_OR_RETURN(Json j, ParseJson(ss.str(), path));
  return SetMocks(j, path, machine, test_case);
}

Status TaskRegistry::SetMocks(const Json& j, const std::string& origin, const std::string& machine,
                              const std::string& test_case) {
  auto bad = [&](const std::string& where, const std::string& what) {
    return InvalidArgumentError(fmt::format("{}: {}: {}", origin, where, what));
  };
  // One answer spec: {"Return": v} or {"Throw": {"Error", "Cause"}}.
  auto answer = [&](const Json& spec, const std::string& where, MockAnswer* a) -> Status {
    if (!spec.is_object() || (spec.contains("Return") == spec.contains("Throw"))) {
      return bad(where, "must be an object with exactly one of \"Return\" or \"Throw\"");
    }
    if (spec.contains("Return")) {
      a->value = spec["Return"];
      return Status::Ok();
    }
    const Json& t = spec["Throw"];
    if (!t.is_object() || !t.contains("Error") || !t["Error"].is_string()) {
      return bad(where + "/Throw", "must be an object with a string \"Error\"");
    }
    if (t.contains("Cause") && !t["Cause"].is_string()) {
      return bad(where + "/Throw/Cause", "must be a string");
    }
    a->is_throw = true;
    a->value = Json{{"Error", t["Error"]}, {"Cause", t.value("Cause", "")}};
    return Status::Ok();
  };
  std::map<std::string, std::vector<MockAnswer>> out;
  if (!j.is_object()) return bad("/", "a mock file must be a JSON object");
  if (j.contains("StateMachines")) {
    const Json& machines = j["StateMachines"];
    if (!machines.is_object() || machines.empty()) {
      return bad("/StateMachines", "must be a non-empty object");
    }
    std::string m = machine;
    if (!machines.contains(m)) {
      if (machines.size() == 1) {
        m = machines.begin().key();
      } else {
        std::string names;
        for (auto it = machines.begin(); it != machines.end(); ++it) {
          names += (names.empty() ? "" : ", ") + it.key();
        }
        return bad("/StateMachines",
                   fmt::format("no entry for state machine '{}' (have {})", machine, names));
      }
    }
    if (!machines[m].is_object()) return bad("/StateMachines/" + m, "must be an object");
    const Json& cases = machines[m].value("TestCases", Json::object());
    if (!cases.is_object() || cases.empty()) {
      return bad("/StateMachines/" + m + "/TestCases", "must be a non-empty object");
    }
    std::string c = test_case;
    if (c.empty() && cases.size() == 1) c = cases.begin().key();
    if (!cases.contains(c)) {
      std::string names;
      for (auto it = cases.begin(); it != cases.end(); ++it) {
        names += (names.empty() ? "" : ", ") + it.key();
      }
      return bad("/StateMachines/" + m + "/TestCases",
                 c.empty() ? fmt::format("choose a test case with --mock-case ({})", names)
                           : fmt::format("no test case '{}' (have {})", c, names));
    }
    if (!cases[c].is_object()) {
      return bad("/StateMachines/" + m + "/TestCases/" + c,
                 "must be an object mapping state names to mocked responses");
    }
    const Json& responses = j.value("MockedResponses", Json::object());
    if (!responses.is_object()) return bad("/MockedResponses", "must be an object");
    for (auto it = cases[c].begin(); it != cases[c].end(); ++it) {
      if (!it->is_string()) {
        return bad("/StateMachines/" + m + "/TestCases/" + c + "/" + it.key(),
                   "must name a mocked response");
      }
      std::string rname = *it;
      if (!responses.contains(rname) || !responses[rname].is_object()) {
        return bad("/MockedResponses", fmt::format("no mocked response named '{}'", rname));
      }
      std::vector<MockAnswer> answers;
      for (auto r = responses[rname].begin(); r != responses[rname].end(); ++r) {
        MockAnswer a;
        std::string where = "/MockedResponses/" + rname + "/" + r.key();
        Status s = ParseRange(r.key(), &a.from, &a.to);
        if (!s.ok()) return bad(where, s.message());
        ENGAGE_RETURN_IF_ERROR(answer(*r, where, &a));
        answers.push_back(std::move(a));
      }
      out[it.key()] = std::move(answers);
    }
  } else if (j.contains("States")) {
    const Json& states = j["States"];
    if (!states.is_object()) return bad("/States", "must be an object");
    for (auto it = states.begin(); it != states.end(); ++it) {
      std::vector<MockAnswer> answers;
      std::string where = "/States/" + it.key();
      if (it->is_array()) {
        for (size_t i = 0; i < it->size(); ++i) {
          MockAnswer a;
          a.from = a.to = static_cast<int64_t>(i);
          ENGAGE_RETURN_IF_ERROR(answer((*it)[i], where + "/" + std::to_string(i), &a));
          answers.push_back(std::move(a));
        }
        // The last answer repeats for later invocations.
        if (!answers.empty()) answers.back().to = INT64_MAX;
      } else {
        MockAnswer a;
        a.to = INT64_MAX;
        ENGAGE_RETURN_IF_ERROR(answer(*it, where, &a));
        answers.push_back(std::move(a));
      }
      out[it.key()] = std::move(answers);
    }
  } else {
    return bad("/", "expected \"StateMachines\" (Step Functions Local format) or \"States\"");
  }
  mocks_ = std::move(out);
  return Status::Ok();
}

void TaskRegistry::SetInvocationCounts(std::map<std::string, int64_t> counts) {
  std::lock_guard<std::mutex> lock(mu_);
  invocations_ = std::move(counts);
}

std::string TaskRegistry::ResourceType(const std::string& resource) const {
  if (EngageStep(resource)) return "engage";
  return TaskRunner::ResourceType(resource);
}

namespace {

// Calls a registered step's function. Steps return Result; one that throws instead (a bug, a
// library call that threw) fails with kInternal naming the step, so no exception leaves Run.
template <typename Fn>
auto Caught(Fn&& fn, const std::string& step) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return InternalError(fmt::format("the Engage step '{}' threw: {}", step, e.what()));
  }
}

}  // namespace

std::variant<Json, TaskError> TaskRegistry::Run(const TaskRequest& req) {
  // 1. Mocks.
  if (auto it = mocks_.find(req.state_name); it != mocks_.end()) {
    int64_t n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = invocations_[req.state_name]++;
    }
    for (const MockAnswer& a : it->second) {
      if (n < a.from || n > a.to) continue;
      if (a.is_throw) {
        return TaskError{a.value["Error"].get<std::string>(), a.value["Cause"].get<std::string>()};
      }
      return a.value;
    }
    return TaskError{
        "Engage.MockExhausted",
        fmt::format("the mock for state '{}' has no answer for invocation {}", req.state_name, n)};
  }
  auto run_step = [&](const std::string& name,
                      const Json& params) -> std::variant<Json, TaskError> {
    const Step& st = steps_.find(name)->second;
    auto failed = [](const Status& s) {
      bool denied = s.code() == StatusCode::kPermissionDenied &&
                    std::string_view(s.message()).starts_with(kAccessDeniedPrefix);
      return TaskError{denied ? "Engage.AccessDenied" : AslErrorNameFor(s.code()), s.message()};
    };
    if (authorizer_) {
      std::vector<std::string> resources = {"*"};
      if (st.resources) {
        Result<std::vector<std::string>> r = Caught([&] { return st.resources(params); }, name);
        if (!r.ok()) return failed(r.status());
        resources = std::move(r).value();
      }
      for (const std::string& resource : resources) {
        Status s = Authorize("engage:" + name, resource);
        if (!s.ok()) return failed(s);
      }
    }
    Result<Json> r =
        wrapper_ ? Caught([&] { return wrapper_(req, name, [&] { return st.fn(params); }); }, name)
                 : Caught([&] { return st.fn(params); }, name);
    if (!r.ok()) return failed(r.status());
    return std::move(r).value();
  };
  // 2. Engage steps.
  if (auto step = EngageStep(req.resource)) {
    if (!steps_.count(*step)) {
      std::string names;
      for (const auto& [n, s] : steps_) names += (names.empty() ? "" : ", ") + n;
      return TaskError{"States.TaskFailed", fmt::format("unknown Engage step '{}' (known: {})",
                                                        *step, names.empty() ? "none" : names)};
    }
    return run_step(*step, req.parameters);
  }
  // 3. Lambda.
  bool invoke = StartsWith(req.resource, kLambdaInvoke);
  if (invoke || StartsWith(req.resource, "arn:aws:lambda:")) {
    std::string fn = req.resource;
    if (invoke) {
      const Json* f = req.parameters.is_object() && req.parameters.contains("FunctionName")
                          ? &req.parameters["FunctionName"]
                          : nullptr;
      fn = f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
    }
    if (fn.empty()) {
      return TaskError{"States.Runtime", fmt::format("state '{}': lambda:invoke needs a string "
                                                     "Parameters.FunctionName",
                                                     req.state_name)};
    }
    Json payload =
        invoke ? (req.parameters.contains("Payload") ? req.parameters["Payload"] : Json::object())
               : req.parameters;
    std::string name = LambdaName(fn);
    const FlowCommand* cmd = FindCommand(config_.lambda, {fn, name});
    std::variant<Json, TaskError> r;
    if (cmd != nullptr) {
      if (Status s = Authorize("lambda:InvokeFunction", "function/" + name); !s.ok()) {
        return TaskError{"Engage.AccessDenied", s.message()};
      }
      Json raw;
      r = RunCommand(*cmd, fmt::format("Lambda function '{}'", name), DumpJson(payload), {}, {},
                     req.timeout_seconds, req.heartbeat_seconds, req.stopped, &raw);
    } else if (steps_.count(name)) {
      r = run_step(name, payload);
    } else {
      return TaskError{"Lambda.ResourceNotFoundException",
                       fmt::format("Function not found: '{}'. Map it to a local command under "
                                   "[flow.lambda.\"{}\"] in engage.toml, or mock the state.",
                                   name, name)};
    }
    if (std::holds_alternative<TaskError>(r) || !invoke) return r;
    return Json{{"ExecutedVersion", "$LATEST"},
                {"Payload", std::move(std::get<Json>(r))},
                {"StatusCode", 200}};
  }
  // 4. ECS.
  if (StartsWith(req.resource, kEcsRunTask)) {
    std::string td;
    if (req.parameters.is_object() && req.parameters.contains("TaskDefinition") &&
        req.parameters["TaskDefinition"].is_string()) {
      td = req.parameters["TaskDefinition"].get<std::string>();
    }
    if (td.empty()) {
      return TaskError{"States.Runtime", fmt::format("state '{}': ecs:runTask needs a string "
                                                     "Parameters.TaskDefinition",
                                                     req.state_name)};
    }
    std::string family = EcsFamily(td);
    const FlowCommand* cmd = FindCommand(config_.ecs, {td, family});
    if (cmd == nullptr) {
      return TaskError{"ECS.InvalidParameterException",
                       fmt::format("Task definition '{}' is not mapped to a local command: add "
                                   "[flow.ecs.\"{}\"] to engage.toml, or mock the state.",
                                   td, family)};
    }
    if (Status s = Authorize("ecs:RunTask", "task-definition/" + family); !s.ok()) {
      return TaskError{"Engage.AccessDenied", s.message()};
    }
    std::vector<std::string> args, env;
    const Json overrides =
        req.parameters.contains("Overrides") ? req.parameters["Overrides"] : Json::object();
    if (overrides.is_object() && overrides.contains("ContainerOverrides") &&
        overrides["ContainerOverrides"].is_array() && !overrides["ContainerOverrides"].empty()) {
      const Json& c = overrides["ContainerOverrides"][0];
      if (c.is_object() && c.contains("Command") && c["Command"].is_array()) {
        for (const Json& a : c["Command"])
          args.push_back(a.is_string() ? a.get<std::string>() : DumpJson(a));
      }
      if (c.is_object() && c.contains("Environment") && c["Environment"].is_array()) {
        for (const Json& e : c["Environment"]) {
          if (e.is_object() && e.contains("Name") && e["Name"].is_string()) {
            env.push_back(e["Name"].get<std::string>() + "=" +
                          (e.contains("Value") && e["Value"].is_string()
                               ? e["Value"].get<std::string>()
                               : std::string()));
          }
        }
      }
    }
    Json raw;
    auto r = RunCommand(*cmd, fmt::format("ECS task '{}'", family), DumpJson(req.parameters), args,
                        env, req.timeout_seconds, req.heartbeat_seconds, req.stopped, &raw);
    if (std::holds_alternative<TaskError>(r)) return r;
    return Json{{"LastStatus", "STOPPED"},
                {"StopCode", "EssentialContainerExited"},
                {"TaskDefinitionArn", td},
                {"Containers", Json::array({Json{{"Name", family}, {"ExitCode", 0}}})},
                {"Output", std::move(std::get<Json>(r))}};
  }
  return TaskError{
      "States.TaskFailed",
      fmt::format("resource '{}' is not supported locally: use engage:<step>, "
                  "arn:aws:states:::lambda:invoke or arn:aws:states:::ecs:runTask.sync "
                  "with a command mapped in engage.toml, or mock the state",
                  req.resource)};
}

std::variant<Json, TaskError> TaskRegistry::RunCommand(
    const FlowCommand& cmd, const std::string& what, const std::string& input,
    const std::vector<std::string>& extra_args, const std::vector<std::string>& env,
    std::optional<int64_t> timeout_seconds, std::optional<int64_t> heartbeat_seconds,
    const std::function<bool()>& stopped, Json* raw_stdout) {
  int64_t timeout = timeout_seconds.value_or(0);
  // HeartbeatSeconds: the command must print something (stdout or stderr) at least that often.
  const int64_t heartbeat = heartbeat_seconds.value_or(0);
  if (cmd.timeout_seconds > 0 && (timeout == 0 || cmd.timeout_seconds < timeout)) {
    timeout = cmd.timeout_seconds;
  }
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    return TaskError{"States.TaskFailed",
                     fmt::format("{}: pipe failed: {}", what, strerror(errno))};
  }
  std::vector<std::string> argv_s = cmd.command;
  argv_s.insert(argv_s.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The child's environment is built before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    bool overridden = false;
    for (const std::string& x : env) {
      overridden |=
          kv.substr(0, kv.find('=') + 1) == std::string_view(x).substr(0, x.find('=') + 1);
    }
    if (!overridden) env_s.emplace_back(kv);
  }
  env_s.insert(env_s.end(), env.begin(), env.end());
  if (heartbeat > 0) env_s.push_back(fmt::format("ENGAGE_HEARTBEAT_SECONDS={}", heartbeat));
  std::vector<char*> envp;
  for (std::string& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  // A command that exits without reading all of its input must not kill Engage with SIGPIPE:
  // writes to its stdin then fail with EPIPE instead. (The child restores the default.)
  static const bool sigpipe_ignored = [] {
    signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
  pid_t pid = fork();
  if (pid < 0) {
    return TaskError{"States.TaskFailed",
                     fmt::format("{}: fork failed: {}", what, strerror(errno))};
  }
  if (pid == 0) {
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execvpe(argv[0], argv.data(), envp.data());
    dprintf(2, "cannot run '%s': %s", argv[0], strerror(errno));
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  // Feed stdin and drain stdout/stderr together so neither side blocks.
  std::string out, err;
  size_t written = 0;
  fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  int fds_open = 2;
  bool in_open = true;
  auto start = std::chrono::steady_clock::now();
  auto last_beat = start;
  bool timed_out = false, heartbeat_missed = false, aborted = false;
  if (input.empty()) {
    close(in_pipe[1]);
    in_open = false;
  }
  while (fds_open > 0) {
    std::vector<pollfd> pfds;
    if (out_pipe[0] >= 0) pfds.push_back({out_pipe[0], POLLIN, 0});
    if (err_pipe[0] >= 0) pfds.push_back({err_pipe[0], POLLIN, 0});
    if (in_open) pfds.push_back({in_pipe[1], POLLOUT, 0});
    int wait_ms = 200;
    int rc = poll(pfds.data(), pfds.size(), wait_ms);
    if (rc < 0 && errno != EINTR) break;
    for (const pollfd& p : pfds) {
      if (p.revents == 0) continue;
      if (p.fd == (in_open ? in_pipe[1] : -1)) {
        ssize_t n = write(in_pipe[1], input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        if (n < 0 && errno != EAGAIN) written = input.size();
        if (written >= input.size()) {
          close(in_pipe[1]);
          in_open = false;
        }
        continue;
      }
      char buf[65536];
      ssize_t n = read(p.fd, buf, sizeof buf);
      if (n > 0) {
        (p.fd == out_pipe[0] ? out : err).append(buf, static_cast<size_t>(n));
        last_beat = std::chrono::steady_clock::now();
      } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(p.fd);
        if (p.fd == out_pipe[0]) out_pipe[0] = -1;
        if (p.fd == err_pipe[0]) err_pipe[0] = -1;
        --fds_open;
      }
    }
    if (stopped && stopped()) {
      // Its Map iteration or Parallel branch (or the execution) was stopped: so is the command.
      aborted = true;
      kill(-pid, SIGKILL);
      break;
    }
    if (timeout > 0 && std::chrono::steady_clock::now() - start > std::chrono::seconds(timeout)) {
      timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    if (heartbeat > 0 && fds_open > 0 &&
        std::chrono::steady_clock::now() - last_beat > std::chrono::seconds(heartbeat)) {
      heartbeat_missed = true;
      timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
  }
  if (in_open) close(in_pipe[1]);
  if (out_pipe[0] >= 0) close(out_pipe[0]);
  if (err_pipe[0] >= 0) close(err_pipe[0]);
  // The command may close its output and keep running: the timeout still applies.
  int status = 0;
  for (int64_t nap_us = 100;;) {
    pid_t w = waitpid(pid, &status, timed_out || aborted ? 0 : WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (w == 0) {
      if (stopped && stopped()) {
        aborted = true;
        kill(-pid, SIGKILL);
      } else if (timeout > 0 &&
                 std::chrono::steady_clock::now() - start > std::chrono::seconds(timeout)) {
        timed_out = true;
        kill(-pid, SIGKILL);
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(nap_us));
        nap_us = std::min<int64_t>(nap_us * 2, 50000);
      }
    }
  }
  if (aborted) return TaskError{"States.Aborted", fmt::format("{} was stopped", what)};
  if (heartbeat_missed) {
    return TaskError{"States.HeartbeatTimeout",
                     fmt::format("{} printed nothing for {} s (HeartbeatSeconds) and was stopped",
                                 what, heartbeat)};
  }
  if (timed_out) {
    return TaskError{"States.Timeout",
                     fmt::format("{} did not finish within {} s and was stopped", what, timeout)};
  }
  std::string err_tail = err.size() > 2000 ? err.substr(err.size() - 2000) : err;
  if (JsonTextDepth(out) > kMaxJsonDepth) {
    return TaskError{"States.Runtime", fmt::format("{} printed JSON nested deeper than {} levels",
                                                   what, kMaxJsonDepth)};
  }
  Json result = out.find_first_not_of(" \t\r\n") == std::string::npos
                    ? Json()
                    : Json::parse(out, nullptr, false);
  *raw_stdout = result;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status) ? fmt::format("exited with code {}", WEXITSTATUS(status))
                                        : fmt::format("was killed by signal {}", WTERMSIG(status));
    if (result.is_object() && result.contains("errorType") && result["errorType"].is_string()) {
      // A Lambda-style error object: its errorType is the error and the object is the cause,
      // as AWS reports function errors (States.StringToJson($.Cause) gets errorMessage back).
      return TaskError{result["errorType"].get<std::string>(), DumpJson(result)};
    }
    return TaskError{"States.TaskFailed",
                     fmt::format("{} {}{}{}", what, how, err_tail.empty() ? "" : ": ", err_tail)};
  }
  if (result.is_discarded()) {
    return TaskError{"States.TaskFailed", fmt::format("{} printed output that is not JSON: {}",
                                                      what, out.substr(0, 500))};
  }
  return result;
}

}  // namespace engage::flow
