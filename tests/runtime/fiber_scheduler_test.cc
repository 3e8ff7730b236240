// FiberScheduler: many waits on one thread, each resumed by what it waits
// for (its socket, its deadline, a notification from another thread, a
// completion collected from a source on this thread).
#include "runtime/fiber_scheduler.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/io_wait.h"

namespace polycrud::runtime {
namespace {

using namespace std::chrono_literals;

struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~SocketPair() {
    ::close(a);
    ::close(b);
  }
  int a = -1;
  int b = -1;
};

// A completion source like a completion queue: what Complete() queued is
// delivered by the next Collect, on the collecting thread, once its time
// has come; Collect waits at most until its deadline.
class ScriptedSource final : public CompletionSource {
 public:
  void Complete(CallDone* done, IoClock::time_point at = IoClock::time_point::min()) {
    queued_.push_back({at, done});
  }
  void Collect(IoClock::time_point deadline) override {
    ++collects_;
    if (deadline == IoClock::time_point::max() && queued_.empty()) {
      ADD_FAILURE() << "waits forever for a completion nobody will queue";
      return;
    }
    IoClock::time_point first = IoClock::time_point::max();
    for (const auto& q : queued_) first = std::min(first, q.at);
    std::this_thread::sleep_until(std::min(first, deadline));
    const IoClock::time_point now = IoClock::now();
    std::vector<Queued> later;
    for (const auto& q : queued_) {
      if (q.at <= now) {
        q.done->Notify();
      } else {
        later.push_back(q);
      }
    }
    queued_.swap(later);
  }
  int collects() const { return collects_; }

 private:
  struct Queued {
    IoClock::time_point at;
    CallDone* done;
  };
  std::vector<Queued> queued_;
  int collects_ = 0;
};

TEST(FiberSchedulerTest, EachFiberResumesWhenItsOwnSocketIsReadable) {
  constexpr int kFibers = 8;
  std::array<SocketPair, kFibers> pairs;
  std::vector<int> order;  // which fiber read, in order
  FiberScheduler scheduler;
  for (int i = 0; i < kFibers; ++i) {
    scheduler.Spawn([&, i] {
      ASSERT_FALSE(WaitReady(pairs[i].a, POLLIN, IoClock::now() + 5s));
      char byte = 0;
      ASSERT_EQ(::read(pairs[i].a, &byte, 1), 1);
      EXPECT_EQ(byte, 'a' + i);
      order.push_back(i);
    });
  }
  // The writer answers the sockets in reverse order, one every 5 ms.
  scheduler.Spawn([&] {
    for (int i = kFibers - 1; i >= 0; --i) {
      SleepUntil(IoClock::now() + 5ms);
      const char byte = static_cast<char>('a' + i);
      ASSERT_EQ(::write(pairs[i].b, &byte, 1), 1);
    }
  });
  scheduler.Run();
  EXPECT_EQ(order, (std::vector<int>{7, 6, 5, 4, 3, 2, 1, 0}));
}

TEST(FiberSchedulerTest, AWaitThatIsNeverSatisfiedTimesOutAtItsDeadline) {
  SocketPair pair;
  std::error_code result;
  IoClock::duration waited{};
  bool other_ran = false;
  FiberScheduler scheduler;
  scheduler.Spawn([&] {
    const IoClock::time_point start = IoClock::now();
    result = WaitReady(pair.a, POLLIN, start + 50ms);
    waited = IoClock::now() - start;
  });
  scheduler.Spawn([&] { other_ran = true; });
  scheduler.Run();
  EXPECT_EQ(result, std::errc::timed_out);
  EXPECT_GE(waited, 50ms);
  EXPECT_TRUE(other_ran);
  // A byte that arrives after the timeout wakes no one (the scheduler is gone).
  ASSERT_EQ(::write(pair.b, "x", 1), 1);
}

TEST(FiberSchedulerTest, FibersThatReturnedAreFreedWhileTheSchedulerRuns) {
  constexpr int kFibers = 5000;
  int ran = 0;
  std::size_t most_held = 0;
  std::size_t held_after_timers = 0;
  FiberScheduler scheduler;
  scheduler.Spawn([&] {
    for (int i = 0; i < kFibers; ++i) {
      scheduler.Spawn([&] { ++ran; });
      SleepUntil(IoClock::now() + 1us);  // lets it run
      most_held = std::max(most_held, scheduler.tasks_held());
    }
    // A fiber whose wait left a timer behind is freed once the timer is due.
    for (int i = 0; i < 100; ++i) {
      scheduler.Spawn([&] {
        SocketPair pair;
        ASSERT_FALSE(WaitReady(pair.a, POLLOUT, IoClock::now() + 20ms));  // ready at once
        ++ran;
      });
    }
    SleepUntil(IoClock::now() + 50ms);
    SleepUntil(IoClock::now() + 1us);
    held_after_timers = scheduler.tasks_held();
  });
  scheduler.Run();
  EXPECT_EQ(ran, kFibers + 100);
  EXPECT_LT(most_held, 200u);
  EXPECT_LT(held_after_timers, 70u);
}

TEST(FiberSchedulerTest, RepeatedWaitsWithALongTimeoutKeepOneTimer) {
  SocketPair pair;
  int woken = 0;
  std::size_t most_timers = 0;
  FiberScheduler scheduler;
  scheduler.Spawn([&] {
    for (int i = 0; i < 1000; ++i) {
      ASSERT_FALSE(WaitReady(pair.a, POLLIN, IoClock::now() + 30s));
      char c = 0;
      ASSERT_EQ(::read(pair.a, &c, 1), 1);
      ++woken;
      most_timers = std::max(most_timers, scheduler.timers_queued());
    }
  });
  scheduler.Spawn([&] {
    for (int i = 0; i < 1000; ++i) {
      ASSERT_EQ(::write(pair.b, "x", 1), 1);
      SleepUntil(IoClock::now() + 1us);
    }
  });
  scheduler.Run();
  EXPECT_EQ(woken, 1000);
  EXPECT_LE(most_timers, 3u);
}

// On one fiber: a wait with deadline now + `first` that is satisfied at
// once, then a wait with deadline now + `second` that never is. Returns how
// long the second lasted and what it returned.
IoClock::duration SecondWaitAfterASatisfiedOne(IoClock::duration first, IoClock::duration second,
                                               std::error_code& result) {
  SocketPair pair;
  IoClock::duration waited{};
  FiberScheduler scheduler;
  scheduler.Spawn([&] {
    ASSERT_EQ(::write(pair.b, "x", 1), 1);
    ASSERT_FALSE(WaitReady(pair.a, POLLIN, IoClock::now() + first));
    char c = 0;
    ASSERT_EQ(::read(pair.a, &c, 1), 1);
    const IoClock::time_point start = IoClock::now();
    result = WaitReady(pair.a, POLLIN, start + second);
    waited = IoClock::now() - start;
  });
  scheduler.Run();
  return waited;
}

TEST(FiberSchedulerTest, AShortDeadlineAfterALongOneStillFiresOnTime) {
  std::error_code result;
  const IoClock::duration waited = SecondWaitAfterASatisfiedOne(10s, 30ms, result);
  EXPECT_EQ(result, std::errc::timed_out);
  EXPECT_GE(waited, 30ms);
  EXPECT_LT(waited, 2s);
}

TEST(FiberSchedulerTest, ALongDeadlineAfterAShortOneDoesNotFireEarly) {
  std::error_code result;
  // The entry of the first wait comes due first.
  const IoClock::duration waited = SecondWaitAfterASatisfiedOne(20ms, 200ms, result);
  EXPECT_EQ(result, std::errc::timed_out);
  EXPECT_GE(waited, 200ms);
}

TEST(FiberSchedulerTest, SleepersWakeInTheOrderOfTheirDeadlines) {
  std::vector<int> order;
  FiberScheduler scheduler;
  const IoClock::time_point start = IoClock::now();
  for (const int ms : {30, 10, 20, 0}) {
    scheduler.Spawn([&, ms] {
      SleepUntil(start + std::chrono::milliseconds(ms));
      EXPECT_GE(IoClock::now(), start + std::chrono::milliseconds(ms));
      order.push_back(ms);
    });
  }
  scheduler.Run();
  EXPECT_EQ(order, (std::vector<int>{0, 10, 20, 30}));
}

TEST(FiberSchedulerTest, ACallDoneOnAnotherThreadResumesItsFiberWhileOthersRun) {
  int ticks_while_waiting = 0;
  bool waiting = true;
  std::thread notifier;
  FiberScheduler scheduler;
  scheduler.Spawn([&] {
    CallDone done;
    notifier = std::thread([&done] {
      std::this_thread::sleep_for(30ms);
      done.Notify();
    });
    done.Wait();
    waiting = false;
  });
  scheduler.Spawn([&] {
    while (waiting) {
      ++ticks_while_waiting;
      SleepUntil(IoClock::now() + 1ms);
    }
  });
  scheduler.Run();
  notifier.join();
  EXPECT_GT(ticks_while_waiting, 5);  // the thread was not blocked meanwhile
}

TEST(FiberSchedulerTest, ANotificationBeforeTheWaitIsNotLost) {
  FiberScheduler scheduler;
  bool finished = false;
  scheduler.Spawn([&] {
    CallDone done;
    std::thread([&done] { done.Notify(); }).join();
    done.Wait();
    finished = true;
  });
  scheduler.Run();
  EXPECT_TRUE(finished);
}

TEST(FiberSchedulerTest, WithoutASchedulerCallDoneBlocksTheThread) {
  CallDone done;
  std::thread notifier([&done] {
    std::this_thread::sleep_for(10ms);
    done.Notify();
  });
  done.Wait();
  notifier.join();
  SocketPair pair;
  EXPECT_EQ(WaitReady(pair.a, POLLIN, IoClock::now() + 20ms), std::errc::timed_out);
  EXPECT_FALSE(WaitReady(pair.a, POLLOUT, IoClock::now() + 20ms));
}

TEST(FiberSchedulerTest, CompletionsOfASourceAreCollectedOnTheSchedulersThread) {
  ScriptedSource source;
  std::vector<int> order;
  const std::thread::id here = std::this_thread::get_id();
  FiberScheduler scheduler;
  for (int i = 0; i < 3; ++i) {
    scheduler.Spawn([&, i] {
      CallDone done(&source);
      // Completions due in reverse order of the calls, 30 ms apart.
      source.Complete(&done, IoClock::now() + (3 - i) * 30ms);
      done.Wait();
      EXPECT_EQ(std::this_thread::get_id(), here);
      order.push_back(i);
    });
  }
  // A sleeper is woken at its deadline though the scheduler waits in the
  // source: it is the first to finish.
  scheduler.Spawn([&] {
    SleepUntil(IoClock::now() + 5ms);
    order.push_back(9);
  });
  scheduler.Run();
  EXPECT_EQ(order, (std::vector<int>{9, 2, 1, 0}));
}

TEST(FiberSchedulerTest, SocketsAreWatchedWhileTheSchedulerWaitsInASource) {
  ScriptedSource source;
  SocketPair pair;
  bool call_done = false;
  FiberScheduler scheduler;
  CallDone* pending = nullptr;
  scheduler.Spawn([&] {
    CallDone done(&source);
    pending = &done;
    done.Wait();  // completed only once the socket fiber has read its byte
    call_done = true;
  });
  scheduler.Spawn([&] {
    ASSERT_FALSE(WaitReady(pair.a, POLLIN, IoClock::now() + 5s));
    char byte = 0;
    ASSERT_EQ(::read(pair.a, &byte, 1), 1);
    source.Complete(pending);
  });
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    const char byte = 'x';
    EXPECT_EQ(::write(pair.b, &byte, 1), 1);
  });
  scheduler.Run();
  writer.join();
  EXPECT_TRUE(call_done);
  EXPECT_GT(source.collects(), 1);
}

TEST(FiberSchedulerTest, WithoutASchedulerCallDoneCollectsFromItsSource) {
  ScriptedSource source;
  CallDone done(&source);
  source.Complete(&done, IoClock::now() + 10ms);
  done.Wait();
  EXPECT_GE(source.collects(), 1);
}

TEST(FiberSchedulerTest, AnExceptionInAFiberIsRethrownByRunAfterTheOthersFinish) {
  bool other_finished = false;
  FiberScheduler scheduler;
  scheduler.Spawn([] { throw std::runtime_error("boom"); });
  scheduler.Spawn([&] {
    SleepUntil(IoClock::now() + 5ms);
    other_finished = true;
  });
  EXPECT_THROW(scheduler.Run(), std::runtime_error);
  EXPECT_TRUE(other_finished);
  EXPECT_EQ(ThreadIoWaiter(), nullptr);
}

}  // namespace
}  // namespace polycrud::runtime
