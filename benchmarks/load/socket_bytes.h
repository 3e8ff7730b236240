// What really crossed this process's TCP sockets, the same way for every
// protocol: the kernel's per-socket counters (TCP_INFO tcpi_bytes_acked and
// tcpi_bytes_received: payload bytes, so HTTP/1.1 and HTTP/2 headers, gRPC
// and Thrift framing and TLS records all count, TCP/IP headers do not) of
// every TCP socket of the process whose peer port is the server's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>

namespace polycrud::bench {

struct SocketBytes {
  std::uint64_t sent = 0;      // acknowledged by the peer
  std::uint64_t received = 0;  // received from the peer
};

// Counters of each open TCP socket of this process connected to `peer_port`,
// keyed by the socket's inode (stable while it lives, unlike fd numbers).
std::map<ino_t, SocketBytes> SnapshotSocketBytes(int peer_port);

// Bytes exchanged between two snapshots: sockets opened in between count
// from zero (plus one byte sent: the kernel counts the SYN); sockets closed
// in between lose what they carried after `before` (a run reconnects rarely,
// so that is small; transport failures are reported).
SocketBytes BytesBetween(const std::map<ino_t, SocketBytes>& before,
                         const std::map<ino_t, SocketBytes>& after);

}  // namespace polycrud::bench
