// Eventually: polls a condition that another process or thread makes true,
// for tests that wait on something they cannot be told about.
#pragma once

#include <chrono>
#include <thread>

namespace polycrud::testing {

// Polls `condition` every 20 ms for up to `timeout`; its last result.
template <typename Fn>
bool Eventually(Fn condition, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace polycrud::testing
