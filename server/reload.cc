// Reloader: see reload.h.
#include "server/reload.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "core/sha256_token_verifier.h"
#include "server/config.h"
#include "server/face.h"
#include "transport/tls/tls.h"

namespace polycrud::server {
namespace {

// The settings SIGHUP applies, by their configuration key.
bool Reloadable(const std::string& key) {
  return key == "log-level" || key.find("token-sha256") != std::string::npos;
}

// "key = value" lines (EffectiveSettings) by key.
std::map<std::string, std::string> ByKey(const std::string& settings) {
  std::map<std::string, std::string> out;
  std::istringstream lines(settings);
  for (std::string line; std::getline(lines, line);) {
    const std::size_t eq = line.find(" = ");
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return out;
}

// The keys whose value differs, that SIGHUP does not apply.
std::string ChangedForRestart(const std::string& before, const std::string& after) {
  const std::map<std::string, std::string> old_values = ByKey(before);
  std::string changed;
  for (const auto& [key, value] : ByKey(after)) {
    const auto it = old_values.find(key);
    if (Reloadable(key) || (it != old_values.end() && it->second == value)) continue;
    changed += (changed.empty() ? "" : ", ") + key;
  }
  return changed;
}

}  // namespace

bool Reloader::Reload() {
  CLI::App app;
  Config c;
  const FaceList faces = MakeFaces();
  AddOptions(app, c, faces);
  std::optional<std::string> error;
  try {
    app.parse(argc_, argv_);
  } catch (const CLI::ParseError& e) {
    error = e.what();
  }
  std::vector<Face*> selected;
  std::optional<Sha256TokenVerifier> tokens;
  if (!error.has_value()) error = CompleteConfig(app, c);
  if (!error.has_value()) error = ValidateConfig(c, faces, selected, tokens);
  if (error.has_value()) {
    spdlog::error("reload: {}; nothing changed", *error);
    return false;
  }
  tokens_.Replace(std::make_shared<const Sha256TokenVerifier>(std::move(*tokens)));
  spdlog::set_level(spdlog::level::from_str(c.log_level));
  const tls::CertificateReload certificates = tls::ReloadServerCertificates();
  for (const std::string& failure : certificates.failures) spdlog::error("reload: {}", failure);
  const std::string restart = ChangedForRestart(settings_in_force_, EffectiveSettings(app));
  if (!restart.empty()) {
    spdlog::warn("reload: changed, in force after a restart: {}", restart);
  }
  spdlog::info(
      "reloaded: log level {}, {} admin and {} reader token hashes, {} TLS certificate(s) read "
      "again",
      c.log_level, c.admin_hashes.size(), c.reader_hashes.size(), certificates.reloaded);
  return certificates.failures.empty();
}

}  // namespace polycrud::server
