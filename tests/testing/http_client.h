// A blocking HTTP/1.1 client for tests: one keep-alive connection to a server on loopback.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <string>

namespace engage::testing {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  bool keep_alive = false;
  std::string error;  // transport error, if any
};

// Status, body, keep-alive and lower-cased headers of a parsed response.
inline HttpResult ToResult(
    const boost::beast::http::response<boost::beast::http::string_body>& res) {
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  out.keep_alive = res.keep_alive();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  return out;
}

class HttpClient {
 public:
  explicit HttpClient(int port) : port_(port) {}

  HttpResult Request(const std::string& method, const std::string& target,
                     const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    HttpResult out;
    boost::beast::error_code ec = Connect();
    if (ec) {
      out.error = ec.message();
      return out;
    }
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() && !headers.count("Content-Type")) {
      req.set(http::field::content_type, "application/json");
    }
    req.prepare_payload();
    http::write(stream_, req, ec);
    if (!ec) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      http::read(stream_, buffer_, parser, ec);
      if (!ec) {
        out = ToResult(parser.get());
      }
    }
    if (ec) out.error = ec.message();
    if (ec || !out.keep_alive) Close();
    return out;
  }

  // Sends raw bytes and reads one response (for malformed requests).
  HttpResult Raw(const std::string& bytes) {
    namespace http = boost::beast::http;
    HttpResult out;
    boost::beast::error_code ec = Connect();
    if (!ec) boost::asio::write(stream_.socket(), boost::asio::buffer(bytes), ec);
    if (!ec) {
      http::response<http::string_body> res;
      http::read(stream_, buffer_, res, ec);
      if (!ec) {
        out.status = static_cast<int>(res.result_int());
        out.body = res.body();
      }
    }
    if (ec) out.error = ec.message();
    Close();
    return out;
  }

  void Close() {
    boost::beast::error_code ec;
    stream_.socket().close(ec);
    buffer_.clear();
  }

 private:
  // Opens the connection unless it is open.
  boost::beast::error_code Connect() {
    boost::beast::error_code ec;
    if (!stream_.socket().is_open()) {
      stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                     static_cast<uint16_t>(port_)),
                      ec);
    }
    return ec;
  }

  int port_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_{ioc_};
  boost::beast::flat_buffer buffer_;
};

}  // namespace engage::testing
