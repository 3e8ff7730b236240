#include "adapters/soap/soap_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "adapters/soap/soap_user_service.h"
#include "soapH.h"

namespace polycrud::soap_adapter {
namespace {

constexpr int kAcceptPollUs = 100'000;  // how soon the accept loop notices Stop()

// gSOAP timeouts: positive values are seconds, negative ones microseconds.
// Whole seconds are preferred because the value also shows in the
// Keep-Alive response header.
int GsoapTimeout(int ms) { return ms % 1000 == 0 ? ms / 1000 : -ms * 1000; }

// HTTP GET handler: the WSDL at /soap?wsdl, 404 for anything else.
int ServeGet(struct soap* soap) {
  const std::string_view path = soap->path;
  if (path != "/soap?wsdl" && path != "/soap?WSDL") return 404;
  const std::string_view wsdl = WsdlText();
  soap->http_content = "text/xml; charset=utf-8";
  soap->length = wsdl.size();
  if (soap_response(soap, SOAP_FILE) != SOAP_OK ||
      soap_send_raw(soap, wsdl.data(), wsdl.size()) != SOAP_OK || soap_end_send(soap) != SOAP_OK) {
    return soap_closesock(soap);
  }
  return SOAP_OK;
}

int BoundPort(SOAP_SOCKET socket) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(socket, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

}  // namespace

SoapServer::SoapServer(UserService& service, Metrics& metrics, SoapServerOptions options)
    : service_(service), metrics_(metrics), options_(std::move(options)) {}

SoapServer::~SoapServer() {
  Stop();
  if (master_ != nullptr) {
    soap_destroy(master_);
    soap_end(master_);
    soap_free(master_);
  }
}

void SoapServer::Start() {
  // UTF-8 strings travel unchanged; connections stay open between requests,
  // for up to max_keep_alive_requests of them. gSOAP serves max_keep_alive
  // + 1 requests on a connection (0: no limit), so a limit of one is no
  // keep-alive at all.
  const int keep_alive_requests = options_.max_keep_alive_requests;
  master_ = soap_new1((keep_alive_requests == 1 ? 0 : SOAP_IO_KEEPALIVE) | SOAP_C_UTFSTRING);
  soap_set_namespaces(master_, namespaces);
  master_->bind_flags = SO_REUSEADDR;
  master_->socket_flags = MSG_NOSIGNAL;  // a vanished client must not SIGPIPE us
  master_->accept_timeout = -kAcceptPollUs;
  master_->recv_timeout = GsoapTimeout(options_.timeout_ms);
  master_->send_timeout = GsoapTimeout(options_.timeout_ms);
  master_->transfer_timeout = GsoapTimeout(2 * options_.timeout_ms);
  master_->recv_maxlength = options_.max_request_bytes;
  master_->max_keep_alive = keep_alive_requests > 1 ? keep_alive_requests - 1 : 0;
  master_->fget = &ServeGet;
  if (!soap_valid_socket(
          soap_bind(master_, options_.bind_address.c_str(), options_.port, options_.backlog))) {
    char message[256];
    soap_sprint_fault(master_, message, sizeof(message));
    throw std::runtime_error("cannot bind SOAP port " + options_.bind_address + ":" +
                             std::to_string(options_.port) + ": " + message);
  }
  bound_port_ = BoundPort(master_->master);
  const auto workers = static_cast<std::size_t>(options_.workers);
  workers_ = std::make_unique<runtime::WorkerPool>(options_.workers, workers);
  slots_ = std::make_unique<std::counting_semaphore<>>(static_cast<std::ptrdiff_t>(2 * workers));
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

void SoapServer::AcceptLoop() {
  while (!stopping_.load()) {
    // Bounded hand-off: while every worker is busy and as many connections
    // wait, stop accepting (the kernel backlog holds further clients).
    if (!slots_->try_acquire_for(std::chrono::milliseconds(100))) continue;
    if (!soap_valid_socket(soap_accept(master_))) {
      slots_->release();
      // errnum 0 is the poll timeout; anything else (e.g. EMFILE) is logged
      // and retried after a pause instead of spinning.
      if (master_->errnum != 0 && !stopping_.load()) {
        spdlog::warn("soap: accept failed: {}", std::strerror(master_->errnum));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    struct soap* connection = soap_copy(master_);
    master_->socket = SOAP_INVALID_SOCKET;  // now owned by the copy
    if (connection == nullptr) {
      slots_->release();
      spdlog::error("soap: out of memory for a connection");
      continue;
    }
    // The slot taken above guarantees room (workers running + waiting);
    // Submit refuses only once the pool stops.
    if (!workers_->Submit([this, connection] {
          ServeConnection(connection);
          slots_->release();
        })) {
      soap_force_closesock(connection);
      soap_free(connection);
      slots_->release();
    }
  }
}

void SoapServer::ServeConnection(struct soap* connection) {
  const int socket = connection->socket;
  bool serve = false;
  {
    std::lock_guard lock(mu_);
    // A connection still waiting when Stop() began is closed unserved.
    serve = !stopping_.load();
    if (serve) active_sockets_.insert(socket);
  }
  if (serve) Serve(connection);
  {
    std::lock_guard lock(mu_);
    active_sockets_.erase(socket);
  }
  soap_force_closesock(connection);
  soap_free(connection);
}

void SoapServer::Serve(struct soap* connection) {
  SoapUserService service(connection, service_, metrics_);
  for (;;) {
    const int error = service.serve();
    soap_destroy(connection);
    soap_end(connection);
    // serve() returns after sending any fault. gSOAP usually closes the
    // connection then; where it kept it open, go on serving it.
    if (error != SOAP_FAULT || connection->keep_alive == 0 ||
        !soap_valid_socket(connection->socket) || stopping_.load()) {
      break;
    }
  }
}

void SoapServer::Stop() {
  if (stopped_ || master_ == nullptr) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_.store(true);
    // Idle keep-alive connections wake up with end-of-file; a request being
    // handled still sends its response.
    for (const int socket : active_sockets_) shutdown(socket, SHUT_RD);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  // Runs the connections still waiting (each is closed unserved), then joins.
  workers_->Stop();
  soap_closesock(master_);
  if (soap_valid_socket(master_->master)) {
    close(master_->master);
    master_->master = SOAP_INVALID_SOCKET;
  }
}

}  // namespace polycrud::soap_adapter
