// What polycrud-server changes on SIGHUP (systemd's ExecReload) without a
// restart, and nothing else: the log level, the token hashes, and the TLS
// certificates and keys of the faces. The settings are read again from the
// same flags, environment, configuration file and hash files, and checked
// as at start; if they fail, nothing changes. Connections stay open: calls
// that begin after the reload are checked against the new tokens, and
// handshakes after it present the new certificate (the gRPC face watches
// its files by itself, see adapters/grpc/grpc_server.cc). Any other setting
// that changed is named in a warning: it takes effect at the next restart.
#pragma once

#include <string>

#include "core/reloadable_token_verifier.h"

namespace polycrud::server {

class Reloader {
 public:
  // `argc`/`argv`: the server's command line (outlives the Reloader);
  // `settings_in_force`: EffectiveSettings() of the settings it started with.
  Reloader(int argc, char** argv, ReloadableTokenVerifier& tokens, std::string settings_in_force)
      : argc_(argc),
        argv_(argv),
        tokens_(tokens),
        settings_in_force_(std::move(settings_in_force)) {}

  // Reads and applies what can change; logs what it did or why it did not.
  // Returns false if the settings could not be read or checked (then nothing
  // changed) or a certificate could not be read (that face keeps its own).
  bool Reload();

 private:
  const int argc_;
  char** const argv_;
  ReloadableTokenVerifier& tokens_;
  const std::string settings_in_force_;
};

}  // namespace polycrud::server
