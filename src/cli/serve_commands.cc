// `engage publish`: the serving store. The server commands join it as they arrive.
#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "engage/core/clock.h"
#include "engage/core/fs.h"
#include "engage/ml/registry.h"
#include "engage/serve/api.h"
#include "engage/serve/http.h"
#include "engage/serve/store.h"

namespace engage::cli {

Result<serve::PublishReport> PublishModels(lake::Lake& lake, const std::vector<std::string>& refs,
                                           int keep) {
  ENGAGE_ASSIGN_OR_RETURN(auto registry,
                          ml::ModelRegistry::Open(lake.home(), SystemClock::Default()));
  serve::PublishOptions o;
  o.keep = keep;
  for (const auto& ref : refs) {
    ENGAGE_ASSIGN_OR_RETURN(ml::ModelVersion v, registry->Resolve(ref));
    if (o.versions.empty()) {
      o.model = v.name;
    } else if (v.name != o.model) {
      return InvalidArgumentError(fmt::format(
          "one snapshot serves one model: '{}' is not a version of '{}'", ref, o.model));
    }
    o.versions.push_back(v.version);
  }
  return serve::Publish(lake, o, SystemClock::Default());
}

namespace {

void AddPublish(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "publish",
      "Copy the latest predictions of one or more model versions into the serving store "
      "(an atomic switch: servers see the old or the new snapshot, never a mix)");
  auto refs = std::make_shared<std::vector<std::string>>();
  auto keep = std::make_shared<int>(3);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--model", *refs,
                  "name@alias or name@version, repeatable; the first is served by default "
                  "(default: engagement@champion)");
  cmd->add_option("--keep", *keep, "Snapshots kept on disk, the new one included")
      ->default_val(3)
      ->check(CLI::Range(1, 100));
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->callback([&g, action, refs, keep, json] {
    *action = [&g, refs, keep, json]() -> Status {
      if (refs->empty()) refs->push_back("engagement@champion");
      ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
      ENGAGE_ASSIGN_OR_RETURN(serve::PublishReport r, PublishModels(*lake, *refs, *keep));
      if (*json) {
        PrintJson(r.ToJson());
        return Status::Ok();
      }
      const auto& s = r.snapshot;
      std::printf("published snapshot %s of %s in %.2f s: %.1f MB, %.1f bytes per customer\n",
                  s.id.c_str(), s.model.c_str(), r.seconds, static_cast<double>(s.bytes) / 1e6,
                  r.bytes_per_customer);
      std::vector<std::vector<std::string>> rows;
      for (const auto& v : s.versions) {
        rows.push_back({std::to_string(v.version), v.version == s.default_version ? "yes" : "",
                        std::to_string(v.customers), v.scored_at, v.cutoff});
      }
      PrintTable({"version", "default", "customers", "scored_at", "cutoff"}, rows);
      return Status::Ok();
    };
  });
}

struct ServeFlags {
  serve::HttpServerOptions http;
  serve::ApiOptions api;
  std::string port_file;
};

// Runs the server until SIGTERM or SIGINT, then drains: requests in flight finish.
Status Serve(const GlobalOptions& g, const ServeFlags& f) {
  // Signals go to one thread that waits for them; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ENGAGE_ASSIGN_OR_RETURN(auto lake, OpenLake(g, /*writer=*/false));
  HomePaths home = lake->home();
  lake.reset();
  ENGAGE_ASSIGN_OR_RETURN(auto api, serve::Api::Open(home, f.api, SystemClock::Default()));
  serve::HttpServer server(
      f.http,
      [&api](const serve::HttpRequest& req, serve::HttpResponse& res) { api->Handle(req, res); },
      [&api](const serve::HttpRequest& req) { return api->IsBlocking(req); });
  ENGAGE_RETURN_IF_ERROR(server.Start());
  api->SetServerStats(&server.stats());
  if (!f.port_file.empty()) {
    ENGAGE_RETURN_IF_ERROR(
        PosixFileSystem().WriteFileAtomic(f.port_file, std::to_string(server.port()) + "\n"));
  }
  std::printf("engage serve: listening on http://%s:%d (home %s)\n", f.http.bind.c_str(),
              server.port(), home.root.c_str());
  std::fflush(stdout);

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  // New snapshots from `engage publish` are picked up within a second.
  std::thread refresher([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) {
      lock.unlock();
      api->Refresh();
      lock.lock();
    }
  });
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "engage serve: %s, finishing requests in flight\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server.Stop();
  });
  server.Run();
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
  }
  cv.notify_all();
  refresher.join();
  // Run() also returns when the server stops for another reason: wake the signal thread.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  std::fprintf(stderr, "engage serve: stopped after %ld requests\n",
               static_cast<long>(server.stats().requests_total.load()));
  return Status::Ok();
}

void AddServe(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve predictions, models and metered SQL over HTTP (API keys required: engage keys "
      "create)");
  auto f = std::make_shared<ServeFlags>();
  cmd->add_option("--port", f->http.port, "TCP port; 0 picks a free one")
      ->default_val(8080)
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--bind", f->http.bind, "Address to listen on")->default_val("127.0.0.1");
  cmd->add_option("--threads", f->http.threads, "Event loops (0 = one per core)")
      ->default_val(0)
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-connections", f->http.max_connections,
                  "Open connections beyond which new ones get 503")
      ->default_val(10000)
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--max-body-bytes", f->http.max_body_bytes, "Largest request body (413 beyond)")
      ->default_val(1024 * 1024);
  cmd->add_option("--rate-limit", f->api.rate.rate_per_second,
                  "Requests per second per API key (429 beyond; 0 = no limit)")
      ->default_val(1000);
  cmd->add_option("--burst", f->api.rate.burst, "Requests a rested key may make at once")
      ->default_val(2000);
  cmd->add_option("--port-file", f->port_file, "Write the bound port to this file once listening");
  cmd->callback([&g, action, f] { *action = [&g, f]() -> Status { return Serve(g, *f); }; });
}

}  // namespace

void RegisterServeCommands(CLI::App& app, GlobalOptions& g, std::function<Status()>* action) {
  AddPublish(app, g, action);
  AddServe(app, g, action);
}

}  // namespace engage::cli
