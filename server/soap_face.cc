#include "server/soap_face.h"

#include <memory>
#include <optional>
#include <string>

#include "adapters/soap/soap_server.h"

namespace polycrud::server {
namespace {

using soap_adapter::SoapServer;
using soap_adapter::SoapServerOptions;

class SoapFace final : public ServerFace<SoapServer, SoapServerOptions> {
 public:
  std::string_view name() const override { return "soap"; }

  void AddOptions(CLI::App& app) override {
    app.add_option("--soap-port", options_.port, "SOAP port (0: any free port)")
        ->envname("POLYCRUD_SOAP_PORT")
        ->capture_default_str();
    app.add_option("--soap-workers", options_.workers,
                   "SOAP worker threads: requests handled at once (a request is read whole "
                   "before it takes one)")
        ->envname("POLYCRUD_SOAP_WORKERS")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--soap-max-request-bytes", options_.max_request_bytes,
                   "Largest accepted SOAP request")
        ->envname("POLYCRUD_SOAP_MAX_REQUEST_BYTES")
        ->check(CLI::Range(1024, 64 * 1024 * 1024))
        ->capture_default_str();
    app.add_option("--soap-timeout-ms", options_.timeout_ms,
                   "Close a SOAP connection that sends no request for this long, or is as slow "
                   "to send the rest of one or to take an answer")
        ->envname("POLYCRUD_SOAP_TIMEOUT_MS")
        ->check(CLI::Range(100, 3'600'000))
        ->capture_default_str();
    app.add_option("--soap-max-keep-alive-requests", options_.max_keep_alive_requests,
                   "Requests served on one SOAP connection before it is closed (the client "
                   "reconnects; 0: no limit)")
        ->envname("POLYCRUD_SOAP_MAX_KEEP_ALIVE_REQUESTS")
        ->check(CLI::Range(0, 1'000'000'000))
        ->capture_default_str();
    AddTlsOptions(app);
  }

  void Start(const FaceContext& context) override {
    options_.connections = &context.connections;
    StartServer(context);
  }

  std::string Describe() const override {
    return Address() + " (POST /soap, GET /soap?wsdl, " + std::to_string(options_.workers) +
           " workers" + TlsNote() + ")";
  }
};

}  // namespace

std::unique_ptr<Face> MakeSoapFace() { return std::make_unique<SoapFace>(); }

}  // namespace polycrud::server
