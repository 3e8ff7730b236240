// CaptureProxy: a one-connection TCP forwarder that records what crosses it.
// It connects to the real server first, listens on 127.0.0.1 (port 0), and a
// thread of its own accepts exactly one connection and copies bytes both
// ways with poll(), keeping every chunk it read with its direction. All of it
// is bounded: kMaxBytesPerDirection recorded per direction (forwarding stops
// past it), a deadline for the whole capture, and a bounded number of rounds.
// Plain TCP only: a TLS session would be recorded as ciphertext.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

namespace polycrud::wire {

enum class Direction { kRequest, kResponse };  // client to server, server to client

struct Chunk {
  Direction direction;
  std::string bytes;
};

struct Capture {
  std::vector<Chunk> chunks;  // in the order they were read
  bool accepted = false;      // the client connected
  bool truncated = false;     // a direction passed kMaxBytesPerDirection
  std::string error;          // why forwarding ended early, if it did

  // The bytes of one direction, in order.
  std::string Bytes(Direction direction) const;
};

class CaptureProxy {
 public:
  static constexpr std::size_t kMaxBytesPerDirection = std::size_t{1} << 20;

  // Connects to host:port within `timeout` (throws std::runtime_error saying
  // why it cannot), listens on 127.0.0.1 and starts forwarding, which ends at
  // Stop(), when both sides have closed, or after `timeout` from now.
  CaptureProxy(const std::string& host, int port, std::chrono::milliseconds timeout);
  ~CaptureProxy();
  CaptureProxy(const CaptureProxy&) = delete;
  CaptureProxy& operator=(const CaptureProxy&) = delete;

  // The port the client connects to.
  int port() const { return port_; }

  // Ends forwarding, joins the thread, closes every socket and returns what
  // was recorded. Call once; the destructor stops a proxy not yet stopped.
  Capture Stop();

 private:
  void Run();
  void Forward(int client);

  int upstream_ = -1;
  int listener_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  int port_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  Capture capture_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace polycrud::wire
