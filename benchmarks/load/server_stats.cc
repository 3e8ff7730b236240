#include "benchmarks/load/server_stats.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "clients/http_connection.h"

namespace polycrud::bench {
namespace {

std::optional<std::uint64_t> ToUint(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The value of an unlabelled sample `name value` in Prometheus text.
std::optional<std::uint64_t> PrometheusSample(std::string_view text, std::string_view name) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ' ') {
      std::string_view value = line.substr(name.size() + 1);
      // Counters are integers; tolerate a trailing ".0" or timestamp-free floats.
      if (const std::size_t dot = value.find('.'); dot != std::string_view::npos) {
        value = value.substr(0, dot);
      }
      return ToUint(value);
    }
  }
  return std::nullopt;
}

// The value of `name:value` in Redis INFO text (lines end in \r\n).
std::optional<std::uint64_t> InfoField(std::string_view text, std::string_view name) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ':') {
      return ToUint(line.substr(name.size() + 1));
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> ParseStatCpuTicks(std::string_view stat) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // fields are counted from the last ')'. utime and stime are fields 14, 15.
  const std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::size_t pos = close + 1;
  while (pos < stat.size() && fields.size() < 13) {
    while (pos < stat.size() && (stat[pos] == ' ' || stat[pos] == '\n')) ++pos;
    std::size_t end = pos;
    while (end < stat.size() && stat[end] != ' ' && stat[end] != '\n') ++end;
    if (end > pos) fields.push_back(stat.substr(pos, end - pos));
    pos = end;
  }
  if (fields.size() < 13) return std::nullopt;
  const auto utime = ToUint(fields[11]);
  const auto stime = ToUint(fields[12]);
  if (!utime || !stime) return std::nullopt;
  return *utime + *stime;
}

std::optional<double> ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const auto ticks = ParseStatCpuTicks(text.str());
  if (!ticks) return std::nullopt;
  return static_cast<double>(*ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::optional<CacheCounters> ParsePrometheusCache(std::string_view text) {
  const auto hits = PrometheusSample(text, "polycrud_cache_hits_total");
  const auto misses = PrometheusSample(text, "polycrud_cache_misses_total");
  if (!hits || !misses) return std::nullopt;
  const std::uint64_t negative =
      PrometheusSample(text, "polycrud_cache_negative_hits_total").value_or(0);
  return CacheCounters{.hits = *hits + negative, .negative_hits = negative, .misses = *misses};
}

std::optional<CacheCounters> ParseRedisInfo(std::string_view text) {
  const auto hits = InfoField(text, "keyspace_hits");
  const auto misses = InfoField(text, "keyspace_misses");
  if (!hits || !misses) return std::nullopt;
  return CacheCounters{.hits = *hits, .negative_hits = 0, .misses = *misses};
}

std::optional<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  url.remove_prefix(kScheme.size());
  HttpUrl out;
  const std::size_t slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) out.target = std::string(url.substr(slash));
  const std::size_t colon = authority.rfind(':');
  out.host = std::string(authority.substr(0, colon));
  if (colon != std::string_view::npos) {
    const auto port = ToUint(authority.substr(colon + 1));
    if (!port || *port == 0 || *port > 65535) return std::nullopt;
    out.port = static_cast<int>(*port);
  }
  if (out.host.empty()) return std::nullopt;
  return out;
}

CacheCounters ScrapeMetricsCache(const HttpUrl& url) {
  clients::HttpConnection connection(url.host, url.port, 5'000);
  const clients::HttpResponse response = connection.Send(clients::http::verb::get, url.target);
  if (response.result_int() != 200) {
    throw std::runtime_error("GET " + url.target + " answered HTTP " +
                             std::to_string(response.result_int()));
  }
  const auto counters = ParsePrometheusCache(response.body());
  if (!counters) throw std::runtime_error("no polycrud_cache_{hits,misses}_total at " + url.target);
  return *counters;
}

CacheCounters ScrapeRedisCache(const std::string& host, int port, const std::string& user,
                               const std::string& password) {
  const timeval timeout{.tv_sec = 5, .tv_usec = 0};
  std::unique_ptr<redisContext, decltype(&redisFree)> context(
      redisConnectWithTimeout(host.c_str(), port, timeout), &redisFree);
  if (context == nullptr || context->err != 0) {
    throw std::runtime_error("cannot connect to Redis at " + host + ":" + std::to_string(port) +
                             (context ? std::string(": ") + context->errstr : ""));
  }
  if (!user.empty() || !password.empty()) {
    std::unique_ptr<redisReply, decltype(&freeReplyObject)> auth(
        static_cast<redisReply*>(redisCommand(context.get(), "AUTH %b %b", user.data(), user.size(),
                                              password.data(), password.size())),
        &freeReplyObject);
    if (auth == nullptr || auth->type == REDIS_REPLY_ERROR) {
      throw std::runtime_error("Redis refused the login as '" + user + "'");
    }
  }
  std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(
      static_cast<redisReply*>(redisCommand(context.get(), "INFO stats")), &freeReplyObject);
  if (reply == nullptr || reply->type != REDIS_REPLY_STRING) {
    throw std::runtime_error("Redis INFO stats failed");
  }
  const auto counters = ParseRedisInfo(std::string_view(reply->str, reply->len));
  if (!counters) throw std::runtime_error("Redis INFO has no keyspace_hits/misses");
  return *counters;
}

}  // namespace polycrud::bench
