// The gRPC face of polycrud-server: its flags and the GrpcServer it runs.
#include "server/grpc_face.h"

#include <memory>
#include <optional>
#include <string>

#include "adapters/grpc/grpc_server.h"

namespace polycrud::server {
namespace {

using grpc_adapter::GrpcServer;
using grpc_adapter::GrpcServerOptions;

class GrpcFace final : public ServerFace<GrpcServer, GrpcServerOptions> {
 public:
  std::string_view name() const override { return "grpc"; }

  void AddOptions(CLI::App& app) override {
    app.add_option("--grpc-port", options_.port, "gRPC port (0: any free port)")
        ->envname("POLYCRUD_GRPC_PORT")
        ->capture_default_str();
    app.add_option("--grpc-workers", options_.workers,
                   "Threads running gRPC calls that reach MySQL or Redis")
        ->envname("POLYCRUD_GRPC_WORKERS")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--grpc-max-queued-calls", options_.max_queued_calls,
                   "gRPC calls waiting for a worker beyond which RESOURCE_EXHAUSTED is answered")
        ->envname("POLYCRUD_GRPC_MAX_QUEUED_CALLS")
        ->check(CLI::Range(1, 10'000'000))
        ->capture_default_str();
    app.add_option("--grpc-max-receive-bytes", options_.max_receive_bytes,
                   "Largest accepted gRPC request message")
        ->envname("POLYCRUD_GRPC_MAX_RECEIVE_BYTES")
        ->check(CLI::Range(1024, 64 * 1024 * 1024))
        ->capture_default_str();
    app.add_option("--grpc-shutdown-grace-ms", options_.shutdown_grace_ms,
                   "On shutdown, how long running gRPC calls may take before they are cancelled")
        ->envname("POLYCRUD_GRPC_SHUTDOWN_GRACE_MS")
        ->check(CLI::Range(0, 600'000))
        ->capture_default_str();
    app.add_option("--grpc-max-connection-idle-ms", options_.max_connection_idle_ms,
                   "Close a gRPC connection that has had no call for this long (GOAWAY)")
        ->envname("POLYCRUD_GRPC_MAX_CONNECTION_IDLE_MS")
        ->check(CLI::Range(100, 86'400'000))
        ->capture_default_str();
    app.add_option("--grpc-max-connection-age-ms", options_.max_connection_age_ms,
                   "Close a gRPC connection this old (GOAWAY; its calls get "
                   "--grpc-max-connection-age-grace-ms to finish; clients reconnect)")
        ->envname("POLYCRUD_GRPC_MAX_CONNECTION_AGE_MS")
        ->check(CLI::Range(1000, 86'400'000))
        ->capture_default_str();
    app.add_option("--grpc-max-connection-age-grace-ms", options_.max_connection_age_grace_ms)
        ->envname("POLYCRUD_GRPC_MAX_CONNECTION_AGE_GRACE_MS")
        ->check(CLI::Range(0, 3'600'000))
        ->capture_default_str();
    AddTlsOptions(app);
  }

  void Start(const FaceContext& context) override { StartServer(context); }

  std::string Describe() const override {
    return Address() + " (callback API, " + std::to_string(options_.workers) +
           " workers, health, reflection" + TlsNote() + ")";
  }
};

}  // namespace

std::unique_ptr<Face> MakeGrpcFace() { return std::make_unique<GrpcFace>(); }

}  // namespace polycrud::server
