// GrpcServer: see grpc_server.h.
#include "adapters/grpc/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>
#include <utility>

#include "adapters/grpc/grpc_user_service.h"
#include "runtime/worker_pool.h"

namespace polycrud::grpc_adapter {
namespace {

constexpr char kServiceName[] = "polycrud.v1.UserService";

// How often the gRPC face's TLS credentials look at their files again.
constexpr unsigned kCertificateRefreshS = 5;

// TLS when `files` has a certificate, with a required, verified client
// certificate when it has a CA. The files are loaded and checked now (a bad
// path or a key that does not match fails the start), and then watched by
// gRPC's own certificate provider: a replaced certificate, key or CA is in
// use within kCertificateRefreshS seconds, for new connections; open ones
// keep theirs. (gRPC has no call to reload at a given moment, so the face
// does not wait for SIGHUP.)
std::shared_ptr<grpc::ServerCredentials> Credentials(const tls::TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  if (files.cert.empty() || files.key.empty()) {
    throw std::runtime_error("TLS: a server needs both a certificate and a key");
  }
  tls::MakeServerContext(files);  // the same checks as the other faces'
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, kCertificateRefreshS);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (files.ca.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

GrpcServer::GrpcServer(UserService& service, Metrics& metrics, GrpcServerOptions options)
    : service_(service), metrics_(metrics), options_(std::move(options)) {}

GrpcServer::~GrpcServer() { Stop(); }

void GrpcServer::Start() {
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock
  // detector on: every lock gRPC takes then also updates a global lock graph
  // (about 5% of the server's CPU per call). gRPC's own builds run without
  // it; so do we. Process-wide and harmless to repeat.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Both are process-wide switches read by ServerBuilder; they must be set
  // before BuildAndStart.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  workers_ = std::make_unique<runtime::WorkerPool>(options_.workers, options_.max_queued_calls);
  handler_ = std::make_unique<GrpcUserService>(service_, metrics_, *workers_);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.bind_address + ":" + std::to_string(options_.port),
                           Credentials(options_.tls), &bound_port_);
  builder.SetMaxReceiveMessageSize(options_.max_receive_bytes);
  // gRPC sets SO_REUSEPORT by default, so a second server on the same port
  // would start and silently share its traffic; a taken port must fail.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, options_.max_connection_idle_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, options_.max_connection_age_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             options_.max_connection_age_grace_ms);
  builder.RegisterService(handler_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port_ == 0) {
    server_.reset();
    workers_->Stop();
    stopped_ = true;
    throw std::runtime_error("cannot listen on " + options_.bind_address + ":" +
                             std::to_string(options_.port));
  }
  server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  health_thread_ = std::thread([this] { HealthLoop(); });
}

void GrpcServer::Stop() {
  if (stopped_ || server_ == nullptr) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    stop_health_ = true;
  }
  health_cv_.notify_all();
  // Load balancers watching the health service stop sending traffic first.
  server_->GetHealthCheckService()->Shutdown();
  // Running calls finish first (their reactors finish on the workers,
  // which are still up; new calls meet a core that is shutting down). Then
  // Shutdown with an expired deadline closes the connections at once rather
  // than waiting for idle clients to hang up, and cancels any call still
  // running after the grace period.
  const auto grace_end =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.shutdown_grace_ms);
  while (handler_->in_flight() > 0 && std::chrono::steady_clock::now() < grace_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (handler_->in_flight() > 0) {
    spdlog::warn("grpc: cancelling {} calls still running after the grace period",
                 handler_->in_flight());
  }
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  // Joined only now: a probe may be stuck on an unreachable backend, and
  // its late status change is ignored after the health service's Shutdown.
  if (health_thread_.joinable()) health_thread_.join();
  workers_->Stop();
}

void GrpcServer::HealthLoop() {
  bool serving = true;
  std::unique_lock<std::mutex> lock(health_mu_);
  while (!health_cv_.wait_for(lock, std::chrono::milliseconds(options_.health_interval_ms),
                              [this] { return stop_health_; })) {
    lock.unlock();
    // Reads still work with either dependency up (cache hits or the store),
    // so only both down means not serving; so does a server draining
    // before it stops.
    const bool now_serving =
        !service_.draining() && (service_.StoreReachable() || service_.CacheReachable());
    if (now_serving != serving) {
      serving = now_serving;
      server_->GetHealthCheckService()->SetServingStatus(serving);
      if (serving) {
        spdlog::info("grpc health: SERVING (a backend is reachable again)");
      } else {
        spdlog::warn("grpc health: NOT_SERVING ({})", service_.draining()
                                                          ? "draining before the server stops"
                                                          : "MySQL and Redis both unreachable");
      }
    }
    lock.lock();
  }
}

}  // namespace polycrud::grpc_adapter
