#include "adapters/thrift/thrift_server.h"

#include <spdlog/spdlog.h>
#include <thrift/TConfiguration.h>
#include <thrift/TOutput.h>
#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/concurrency/ThreadManager.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/server/TNonblockingServer.h>
#include <thrift/server/TThreadPoolServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TNonblockingServerSocket.h>
#include <thrift/transport/TSSLServerSocket.h>
#include <thrift/transport/TSSLSocket.h>
#include <thrift/transport/TServerSocket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/thrift/fiber_thrift_server.h"
#include "adapters/thrift/thrift_processor.h"
#include "adapters/thrift/thrift_status_handler.h"
#include "adapters/thrift/thrift_user_handler.h"
#include "runtime/connection_budget.h"
#include "transport/thrift/framed_transport.h"

namespace polycrud::thrift_adapter {
namespace {

using thrift_transport::PerFrameFramedTransportFactory;

using ::apache::thrift::TConfiguration;
using ::apache::thrift::concurrency::ThreadFactory;
using ::apache::thrift::concurrency::ThreadManager;
using ::apache::thrift::protocol::TBinaryProtocolFactory;
using ::apache::thrift::protocol::TCompactProtocolFactory;
using ::apache::thrift::protocol::TProtocolFactory;
using ::apache::thrift::server::TNonblockingServer;
using ::apache::thrift::server::TServerEventHandler;
using ::apache::thrift::server::TThreadPoolServer;
using ::apache::thrift::transport::SSLProtocol;
using ::apache::thrift::transport::TNonblockingServerSocket;
using ::apache::thrift::transport::TServerSocket;
using ::apache::thrift::transport::TSSLServerSocket;
using ::apache::thrift::transport::TSSLSocketFactory;

// Signals Start() once the server socket listens.
class ListeningSignal final : public TServerEventHandler {
 public:
  void preServe() override { listening_.set_value(); }
  std::future<void> future() { return listening_.get_future(); }

 private:
  std::promise<void> listening_;
};

// How many of TNonblockingServer's IO threads of this process have said
// "IO thread #N registered for notify." (see ThriftServer::Start).
std::atomic<int> g_io_threads_registered{0};

// Thrift's own diagnostics (accept errors, server model notices) go to the
// server log instead of bare stderr.
void LogThriftOutput(const char* message) {
  if (std::strstr(message, "registered for notify") != nullptr) {
    g_io_threads_registered.fetch_add(1, std::memory_order_acq_rel);
  }
  spdlog::info("thrift: {}", message);
}

}  // namespace

std::shared_ptr<TProtocolFactory> MakeProtocolFactory(const ThriftServerOptions& options) {
  if (options.protocol == ThriftProtocol::kCompact) {
    return std::make_shared<TCompactProtocolFactory>(options.max_string_bytes,
                                                     options.max_container_items);
  }
  return std::make_shared<TBinaryProtocolFactory>(options.max_string_bytes,
                                                  options.max_container_items,
                                                  /*strict_read=*/false, /*strict_write=*/true);
}

std::shared_ptr<TConfiguration> MakeTransportConfig(const ThriftServerOptions& options) {
  // A copy: the constant has no out-of-line definition to bind a reference to.
  const int max_message_bytes = TConfiguration::DEFAULT_MAX_MESSAGE_SIZE;
  return std::make_shared<TConfiguration>(max_message_bytes, options.max_frame_bytes);
}

ThriftServer::ThriftServer(UserService& service, Metrics& metrics, ThriftServerOptions options)
    : ThriftServer(service, metrics, ServiceForThread{}, std::move(options)) {}

ThriftServer::ThriftServer(UserService& service, Metrics& metrics, ServiceForThread fiber_services,
                           ThriftServerOptions options)
    : service_(service),
      metrics_(metrics),
      fiber_services_(std::move(fiber_services)),
      options_(std::move(options)) {}

ThriftServer::~ThriftServer() { Stop(); }

void ThriftServer::Start() {
  ::apache::thrift::GlobalOutput.setOutputFunction(&LogThriftOutput);
  // UserService and, for multiplexed clients, the status service.
  const auto make_processor = [this](UserService& service) {
    return std::make_shared<ThriftProcessor>(
        std::make_shared<ThriftUserHandler>(service, metrics_),
        std::make_shared<ThriftStatusHandler>(service, options_.status));
  };
  auto processor = make_processor(service_);
  auto protocol = MakeProtocolFactory(options_);
  // Frames up to max_frame_bytes (the fiber and threadpool models' transports).
  auto config = MakeTransportConfig(options_);
  if (options_.tls.enabled() && options_.model == ThriftServerModel::kNonblocking) {
    throw std::invalid_argument(
        "TLS is served by the fibers and threadpool models, not nonblocking");
  }
  if (options_.model == ThriftServerModel::kFibers) {
    if (options_.tls.enabled()) tls_context_ = tls::MakeServerContext(options_.tls);
    std::vector<std::shared_ptr<apache::thrift::TProcessor>> processors;
    for (int i = 0; i < options_.io_threads; ++i) {
      UserService& service = fiber_services_ ? fiber_services_(i) : service_;
      processors.push_back(make_processor(service));
    }
    fiber_server_ = std::make_unique<FiberThriftServer>(
        std::move(processors), protocol, config,
        FiberServerOptions{
            .bind_address = options_.bind_address,
            .port = options_.port,
            .threads = options_.io_threads,
            .max_connections = options_.max_connections,
            .idle_timeout = std::chrono::milliseconds(options_.idle_timeout_ms),
            .request_timeout = std::chrono::milliseconds(options_.request_timeout_ms),
            .send_timeout = std::chrono::milliseconds(options_.send_timeout_ms),
            .connections = options_.connections,
            .tls = tls_context_.get()});
    fiber_server_->Start();
    bound_port_ = fiber_server_->port();
    return;
  }
  auto thread_manager =
      ThreadManager::newSimpleThreadManager(static_cast<size_t>(options_.workers));
  thread_manager->threadFactory(std::make_shared<ThreadFactory>());
  thread_manager->start();
  thread_manager_ = thread_manager;
  auto listening = std::make_shared<ListeningSignal>();
  std::future<void> listening_future = listening->future();

  std::function<int()> bound_port;
  if (options_.model == ThriftServerModel::kNonblocking) {
    auto socket = std::make_shared<TNonblockingServerSocket>(options_.bind_address, options_.port);
    auto server = std::make_shared<TNonblockingServer>(processor, protocol, socket, thread_manager);
    server->setNumIOThreads(static_cast<size_t>(options_.io_threads));
    // It reads each frame itself into a TMemoryBuffer whose readEnd() restores
    // the read budget after every call, so it needs no PerFrameFramedTransport.
    server->setMaxFrameSize(static_cast<size_t>(options_.max_frame_bytes));
    // Connections beyond max_connections (and beyond the process's budget,
    // which this model cannot take slots of) are closed as they are
    // accepted; new ones are taken again below 80% of it.
    std::size_t cap = static_cast<std::size_t>(options_.max_connections);
    if (options_.connections != nullptr) {
      cap = std::min(cap, static_cast<std::size_t>(options_.connections->limit()));
    }
    // Thrift refuses a connection once more than its maximum are open: a
    // maximum of cap - 1 lets cap in.
    server->setMaxConnections(cap > 0 ? cap - 1 : 0);
    server->setOverloadAction(apache::thrift::server::T_OVERLOAD_CLOSE_ON_ACCEPT);
    server_ = server;
    bound_port = [socket] { return socket->getPort(); };
  } else {
    std::shared_ptr<TServerSocket> socket;
    if (options_.tls.enabled()) {
      auto factory = std::make_shared<TSSLSocketFactory>(SSLProtocol::TLSv1_2);
      factory->server(true);
      factory->loadCertificate(options_.tls.cert.c_str());
      factory->loadPrivateKey(options_.tls.key.c_str());
      if (!options_.tls.ca.empty()) {
        // Verified against the CA, and required (no access manager: any
        // certificate the CA signed is let in).
        factory->loadTrustedCertificates(options_.tls.ca.c_str());
        factory->authenticate(true);
      }
      socket = std::make_shared<TSSLServerSocket>(options_.bind_address, options_.port, factory);
    } else {
      socket = std::make_shared<TServerSocket>(options_.bind_address, options_.port);
    }
    socket->setRecvTimeout(options_.idle_timeout_ms);
    socket->setSendTimeout(options_.send_timeout_ms);
    // Each connection's input side never flushes, so only a per-frame budget
    // keeps it open past max_message_bytes read in total (framed_transport.h).
    // A whole request must come within the request timeout of its first byte
    // (RequestDeadlineSocket), as in the fibers model.
    auto transport = std::make_shared<PerFrameFramedTransportFactory>(
        config, std::chrono::milliseconds(options_.idle_timeout_ms),
        std::chrono::milliseconds(options_.request_timeout_ms));
    server_ =
        std::make_shared<TThreadPoolServer>(processor, socket, transport, protocol, thread_manager);
    bound_port = [socket] { return socket->getPort(); };
  }
  server_->setServerEventHandler(listening);

  const int registered_before = g_io_threads_registered.load(std::memory_order_acquire);
  std::promise<void> failed;
  std::future<void> failed_future = failed.get_future();
  serve_thread_ = std::thread([this, failed = std::move(failed)]() mutable {
    try {
      server_->serve();
    } catch (...) {
      failed.set_exception(std::current_exception());
      return;
    }
    failed.set_value();
  });
  // Either the server listens, or serve() failed (e.g. the port is taken).
  while (listening_future.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    if (failed_future.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) {
      serve_thread_.join();
      stopped_ = true;
      failed_future.get();  // rethrows
      throw std::runtime_error("thrift server stopped before listening");
    }
  }
  if (options_.model == ThriftServerModel::kNonblocking) {
    // TNonblockingServer says preServe before its IO threads have made the
    // pipes through which the accepting thread hands them connections: one
    // handed over before is closed ("notifyIOThread failed on fresh
    // connection"). Each thread says when its pipe is there; the server is
    // started once all have (bounded: a thread that never says so only
    // brings back the race).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (g_io_threads_registered.load(std::memory_order_acquire) - registered_before <
               std::max(1, options_.io_threads) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  bound_port_ = bound_port();
}

void ThriftServer::Stop() {
  if (fiber_server_ != nullptr) {
    fiber_server_->Stop();
    return;
  }
  if (stopped_ || server_ == nullptr) return;
  stopped_ = true;
  server_->stop();
  if (serve_thread_.joinable()) serve_thread_.join();
  // Calls handed to workers (nonblocking model) finish before we return.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (thread_manager_->totalTaskCount() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  thread_manager_->stop();
}

}  // namespace polycrud::thrift_adapter
