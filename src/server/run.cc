#include "engage/server/run.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "engage/app/app.h"
#include "engage/core/fs.h"

namespace engage::server {

Status ServeOptions::Validate() const {
  auto in = [](const char* flag, double v, double lo, double hi) -> Status {
    if (v >= lo && v <= hi) return Status::Ok();  // NaN fails
    return InvalidArgumentError(
        fmt::format("{} must be from {:g} to {:g}, got {:g}", flag, lo, hi, v));
  };
  ENGAGE_RETURN_IF_ERROR(in("--port", http.port, 0, 65535));
  ENGAGE_RETURN_IF_ERROR(in("--threads", http.threads, 0, 1024));
  ENGAGE_RETURN_IF_ERROR(in("--max-connections", http.max_connections, 1, 1e6));
  ENGAGE_RETURN_IF_ERROR(
      in("--max-body-bytes", static_cast<double>(http.max_body_bytes), 1024, 1 << 30));
  ENGAGE_RETURN_IF_ERROR(in("--rate-limit", api.rate.rate_per_second, 0, 1e6));
  return in("--burst", api.rate.burst, 1, 1e7);
}

Status Serve(const HomePaths& home_paths, const ServeOptions& f) {
  ENGAGE_RETURN_IF_ERROR(f.Validate());
  // Signals go to one thread that waits for them; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Outlives the server and the API: executions still running at shutdown are stopped (ABORTED
  // in their history) and waited for.
  ENGAGE_ASSIGN_OR_RETURN(auto app, app::App::Open(home_paths));
  HomePaths home = app->home();
  ENGAGE_ASSIGN_OR_RETURN(auto api, Api::Open(*app, f.api));
  // Alerts earlier processes could not deliver before they ended.
  if (Status s = app->monitoring().alerts().ResumePending(app->config().alerts); !s.ok()) {
    std::fprintf(stderr, "engage serve: could not resume pending alerts: %s\n",
                 s.message().c_str());
  }
  HttpServer server(
      f.http, [&api](const HttpRequest& req, HttpResponse& res) { api->Handle(req, res); },
      [&api](const HttpRequest& req) { return api->IsBlocking(req); });
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
  // Executions still running are stopped (ABORTED in their history), not cut off mid-state.
  int64_t left = app->executions().Shutdown(app::ExecutionRunner::ShutdownMode::kAbort, 10000);
  if (left > 0) {
    std::fprintf(stderr, "engage serve: %ld execution(s) did not stop within 10 s\n",
                 static_cast<long>(left));
  }
  std::fprintf(stderr, "engage serve: stopped after %ld requests\n",
               static_cast<long>(server.stats().requests_total.load()));
  return Status::Ok();
}

}  // namespace engage::server
