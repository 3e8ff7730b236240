#include "server/rest_face.h"

#include <memory>
#include <optional>
#include <string>

#include "adapters/rest/rest_server.h"

namespace polycrud::server {
namespace {

using rest_adapter::RestServer;
using rest_adapter::RestServerOptions;

class RestFace final : public ServerFace<RestServer, RestServerOptions> {
 public:
  std::string_view name() const override { return "rest"; }

  void AddOptions(CLI::App& app) override {
    app.add_option("--rest-port", options_.port, "REST port (0: any free port)")
        ->envname("POLYCRUD_REST_PORT")
        ->capture_default_str();
    app.add_option("--rest-threads", options_.threads, "REST I/O threads (handlers run on them)")
        ->envname("POLYCRUD_REST_THREADS")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--rest-max-body-bytes", options_.max_body_bytes,
                   "Largest accepted REST request body (larger: 413)")
        ->envname("POLYCRUD_REST_MAX_BODY_BYTES")
        ->check(CLI::Range(std::size_t{1024}, std::size_t{64} * 1024 * 1024))
        ->capture_default_str();
    app.add_option("--rest-max-header-bytes", options_.max_header_bytes,
                   "Largest accepted REST request header block (larger: 431)")
        ->envname("POLYCRUD_REST_MAX_HEADER_BYTES")
        ->check(CLI::Range(1024u, 1024u * 1024u))
        ->capture_default_str();
    app.add_option("--rest-idle-timeout-ms", options_.idle_timeout_ms,
                   "Close a REST connection that sends no complete request header for this long")
        ->envname("POLYCRUD_REST_IDLE_TIMEOUT_MS")
        ->check(CLI::Range(100, 3'600'000))
        ->capture_default_str();
    app.add_option("--rest-io-timeout-ms", options_.io_timeout_ms,
                   "Close a REST connection too slow to send a body or take a response")
        ->envname("POLYCRUD_REST_IO_TIMEOUT_MS")
        ->check(CLI::Range(100, 3'600'000))
        ->capture_default_str();
    AddTlsOptions(app);
  }

  void Start(const FaceContext& context) override {
    options_.connections = &context.connections;
    StartServer(context, context.metrics_text);
  }

  std::string Describe() const override {
    return Address() + " (beast, " + std::to_string(options_.threads) +
           " threads, body <= " + std::to_string(options_.max_body_bytes) + " bytes" + TlsNote() +
           ")";
  }
};

}  // namespace

std::unique_ptr<Face> MakeRestFace() { return std::make_unique<RestFace>(); }

}  // namespace polycrud::server
