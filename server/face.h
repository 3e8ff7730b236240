// Face: one protocol front end hosted by polycrud-server (Thrift, gRPC, SOAP,
// REST). main.cc builds every face listed in faces.cc, lets each add its
// flags, and starts those chosen with --protocols. A face only translates
// between its wire format and UserService; it never touches MySQL or Redis.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/metrics.h"
#include "core/user_service.h"
#include "runtime/connection_budget.h"
#include "transport/tls/tls.h"

namespace polycrud::server {

// What every face gets when it starts. All references outlive the face.
struct FaceContext {
  UserService& service;
  Metrics& metrics;
  std::string bind_address;
  // The service of each fiber thread of the fiber Thrift model (Services).
  std::function<UserService&(int thread)> service_for_fiber_thread;
  // The Prometheus text of the whole process (served by the REST face, and
  // as counters by the Thrift face's status service).
  std::function<std::string()> metrics_text;
  // The server's version, when the process started (seconds since the Unix
  // epoch), and whether every face chosen listens yet (the status service).
  std::string version;
  std::int64_t alive_since_s = 0;
  std::function<bool()> started;
  // The client connections the faces may hold together (the Thrift fibers
  // model and REST count against it).
  runtime::ConnectionBudget& connections;
  // --tls-cert, --tls-key, --tls-client-ca: every face's TLS files unless
  // the face sets its own (--<face>-tls-cert, ...).
  tls::TlsFiles tls;
};

class Face {
 public:
  virtual ~Face() = default;
  // Lower-case protocol name as used by --protocols ("thrift", "grpc", ...).
  virtual std::string_view name() const = 0;
  // Adds this face's flags (port, threads, limits), each with an env variable.
  virtual void AddOptions(CLI::App& app) = 0;
  // Starts serving; returns once listening. Throws std::exception on failure.
  virtual void Start(const FaceContext& context) = 0;
  // Stops accepting and lets running calls finish. Idempotent.
  virtual void Stop() = 0;
  // One line for the start-up log, e.g. "127.0.0.1:9090 (threadpool, binary)".
  virtual std::string Describe() const = 0;
};

// The TLS flags of one face (`face`: "thrift", ...), into `files`.
void AddFaceTlsOptions(CLI::App& app, std::string_view face, tls::TlsFiles& files);
// A face's TLS files: each of its own that is set, else the common one.
tls::TlsFiles ChooseTls(const tls::TlsFiles& own, const tls::TlsFiles& common);

// The common part of a face that runs one server object: Server is built
// from (service, metrics, extra..., Options), has Start(), Stop() and port();
// Options has bind_address and port.
template <typename Server, typename Options>
class ServerFace : public Face {
 public:
  void Stop() override {
    if (server_) server_->Stop();
  }

 protected:
  // Adds --<face>-tls-cert, --<face>-tls-key and --<face>-tls-client-ca.
  void AddTlsOptions(CLI::App& app) { AddFaceTlsOptions(app, name(), own_tls_); }
  // Builds the server on the context's bind address and starts it.
  template <typename... Extra>
  void StartServer(const FaceContext& context, Extra&&... extra) {
    options_.bind_address = context.bind_address;
    options_.tls = ChooseTls(own_tls_, context.tls);
    server_.emplace(context.service, context.metrics, std::forward<Extra>(extra)..., options_);
    server_->Start();
  }
  // "address:port" of the running server (the configured port before Start).
  std::string Address() const {
    return options_.bind_address + ":" + std::to_string(server_ ? server_->port() : options_.port);
  }

  // " TLS" or " mutual TLS" for Describe(), after StartServer.
  std::string TlsNote() const {
    if (!options_.tls.enabled()) return "";
    return options_.tls.ca.empty() ? ", TLS" : ", mutual TLS";
  }

  Options options_;
  std::optional<Server> server_;
  tls::TlsFiles own_tls_;
};

using FaceList = std::vector<std::unique_ptr<Face>>;

// Every face this binary can host, in start order.
FaceList MakeFaces();

}  // namespace polycrud::server
