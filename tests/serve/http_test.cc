#include "engage/serve/http.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "testing/http_client.h"

namespace engage::testing {
namespace {

using serve::HttpRequest;
using serve::HttpResponse;

class HttpTest : public ::testing::Test {
 protected:
  void Start(serve::HttpServerOptions o = {}) {
    o.port = 0;
    o.threads = 2;
    server_ = std::make_unique<serve::HttpServer>(
        o,
        [this](const HttpRequest& req, HttpResponse& res) {
          ++handled_;
          if (req.path == "/throw") throw std::runtime_error("boom");
          if (req.path == "/slow") {
            started_.set_value();
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
          }
          res.body = "{\"method\":\"" + req.method + "\",\"path\":\"" + req.path +
                     "\",\"query\":\"" + req.query + "\",\"auth\":\"" + req.authorization +
                     "\",\"bytes\":" + std::to_string(req.body.size()) + "}";
          res.headers.emplace_back("X-Test", std::string(req.Header("x-echo")));
        },
        [](const HttpRequest& req) { return req.path == "/slow"; });
    ASSERT_TRUE(server_->Start().ok());
    runner_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (runner_.joinable()) runner_.join();
  }

  std::unique_ptr<serve::HttpServer> server_;
  std::thread runner_;
  std::atomic<int> handled_{0};
  std::promise<void> started_;
};

TEST_F(HttpTest, AnswersOnAnEphemeralPortWithKeepAlive) {
  Start();
  ASSERT_GT(server_->port(), 0);
  HttpClient c(server_->port());
  for (int i = 0; i < 5; ++i) {
    auto r = c.Request("GET", "/v1/x?a=1", "", {{"Authorization", "Bearer k"}, {"X-Echo", "hi"}});
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body,
              R"({"method":"GET","path":"/v1/x","query":"a=1","auth":"Bearer k","bytes":0})");
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(r.headers["x-test"], "hi");
    EXPECT_EQ(r.headers["content-type"], "application/json");
  }
  EXPECT_EQ(server_->stats().connections_total.load(), 1);
  EXPECT_EQ(server_->stats().requests_total.load(), 5);
}

TEST_F(HttpTest, OversizedAndMalformedRequestsGetErrorsAndTheServerGoesOn) {
  serve::HttpServerOptions o;
  o.max_body_bytes = 1000;
  o.max_header_bytes = 2048;
  Start(o);
  HttpClient c(server_->port());
  auto big = c.Request("POST", "/v1/x", std::string(5000, 'x'));
  EXPECT_EQ(big.status, 413) << big.error;
  EXPECT_NE(big.body.find("PAYLOAD_TOO_LARGE"), std::string::npos);
  auto headers = c.Request("GET", "/v1/x", "", {{"X-Big", std::string(4000, 'h')}});
  EXPECT_EQ(headers.status, 413) << headers.error;
  auto bad = c.Raw("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(bad.status, 400) << bad.error;
  auto bad_length = c.Raw("POST /x HTTP/1.1\r\nContent-Length: zz\r\n\r\n");
  EXPECT_EQ(bad_length.status, 400) << bad_length.error;
  auto ok = c.Request("POST", "/v1/x", std::string(999, 'x'));
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("\"bytes\":999"), std::string::npos);
  EXPECT_GE(server_->stats().rejected_bad_request.load(), 4);
}

TEST_F(HttpTest, AHandlerThatThrowsIsA500) {
  Start();
  HttpClient c(server_->port());
  auto r = c.Request("GET", "/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, R"({"error":{"code":"INTERNAL","message":"internal error"}})");
  EXPECT_EQ(c.Request("GET", "/after").status, 200);
}

TEST_F(HttpTest, TooManyConnectionsAreRefusedWith503) {
  serve::HttpServerOptions o;
  o.max_connections = 1;
  Start(o);
  HttpClient first(server_->port());
  ASSERT_EQ(first.Request("GET", "/a").status, 200);
  HttpClient second(server_->port());
  auto r = second.Request("GET", "/b");
  EXPECT_EQ(r.status, 503) << r.error;
  EXPECT_EQ(r.headers["retry-after"], "1");
  first.Close();
  // Once the first connection is gone, new ones are served again.
  for (int i = 0; i < 100; ++i) {
    HttpClient again(server_->port());
    if (again.Request("GET", "/c").status == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "the server did not accept connections again";
}

TEST_F(HttpTest, StopFinishesTheRequestInFlightAndClosesIdleConnections) {
  Start();
  HttpClient idle(server_->port());
  ASSERT_EQ(idle.Request("GET", "/a").status, 200);
  auto started = started_.get_future();
  std::future<HttpResult> slow = std::async(std::launch::async, [this] {
    HttpClient c(server_->port());
    return c.Request("GET", "/slow");
  });
  started.wait();
  server_->Stop();
  HttpResult r = slow.get();
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_FALSE(r.keep_alive);
  runner_.join();  // Run() returned: every worker drained
  // The idle connection was closed and nothing listens any more.
  EXPECT_NE(idle.Request("GET", "/b").status, 200);
  HttpClient late(server_->port());
  EXPECT_NE(late.Request("GET", "/c").status, 200);
}

}  // namespace
}  // namespace engage::testing
