#include "server/services.h"

#include <utility>

#include "cache/redis/redis_cluster_client.h"
#include "cache/redis/redis_fiber_connection.h"
#include "cache/redis/redis_pipes.h"

namespace polycrud::server {
namespace {

RedisPipelineOptions PipelineOptions(const RedisOptions& redis) {
  return {.endpoint = redis.endpoint, .max_pending = redis.max_pending};
}

}  // namespace

// What one fiber thread's service runs on; destroyed after its service.
struct Services::FiberThread {
  std::unique_ptr<RedisFiberConnection> connection;  // null: the shared pooled pipe
  std::unique_ptr<RedisClusterPipe> cluster;         // on a Redis Cluster
  std::unique_ptr<RedisUserCache> redis;
  std::unique_ptr<NearUserCache> near;
  std::unique_ptr<UserService> service;
};

Services::Services(UserStore& store, const TokenVerifier& tokens, const Clock& clock,
                   ServicesOptions options, EventLog* events)
    : store_(store), tokens_(tokens), clock_(clock), options_(std::move(options)) {
  if (!options_.redis.cluster_seeds.empty()) {
    thread_pipe_ = std::make_unique<RedisClusterPipe>(ClusterOptions());
  } else if (options_.redis.pipelined_connections > 0) {
    thread_pipe_ = std::make_unique<RedisPipelinedGroup>(PipelineOptions(options_.redis),
                                                         options_.redis.pipelined_connections);
  } else {
    thread_pipe_ = std::make_unique<RedisPooledPipe>(options_.redis);
  }
  thread_redis_ = std::make_unique<RedisUserCache>(options_.cache, *thread_pipe_);
  thread_cache_ = thread_redis_.get();
  if (options_.near.entries > 0) {
    near_slots_ = std::make_unique<NearCacheSlots>(options_.near);
    thread_near_ = std::make_unique<NearUserCache>(*thread_redis_, *near_slots_);
    thread_cache_ = thread_near_.get();
  }
  const UserServiceOptions& service = options_.service;
  health_ =
      std::make_unique<CacheHealth>(clock_, service.cache_failure_threshold, service.cache_open_ms,
                                    service.fallback_read_concurrency, events);
  repairer_ = std::make_unique<CacheRepairer>(
      store_, *thread_cache_, *health_,
      CacheRepairerOptions{.interval_ms = service.repair_interval_ms});
  thread_service_ = std::make_unique<UserService>(store_, *thread_cache_, *health_, *repairer_,
                                                  tokens_, clock_, service);
}

Services::~Services() = default;

RedisClusterOptions Services::ClusterOptions() const {
  RedisClusterOptions cluster{.node = PipelineOptions(options_.redis)};
  for (const std::string& seed : options_.redis.cluster_seeds) {
    // Checked by main(): every seed parses.
    if (StatusOr<RedisClusterNode> node = ParseClusterNode(seed); node.ok()) {
      cluster.seeds.push_back(std::move(*node));
    }
  }
  return cluster;
}

UserService& Services::ForFiberThread(int thread) {
  const std::lock_guard lock(fiber_mu_);
  const auto index = static_cast<std::size_t>(thread);
  if (fiber_threads_.size() <= index) fiber_threads_.resize(index + 1);
  std::unique_ptr<FiberThread>& slot = fiber_threads_[index];
  if (slot != nullptr) return *slot->service;
  if (offloading_ == nullptr) {
    offloading_ = std::make_unique<runtime::OffloadingUserStore>(store_, options_.offload_workers,
                                                                 options_.offload_max_queued);
  }
  slot = std::make_unique<FiberThread>();
  RedisCommandPipe* pipe = thread_pipe_.get();
  if (!options_.redis.cluster_seeds.empty()) {
    // On a cluster: the thread's own connection to each node.
    RedisClusterOptions cluster = ClusterOptions();
    cluster.connect = [](RedisPipelineOptions node) -> std::unique_ptr<RedisCommandPipe> {
      return std::make_unique<RedisFiberConnection>(std::move(node));
    };
    slot->cluster = std::make_unique<RedisClusterPipe>(std::move(cluster));
    pipe = slot->cluster.get();
  } else if (options_.redis.pipelined_connections > 0) {
    slot->connection = std::make_unique<RedisFiberConnection>(PipelineOptions(options_.redis));
    pipe = slot->connection.get();
  }
  slot->redis = std::make_unique<RedisUserCache>(options_.cache, *pipe);
  UserCache* cache = slot->redis.get();
  if (near_slots_ != nullptr) {
    slot->near = std::make_unique<NearUserCache>(*slot->redis, *near_slots_);
    cache = slot->near.get();
  }
  slot->service = std::make_unique<UserService>(*offloading_, *cache, *health_, *repairer_, tokens_,
                                                clock_, options_.service);
  if (draining_) slot->service->BeginDrain();
  if (shutting_down_) slot->service->BeginShutdown();
  return *slot->service;
}

void Services::BeginDrain() {
  const std::lock_guard lock(fiber_mu_);
  draining_ = true;
  ForEachService([](UserService& service) { service.BeginDrain(); });
}

void Services::BeginShutdown() {
  const std::lock_guard lock(fiber_mu_);
  shutting_down_ = true;
  ForEachService([](UserService& service) { service.BeginShutdown(); });
}

void Services::ForEachService(const std::function<void(UserService&)>& fn) {
  fn(*thread_service_);
  for (const auto& fiber_thread : fiber_threads_) {
    if (fiber_thread != nullptr) fn(*fiber_thread->service);
  }
}

}  // namespace polycrud::server
