// Counters polycrud-bench reads from outside the client: the server
// process's CPU time (/proc/<pid>/stat), the cache counters of the server's
// /metrics page (Prometheus text) or of Redis (INFO stats). Each scrape uses
// a connection of its own, closed before it returns, so it never counts as
// load traffic.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace polycrud::bench {

// utime + stime in clock ticks from the text of /proc/<pid>/stat (all
// threads of the process), or nullopt when the text does not parse.
std::optional<std::uint64_t> ParseStatCpuTicks(std::string_view stat);
// CPU seconds (user + system) the process has used so far, or nullopt when
// /proc/<pid>/stat cannot be read.
std::optional<double> ProcessCpuSeconds(pid_t pid);

struct CacheCounters {
  std::uint64_t hits = 0;           // answered from the cache (incl. negative hits)
  std::uint64_t negative_hits = 0;  // of which: cached "no such user" (metrics only)
  std::uint64_t misses = 0;
};

// polycrud_cache_hits_total, polycrud_cache_negative_hits_total and
// polycrud_cache_misses_total from Prometheus text; nullopt when the hits or
// misses counter is absent.
std::optional<CacheCounters> ParsePrometheusCache(std::string_view text);
// keyspace_hits and keyspace_misses from the text of Redis INFO; nullopt
// when either is absent.
std::optional<CacheCounters> ParseRedisInfo(std::string_view text);

struct HttpUrl {
  std::string host;
  int port = 80;
  std::string target = "/";
};
// Splits "http://host[:port][/target]"; nullopt for anything else.
std::optional<HttpUrl> ParseHttpUrl(std::string_view url);

// Fetches the /metrics page at `url` and parses it. Throws std::exception
// with a message when the page cannot be fetched or has no cache counters.
CacheCounters ScrapeMetricsCache(const HttpUrl& url);
// INFO stats of the Redis at host:port. Throws std::exception on failure.
// Logs in as `user` with `password` first unless both are empty.
CacheCounters ScrapeRedisCache(const std::string& host, int port, const std::string& user,
                               const std::string& password);

}  // namespace polycrud::bench
