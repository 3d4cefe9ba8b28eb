// libFuzzer target: bytes -> the server's request parser (ParseRequestStream: the parser,
// limits and framing checks HttpServer uses) -> Api::Handle (router, authentication, policy,
// rate limit, audit, JSON bodies) on a temporary home.
//
// The input is what one client sends on one connection. Keys cannot be guessed, so a bearer
// token "admin" (allowed everything) or "reader" (allowed only predictions:Get on one model) is
// replaced by the real token before the request reaches the API; any other token is checked as
// given. POST /v1/query with the admin key is answered without running it (the SQL engine is
// not this target's subject, and DuckDB under ASan would make each input take seconds).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "engage/core/home.h"
#include "engage/lake/lake.h"
#include "engage/serve/auth.h"
#include "engage/server/api.h"
#include "engage/server/http.h"
#include "fuzz_common.h"

namespace {

namespace serve = engage::serve;

struct Fixture {
  std::string root;
  engage::HomePaths home;
  std::unique_ptr<server::Api> api;
  std::string admin_token;
  std::string reader_token;
  server::HttpServerOptions http;

  Fixture() {
    char tmpl[] = "/tmp/fuzz_http_request.XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    if (dir == nullptr) std::abort();
    root = dir;
    home.root = root + "/home";
    if (!engage::lake::Lake::Init(home, false).ok()) std::abort();
    const engage::Clock& clock = engage::SystemClock::Default();
    {
      auto keys = serve::KeyStore::Open(home.meta_db(), clock);
      if (!keys.ok()) std::abort();
      auto admin = (*keys)->Create(
          "admin", *serve::Policy::Parse(
                       R"({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})"));
      auto reader = (*keys)->Create(
          "reader",
          *serve::Policy::Parse(R"({"Statement":[{"Effect":"Allow","Action":"predictions:Get",)"
                                R"("Resource":"model/engagement"}]})"));
      if (!admin.ok() || !reader.ok()) std::abort();
      admin_token = admin->token;
      reader_token = reader->token;
    }
    server::ApiOptions options;
    options.rate = {.rate_per_second = 0, .burst = 1};  // no rate limit
    auto api_or = server::Api::Open(home, options, clock);
    if (!api_or.ok()) std::abort();
    api = std::move(*api_or);
    http.max_header_bytes = 4096;
    http.max_body_bytes = 64 * 1024;
  }
  ~Fixture() {
    api.reset();
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
};

Fixture& F() {
  static Fixture* f = [] {
    static Fixture fixture;
    return &fixture;
  }();
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = F();
  std::string_view bytes = engage::fuzz::AsText(data, size);
  server::HttpRequest copy;
  (void)server::ParseRequestStream(bytes, f.http, [&](const server::HttpRequest& req) {
    const server::HttpRequest* use = &req;
    if (req.authorization == "Bearer admin" || req.authorization == "Bearer reader") {
      copy = req;
      copy.authorization =
          "Bearer " + (req.authorization == "Bearer admin" ? f.admin_token : f.reader_token);
      use = &copy;
      if (req.authorization == "Bearer admin" && req.path == "/v1/query") return;
    }
    server::HttpResponse res;
    (void)f.api->IsBlocking(*use);
    f.api->Handle(*use, res);
    if (res.status < 100 || res.status > 599) std::abort();
  });
  return 0;
}
