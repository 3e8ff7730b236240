#include "server/thrift_face.h"

#include <memory>
#include <optional>
#include <string>

#include "adapters/thrift/thrift_server.h"

namespace polycrud::server {
namespace {

using thrift_adapter::ThriftProtocol;
using thrift_adapter::ThriftServer;
using thrift_adapter::ThriftServerModel;
using thrift_adapter::ThriftServerOptions;

class ThriftFace final : public ServerFace<ThriftServer, ThriftServerOptions> {
 public:
  std::string_view name() const override { return "thrift"; }

  void AddOptions(CLI::App& app) override {
    app.add_option("--thrift-port", options_.port, "Thrift port (0: any free port)")
        ->envname("POLYCRUD_THRIFT_PORT")
        ->capture_default_str();
    app.add_option("--thrift-workers", options_.workers,
                   "Thrift worker threads (threadpool: also the connection limit; nonblocking)")
        ->envname("POLYCRUD_THRIFT_WORKERS")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--thrift-io-threads", options_.io_threads,
                   "I/O threads (nonblocking model), fiber threads (fibers model)")
        ->envname("POLYCRUD_THRIFT_IO_THREADS")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    app.add_option(
           "--thrift-max-connections", options_.max_connections,
           "Most open Thrift connections (fibers and nonblocking models; more are closed at once)")
        ->envname("POLYCRUD_THRIFT_MAX_CONNECTIONS")
        ->check(CLI::Range(1, 1'000'000))
        ->capture_default_str();
    app.add_option("--thrift-protocol", protocol_, "Wire protocol")
        ->envname("POLYCRUD_THRIFT_PROTOCOL")
        ->check(CLI::IsMember({"binary", "compact"}))
        ->capture_default_str();
    app.add_option("--thrift-server", model_, "Server model")
        ->envname("POLYCRUD_THRIFT_SERVER")
        ->check(CLI::IsMember({"threadpool", "nonblocking", "fibers"}))
        ->capture_default_str();
    app.add_option("--thrift-max-frame-bytes", options_.max_frame_bytes, "Largest accepted frame")
        ->envname("POLYCRUD_THRIFT_MAX_FRAME_BYTES")
        ->check(CLI::Range(1024, 64 * 1024 * 1024))
        ->capture_default_str();
    app.add_option(
           "--idle-timeout-ms", options_.idle_timeout_ms,
           "Close a Thrift connection that sends nothing for this long (threadpool, fibers)")
        ->envname("POLYCRUD_IDLE_TIMEOUT_MS")
        ->check(CLI::Range(100, 3'600'000))
        ->capture_default_str();
    app.add_option("--thrift-request-timeout-ms", options_.request_timeout_ms,
                   "Close a Thrift connection whose request, once its first byte is in, has not "
                   "fully arrived within this time (fibers)")
        ->envname("POLYCRUD_THRIFT_REQUEST_TIMEOUT_MS")
        ->check(CLI::Range(100, 3'600'000))
        ->capture_default_str();
    AddTlsOptions(app);
  }

  void Start(const FaceContext& context) override {
    options_.protocol = protocol_ == "compact" ? ThriftProtocol::kCompact : ThriftProtocol::kBinary;
    options_.model = model_ == "nonblocking" ? ThriftServerModel::kNonblocking
                     : model_ == "fibers"    ? ThriftServerModel::kFibers
                                             : ThriftServerModel::kThreadPool;
    options_.connections = &context.connections;
    options_.status = {.version = context.version,
                       .alive_since_s = context.alive_since_s,
                       .started = context.started,
                       .metrics_text = context.metrics_text};
    StartServer(context, context.service_for_fiber_thread);
  }

  std::string Describe() const override {
    const std::string threads = model_ == "fibers"
                                    ? std::to_string(options_.io_threads) + " fiber threads"
                                    : std::to_string(options_.workers) + " workers";
    return Address() + " (" + model_ + ", " + protocol_ + ", " + threads + TlsNote() + ")";
  }

 private:
  std::string protocol_ = "binary";
  std::string model_ = "fibers";
};

}  // namespace

std::unique_ptr<Face> MakeThriftFace() { return std::make_unique<ThriftFace>(); }

}  // namespace polycrud::server
