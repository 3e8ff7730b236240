#include "core/cache_health.h"

#include <string>

namespace polycrud {

void CacheHealth::Succeeded() {
  // Common path (every cache hit): no report unless the breaker just closed.
  if (breaker_.RecordSuccess()) {
    events_.Record(Event::kBreakerClosed, {}, "cache answers again: reads use it again");
  }
}

void CacheHealth::Failed(const Status& status, std::string_view request_id) {
  Count(stats_.errors);
  events_.Record(Event::kCacheFailed, request_id, status.ToString());
  if (status.code() == StatusCode::kResourceExhausted) {
    Count(stats_.refusals);
    return;
  }
  const bool opened = breaker_.RecordFailure();
  if (opened) {
    events_.Record(Event::kBreakerOpened, request_id,
                   "cache breaker opened after " + status.ToString() +
                       ": reads go to the store, behind the fallback limit");
  }
}

}  // namespace polycrud
