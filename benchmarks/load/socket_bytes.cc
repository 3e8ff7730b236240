#include "benchmarks/load/socket_bytes.h"

// linux/tcp.h, not netinet/tcp.h: glibc's struct tcp_info lacks the byte counters.
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

namespace polycrud::bench {
namespace {

// The peer port of a connected IPv4 or IPv6 socket, or -1.
int PeerPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return -1;
}

}  // namespace

std::map<ino_t, SocketBytes> SnapshotSocketBytes(int peer_port) {
  std::map<ino_t, SocketBytes> out;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return out;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd_long = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;  // "." and ".."
    const int fd = static_cast<int>(fd_long);
    if (fd == dirfd(dir)) continue;
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (PeerPort(fd) != peer_port) continue;
    tcp_info info{};
    socklen_t len = sizeof(info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) continue;  // not TCP
    out[st.st_ino] =
        SocketBytes{.sent = info.tcpi_bytes_acked, .received = info.tcpi_bytes_received};
  }
  closedir(dir);
  return out;
}

SocketBytes BytesBetween(const std::map<ino_t, SocketBytes>& before,
                         const std::map<ino_t, SocketBytes>& after) {
  SocketBytes total;
  for (const auto& [inode, bytes] : after) {
    SocketBytes start;
    if (auto it = before.find(inode); it != before.end()) start = it->second;
    total.sent += bytes.sent - start.sent;
    total.received += bytes.received - start.received;
  }
  return total;
}

}  // namespace polycrud::bench
