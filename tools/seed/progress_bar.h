// A small progress display for long batch jobs (polycrud-seed): on a terminal
// a bar redrawn in place, otherwise a plain line every few seconds, both with
// items done / total, percentage, rate and ETA.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace polycrud {

class ProgressBar {
 public:
  // Draws on `out`; interactive (redrawn in place) when `out` is a terminal.
  ProgressBar(std::int64_t total, std::string_view unit, std::FILE* out);
  ProgressBar(std::int64_t total, std::string_view unit, std::FILE* out, bool interactive);

  // Records that `done` items are complete and redraws if enough time has
  // passed since the last drawing. Not thread-safe: call from one thread.
  void Update(std::int64_t done);
  // Draws the final state and ends the line.
  void Finish();
  // Ends the line on a terminal without a final drawing, so that an error
  // message that follows starts on a line of its own.
  void Abandon();

  double elapsed_seconds() const;

  // "8,000,000"
  static std::string FormatCount(std::int64_t value);
  // "1:05" or "1:02:03"
  static std::string FormatDuration(double seconds);

 private:
  void Draw(bool final);

  const std::int64_t total_;
  const std::string unit_;
  std::FILE* const out_;
  const bool interactive_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::int64_t done_ = 0;
  bool finished_ = false;
};

}  // namespace polycrud
