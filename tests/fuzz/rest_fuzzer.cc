// Fuzz target: bytes as an HTTP/1.1 request to the REST face, parsed with
// the server's bounds (Boost.Beast, 16 KiB of headers, 1 MiB of body) and,
// when that parses, dispatched to the real routes (users and operational
// pages) over the real core: paths, query strings, headers (tokens,
// If-Match, X-Request-Id) and JSON bodies. The server answers 500 to a route
// that throws; here that is a finding, since bad input must get a 4xx.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "adapters/rest/rest_ops_pages.h"
#include "adapters/rest/rest_router.h"
#include "adapters/rest/rest_user_routes.h"
#include "tests/fuzz/fuzz_service.h"

namespace {

namespace http = boost::beast::http;

struct State {
  State() {
    routes.Register(router);
    pages.Register(router);
  }
  polycrud::fuzz::FuzzService core;
  polycrud::rest_adapter::RestRouter router;
  polycrud::rest_adapter::RestUserRoutes routes{core.service, core.metrics};
  polycrud::rest_adapter::RestOpsPages pages{core.service, [] { return "# metrics\n"; }};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  polycrud::rest_adapter::RestRouter& router = polycrud::fuzz::Fresh<State>().router;
  std::size_t used = 0;
  // Pipelined requests, as on one keep-alive connection (at most 8).
  for (int request = 0; request < 8 && used < size; ++request) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(1024 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    while (!parser.is_done() && used < size) {
      const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
      used += n;
      if (ec || n == 0) break;
    }
    if (!parser.is_done()) {
      if (ec != http::error::need_more && ec) return 0;  // the server answers 4xx and closes
      parser.put_eof(ec);
      if (ec || !parser.is_done()) return 0;
    }
    const polycrud::rest_adapter::HttpResponse response = router.Dispatch(parser.get());
    if (response.result_int() >= 500 && response.result_int() != 503) __builtin_trap();
  }
  return 0;
}
