#include "tools/seed/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace polycrud {
namespace {

constexpr int kBarWidth = 30;
constexpr auto kInteractiveInterval = std::chrono::milliseconds(100);
constexpr auto kPlainInterval = std::chrono::seconds(5);

}  // namespace

ProgressBar::ProgressBar(std::int64_t total, std::string_view unit, std::FILE* out)
    : ProgressBar(total, unit, out, isatty(fileno(out)) == 1) {}

ProgressBar::ProgressBar(std::int64_t total, std::string_view unit, std::FILE* out,
                         bool interactive)
    : total_(std::max<std::int64_t>(total, 0)),
      unit_(unit),
      out_(out),
      interactive_(interactive),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (interactive_) Draw(false);
}

void ProgressBar::Update(std::int64_t done) {
  done_ = std::clamp<std::int64_t>(done, 0, total_);
  if (done_ == total_) return;  // Finish() draws the last state
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ >= (interactive_ ? kInteractiveInterval : kPlainInterval)) Draw(false);
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void ProgressBar::Abandon() {
  if (finished_) return;
  finished_ = true;
  if (interactive_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressBar::FormatCount(std::int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

std::string ProgressBar::FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto total = static_cast<std::int64_t>(std::llround(seconds));
  const std::int64_t hours = total / 3600;
  const std::int64_t minutes = (total / 60) % 60;
  const std::int64_t secs = total % 60;
  char buffer[32];
  if (hours > 0) {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld", static_cast<long long>(hours),
                  static_cast<long long>(minutes), static_cast<long long>(secs));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld", static_cast<long long>(minutes),
                  static_cast<long long>(secs));
  }
  return buffer;
}

void ProgressBar::Draw(bool final) {
  last_draw_ = std::chrono::steady_clock::now();
  const double elapsed = elapsed_seconds();
  const double fraction =
      total_ == 0 ? 1.0 : static_cast<double>(done_) / static_cast<double>(total_);
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1.0;

  std::string line;
  if (interactive_) {
    const int filled = static_cast<int>(fraction * kBarWidth);
    line += "\r\x1b[K[";
    line.append(static_cast<std::size_t>(filled), '#');
    line.append(static_cast<std::size_t>(kBarWidth - filled), '.');
    line += "] ";
  }
  char numbers[160];
  std::snprintf(numbers, sizeof(numbers), "%s / %s %s  %5.1f%%  %s %s/s  %s %s",
                FormatCount(done_).c_str(), FormatCount(total_).c_str(), unit_.c_str(),
                fraction * 100.0, FormatCount(std::llround(rate)).c_str(), unit_.c_str(),
                final ? "elapsed" : "ETA", FormatDuration(final ? elapsed : eta).c_str());
  line += numbers;
  if (!interactive_ || final) line += '\n';
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
}

}  // namespace polycrud
