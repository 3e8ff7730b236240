// Services: the UserService objects of one polycrud-server process and what
// they run on, wired once from the configuration.
//
// Faces that run on plain threads (REST, gRPC, SOAP, the Thrift thread
// models) share threads(): its store is the MySQL store, its cache Redis over
// a RedisPipelinedGroup (or a RedisPooledPipe with
// --redis-pipelined-connections 0, or a RedisClusterPipe with
// --redis-cluster), with the near cache in front when on.
// Each fiber thread of the fiber Thrift model gets ForFiberThread(i): its
// store is an OffloadingUserStore (MySQL calls run on workers while the fiber
// is parked), its cache Redis over that thread's own RedisFiberConnection (on
// a cluster, its own RedisClusterPipe with a RedisFiberConnection per node),
// behind the same near-cache entries. All of them share one CacheHealth
// (breaker, fallback limit, counters) and one CacheRepairer, so a cache
// update that failed through one runtime is repaired, and bypassed, for all.
// Thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "cache/near/near_user_cache.h"
#include "cache/redis/redis_cluster_client.h"
#include "cache/redis/redis_connection_pool.h"
#include "cache/redis/redis_pipelined_connection.h"
#include "cache/redis/redis_user_cache.h"
#include "core/cache_health.h"
#include "core/cache_repairer.h"
#include "core/event_log.h"
#include "core/ports.h"
#include "core/user_service.h"
#include "runtime/offloading_user_store.h"

namespace polycrud::server {

struct ServicesOptions {
  RedisOptions redis;       // connection, pool and pipelining settings
  RedisCacheOptions cache;  // TTLs
  NearCacheOptions near;    // entries 0: no near cache
  UserServiceOptions service;
  // Workers (and most queued calls) that run the fiber threads' MySQL calls.
  int offload_workers = 16;
  std::size_t offload_max_queued = 4096;
};

class Services {
 public:
  // `store`, `tokens`, `clock` and `events` (where degraded modes are
  // reported; null: nowhere) must outlive this object.
  Services(UserStore& store, const TokenVerifier& tokens, const Clock& clock,
           ServicesOptions options, EventLog* events = nullptr);
  ~Services();
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  // The service of every face on plain threads.
  UserService& threads() { return *thread_service_; }
  // The service of fiber thread `thread` (>= 0), made on its first call; use
  // it only from fibers of that one thread.
  UserService& ForFiberThread(int thread);
  // From now on every service reports itself draining (UserService::
  // BeginDrain) and still serves.
  void BeginDrain();
  // From now on every service answers kUnavailable (but Ping).
  void BeginShutdown();
  // After the faces stopped: repairs the cache entries still pending, for at
  // most `budget_ms`; returns how many could not be repaired.
  std::size_t DrainRepairs(std::int64_t budget_ms) { return repairer_->Drain(clock_, budget_ms); }
  // The near cache's entries, shared by every runtime (null: no near cache).
  NearCacheSlots* near_cache() { return near_slots_.get(); }
  // Redis connections busy now (pool gauge), fiber threads' not counted.
  std::size_t redis_busy() const { return thread_pipe_->busy(); }

 private:
  struct FiberThread;
  // The cluster client's settings (--redis-cluster), for any thread.
  RedisClusterOptions ClusterOptions() const;

  UserStore& store_;
  const TokenVerifier& tokens_;
  const Clock& clock_;
  const ServicesOptions options_;

  std::unique_ptr<RedisCommandPipe> thread_pipe_;
  std::unique_ptr<RedisUserCache> thread_redis_;
  std::unique_ptr<NearCacheSlots> near_slots_;  // null: no near cache
  std::unique_ptr<NearUserCache> thread_near_;
  UserCache* thread_cache_ = nullptr;
  std::unique_ptr<CacheHealth> health_;
  std::unique_ptr<CacheRepairer> repairer_;
  std::unique_ptr<UserService> thread_service_;

  std::mutex fiber_mu_;
  // Runs `fn` on the thread service and every fiber thread's; the caller
  // holds fiber_mu_.
  void ForEachService(const std::function<void(UserService&)>& fn);

  bool shutting_down_ = false;                                // guarded by fiber_mu_
  bool draining_ = false;                                     // guarded by fiber_mu_
  std::unique_ptr<runtime::OffloadingUserStore> offloading_;  // guarded by fiber_mu_
  std::vector<std::unique_ptr<FiberThread>> fiber_threads_;   // guarded by fiber_mu_
};

}  // namespace polycrud::server
