#include "core/cache_health.h"

namespace polycrud {

void CacheHealth::Failed(const Status& /*status*/) {
  Count(stats_.errors);
  breaker_.RecordFailure();
}

}  // namespace polycrud
