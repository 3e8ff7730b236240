#include "benchmarks/load/socket_bytes.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace polycrud::bench {
namespace {

// A loopback TCP connection: listen on an ephemeral port, connect, accept.
struct Loopback {
  int listener = -1;
  int client = -1;
  int server = -1;
  int port = 0;

  Loopback() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listener, 1);
    socklen_t len = sizeof(addr);
    getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    client = socket(AF_INET, SOCK_STREAM, 0);
    connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    server = accept(listener, nullptr, nullptr);
  }
  ~Loopback() {
    close(client);
    close(server);
    close(listener);
  }
};

void SendAll(int fd, std::size_t n) {
  const std::string data(n, 'x');
  std::size_t sent = 0;
  while (sent < n) sent += static_cast<std::size_t>(send(fd, data.data() + sent, n - sent, 0));
}

void ReceiveAll(int fd, std::size_t n) {
  std::string buffer(n, '\0');
  std::size_t got = 0;
  while (got < n) got += static_cast<std::size_t>(recv(fd, buffer.data() + got, n - got, 0));
}

TEST(SocketBytesTest, CountsExactlyWhatCrossedTheConnectionToThePeerPort) {
  Loopback link;
  ASSERT_GE(link.server, 0);
  const auto before = SnapshotSocketBytes(link.port);
  // Only the client socket has the listener's port as its peer.
  ASSERT_EQ(before.size(), 1u);
  SendAll(link.client, 1000);
  ReceiveAll(link.server, 1000);
  SendAll(link.server, 2500);
  ReceiveAll(link.client, 2500);
  // The kernel counts a send once the peer acknowledged it; on loopback that
  // is immediate, but give it a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto after = SnapshotSocketBytes(link.port);
  const SocketBytes bytes = BytesBetween(before, after);
  EXPECT_EQ(bytes.sent, 1000u);
  EXPECT_EQ(bytes.received, 2500u);
  EXPECT_TRUE(SnapshotSocketBytes(1).empty());
}

TEST(SocketBytesTest, ASocketOpenedInTheWindowCountsFromZero) {
  Loopback link;
  const auto before = SnapshotSocketBytes(link.port);
  Loopback other;  // another port: not counted
  SendAll(other.client, 300);
  ReceiveAll(other.server, 300);
  std::map<ino_t, SocketBytes> empty;
  SendAll(link.client, 700);
  ReceiveAll(link.server, 700);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // From its start the kernel counts the SYN as one byte acknowledged.
  EXPECT_EQ(BytesBetween(empty, SnapshotSocketBytes(link.port)).sent, 701u);
  EXPECT_EQ(BytesBetween(before, SnapshotSocketBytes(link.port)).sent, 700u);
}

}  // namespace
}  // namespace polycrud::bench
