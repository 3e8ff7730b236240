// polycrud-cli: a small Thrift client for humans. It finds the local stack's
// endpoint and admin token in .polycrud/ (or takes them from flags and the
// environment), prints users as a table or as JSON, and prints errors as one
// line with a non-zero exit code. `watch` prints the change events of
// RabbitMQ as they arrive.
#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSSLSocket.h>
#include <thrift/transport/TSocket.h>
#include <thrift/transport/TTransportException.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "UserService.h"
#include "messaging/amqp/amqp_subscriber.h"
#include "transport/thrift/framed_transport.h"

namespace {

namespace fs = std::filesystem;
namespace gen = ::polycrud::thrift;
using ::apache::thrift::TApplicationException;
using ::apache::thrift::protocol::TBinaryProtocol;
using ::apache::thrift::protocol::TCompactProtocol;
using ::apache::thrift::protocol::TProtocol;
using ::apache::thrift::transport::DefaultClientAccessManager;
using ::apache::thrift::transport::SSLProtocol;
using ::apache::thrift::transport::TFramedTransport;
using ::apache::thrift::transport::TSocket;
using ::apache::thrift::transport::TSSLSocketFactory;
using ::apache::thrift::transport::TTransportException;

// Exit codes: 0 ok, 1 the server answered with an error, 2 usage, 3 no connection.
constexpr int kExitServerError = 1;
constexpr int kExitUnreachable = 3;

struct Options {
  std::string stack_dir;
  // watch: the broker of change events; what no flag sets comes from AMQP_*
  // of endpoints.env, then 127.0.0.1:5672, vhost /
  polycrud::AmqpOptions amqp{.port = 0, .vhost = ""};
  std::string host;  // --host, or THRIFT_HOST in endpoints.env, or 127.0.0.1
  int port = 0;
  std::string token;
  std::string protocol = "binary";
  int timeout_ms = 5000;
  bool json = false;
  bool tls = false;    // --tls, or TLS=1 in endpoints.env
  std::string tls_ca;  // --tls-ca, or TLS_CA in endpoints.env
  std::string tls_cert;
  std::string tls_key;
};

// Debian's bundle of the system's trusted CAs (package ca-certificates).
constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

// The nearest .polycrud/ folder from the working directory upwards.
std::optional<fs::path> FindStackDir() {
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / ".polycrud", ec)) return dir / ".polycrud";
    if (dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

std::map<std::string, std::string> ReadEnvFile(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq == std::string::npos || line.starts_with('#')) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::string ReadFirstLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Fills port and token from the stack folder where the flags and the
// environment left them unset.
void ResolveDefaults(Options& o) {
  std::optional<fs::path> dir =
      o.stack_dir.empty() ? FindStackDir() : std::optional<fs::path>(o.stack_dir);
  if (dir) {
    auto env = ReadEnvFile(*dir / "endpoints.env");
    if (o.port == 0) {
      if (auto it = env.find("THRIFT_PORT"); it != env.end())
        o.port = std::atoi(it->second.c_str());
    }
    if (o.host.empty()) {
      if (auto it = env.find("THRIFT_HOST"); it != env.end()) o.host = it->second;
    }
    if (auto it = env.find("TLS"); it != env.end() && it->second == "1") o.tls = true;
    const auto fill = [&](const char* key, std::string& value) {
      if (auto it = env.find(key); it != env.end() && value.empty()) value = it->second;
    };
    fill("AMQP_HOST", o.amqp.host);
    fill("AMQP_USER", o.amqp.user);
    fill("AMQP_PASSWORD", o.amqp.password);
    fill("AMQP_VHOST", o.amqp.vhost);
    if (auto it = env.find("AMQP_PORT"); it != env.end() && o.amqp.port == 0) {
      o.amqp.port = std::atoi(it->second.c_str());
    }
    if (auto it = env.find("TLS_CA"); it != env.end() && o.tls_ca.empty()) o.tls_ca = it->second;
    if (o.token.empty()) o.token = ReadFirstLine(*dir / "admin-token");
  }
  if (o.port == 0) o.port = 9090;
  if (o.host.empty()) o.host = "127.0.0.1";
  if (o.amqp.host.empty()) o.amqp.host = "127.0.0.1";
  if (o.amqp.port == 0) o.amqp.port = 5672;
  if (o.amqp.vhost.empty()) o.amqp.vhost = "/";
  if (!o.tls_ca.empty() || !o.tls_cert.empty()) o.tls = true;
  if (o.tls && o.tls_ca.empty()) o.tls_ca = kSystemCaBundle;
}

nlohmann::json ToJson(const gen::User& u) {
  return {{"id", u.id},
          {"username", u.username},
          {"email", u.email},
          {"full_name", u.full_name},
          {"version", u.version},
          {"created_at_ms", u.created_at_ms},
          {"updated_at_ms", u.updated_at_ms}};
}

// Display width of a UTF-8 string, counting code points (good enough for a
// terminal table of names).
std::size_t Width(const std::string& s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

void PrintTable(const std::vector<gen::User>& users) {
  if (users.empty()) {
    std::cout << "(no users)\n";
    return;
  }
  const std::vector<std::string> header = {"id", "username", "email", "full_name", "version"};
  std::vector<std::vector<std::string>> rows;
  for (const gen::User& u : users) {
    rows.push_back(
        {std::to_string(u.id), u.username, u.email, u.full_name, std::to_string(u.version)});
  }
  std::vector<std::size_t> widths(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) {
    widths[i] = Width(header[i]);
    for (const auto& row : rows) widths[i] = std::max(widths[i], Width(row[i]));
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::cout << row[i];
      if (i + 1 < row.size()) std::cout << std::string(widths[i] - Width(row[i]) + 2, ' ');
    }
    std::cout << '\n';
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

void PrintUsers(const Options& o, const std::vector<gen::User>& users) {
  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& u : users) arr.push_back(ToJson(u));
    std::cout << arr.dump(2) << '\n';
  } else {
    PrintTable(users);
  }
}

void PrintUser(const Options& o, const gen::User& u) {
  if (o.json) {
    std::cout << ToJson(u).dump(2) << '\n';
  } else {
    PrintTable({u});
  }
}

class Connection {
 public:
  explicit Connection(const Options& o) {
    std::shared_ptr<TSocket> socket;
    if (o.tls) {
      // Thrift's TLS client: the server's certificate must be signed by the
      // CA and name the host (a DNS name or an IP address).
      tls_factory_ = std::make_shared<TSSLSocketFactory>(SSLProtocol::TLSv1_2);
      tls_factory_->loadTrustedCertificates(o.tls_ca.c_str());
      tls_factory_->authenticate(true);
      tls_factory_->access(std::make_shared<DefaultClientAccessManager>());
      if (!o.tls_cert.empty()) {
        tls_factory_->loadCertificate(o.tls_cert.c_str());
        tls_factory_->loadPrivateKey((o.tls_key.empty() ? o.tls_cert : o.tls_key).c_str());
      }
      socket = tls_factory_->createSocket(o.host, o.port);
    } else {
      socket = std::make_shared<TSocket>(o.host, o.port);
    }
    socket->setConnTimeout(o.timeout_ms);
    socket->setRecvTimeout(o.timeout_ms);
    socket->setSendTimeout(o.timeout_ms);
    transport_ = polycrud::thrift_transport::MakeFramedTransport(socket);
    std::shared_ptr<TProtocol> protocol;
    if (o.protocol == "compact") {
      protocol = std::make_shared<TCompactProtocol>(transport_);
    } else {
      protocol = std::make_shared<TBinaryProtocol>(transport_);
    }
    client_ = std::make_unique<gen::UserServiceClient>(protocol);
    transport_->open();
  }
  ~Connection() {
    try {
      transport_->close();
    } catch (...) {  // closing a broken connection: nothing left to do
    }
  }
  gen::UserServiceClient& client() { return *client_; }

 private:
  std::shared_ptr<TSSLSocketFactory> tls_factory_;  // outlives its socket
  std::shared_ptr<TFramedTransport> transport_;
  std::unique_ptr<gen::UserServiceClient> client_;
};

// Runs `fn` against the server and turns every failure into one line.
template <typename Fn>
int Run(const Options& o, Fn&& fn) {
  try {
    Connection conn(o);
    fn(conn.client());
    return 0;
  } catch (const gen::InvalidArgument& e) {
    std::cerr << "error: INVALID_ARGUMENT: " << e.message
              << (e.field.empty() ? "" : " (field " + e.field + ")") << '\n';
  } catch (const gen::Unauthenticated& e) {
    std::cerr << "error: UNAUTHENTICATED: " << e.message << '\n';
  } catch (const gen::PermissionDenied& e) {
    std::cerr << "error: PERMISSION_DENIED: " << e.message << '\n';
  } catch (const gen::NotFound& e) {
    std::cerr << "error: NOT_FOUND: " << e.message << '\n';
  } catch (const gen::Conflict& e) {
    std::cerr << "error: CONFLICT: " << e.message << '\n';
  } catch (const gen::Unavailable& e) {
    std::cerr << "error: UNAVAILABLE: " << e.message << " (retry after " << e.retry_after_ms
              << " ms)\n";
  } catch (const TApplicationException& e) {
    std::cerr << "error: INTERNAL: " << e.what() << '\n';
  } catch (const TTransportException& e) {
    std::cerr << "error: cannot talk to " << o.host << ':' << o.port << ": " << e.what() << '\n';
    return kExitUnreachable;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
  }
  return kExitServerError;
}

// `polycrud-cli watch`: consumes change events until `max_events` arrived
// or `seconds` passed (0: no limit); exit 0, or 3 when the broker could not
// be reached at the first attempt.
int Watch(const Options& o, const std::string& binding, const std::string& queue,
          std::uint64_t max_events, double seconds) {
  std::mutex mu;
  std::condition_variable done_cv;
  std::uint64_t seen = 0;
  bool ever_connected = false;
  std::optional<polycrud::Status> first_failure;
  polycrud::AmqpSubscriber subscriber(
      polycrud::AmqpSubscriberOptions{.amqp = o.amqp, .binding_key = binding, .queue = queue},
      polycrud::AmqpSubscriber::Handlers{
          .on_message =
              [&](const polycrud::AmqpDelivery& delivery) {
                if (o.json) {
                  std::cout << delivery.body << std::endl;
                } else {
                  const nlohmann::json event = nlohmann::json::parse(delivery.body, nullptr, false);
                  if (event.is_object()) {
                    std::cout << event.value("occurred_at_ms", std::int64_t{0}) << ' '
                              << delivery.routing_key
                              << " id=" << event.value("id", std::int64_t{0})
                              << " version=" << event.value("version", std::int64_t{0})
                              << " event_id=" << delivery.message_id
                              << (delivery.redelivered ? " (redelivered)" : "") << std::endl;
                  } else {
                    std::cout << delivery.routing_key << " (not JSON) " << delivery.body
                              << std::endl;
                  }
                }
                std::lock_guard lock(mu);
                ++seen;
                done_cv.notify_all();
              },
          .on_connected =
              [&] {
                std::cerr << "watching " << o.amqp.exchange << " (" << binding << ") on "
                          << o.amqp.host << ':' << o.amqp.port << std::endl;
                std::lock_guard lock(mu);
                ever_connected = true;
                done_cv.notify_all();
              },
          .on_disconnected =
              [&](const polycrud::Status& why) {
                std::cerr << "not connected: " << why.message() << " (retrying)" << std::endl;
                std::lock_guard lock(mu);
                if (!ever_connected && !first_failure.has_value()) first_failure = why;
                done_cv.notify_all();
              },
      });
  subscriber.Start();
  std::unique_lock lock(mu);
  const auto stop_at = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
  const auto finished = [&] {
    return (max_events > 0 && seen >= max_events) || (!ever_connected && first_failure);
  };
  if (seconds > 0) {
    done_cv.wait_until(lock, stop_at, finished);
  } else {
    done_cv.wait(lock, finished);
  }
  const bool unreachable = !ever_connected && first_failure.has_value();
  lock.unlock();
  subscriber.Stop();
  if (unreachable) {
    std::cerr << "error: cannot reach the message broker at " << o.amqp.host << ':' << o.amqp.port
              << '\n';
    return kExitUnreachable;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "polycrud-cli: create, read, update, delete and list polycrud users over Thrift.\n"
      "By default it talks to the local stack of ./polycrud up (endpoint and admin token\n"
      "from the nearest .polycrud/ folder).\n"
      "Exit codes: 0 ok, 1 the server answered with an error, 2 usage error, 3 unreachable."};
  app.set_version_flag("--version", POLYCRUD_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  Options o;
  app.add_option("--stack-dir", o.stack_dir, "Folder with endpoints.env and admin-token")
      ->envname("POLYCRUD_STACK_DIR");
  app.add_option("--host", o.host,
                 "Server host (default: THRIFT_HOST of endpoints.env, or 127.0.0.1)")
      ->envname("POLYCRUD_HOST");
  app.add_option("--port", o.port, "Thrift port (default: THRIFT_PORT of endpoints.env, or 9090)")
      ->envname("POLYCRUD_THRIFT_PORT");
  app.add_option("--token", o.token, "Bearer token (default: the stack's admin-token)")
      ->envname("POLYCRUD_TOKEN");
  app.add_option("--protocol", o.protocol, "Thrift protocol")
      ->check(CLI::IsMember({"binary", "compact"}))
      ->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "Connect/read/write timeout")->capture_default_str();
  app.add_flag("--json", o.json, "Print JSON instead of a table");
  app.add_flag("--tls", o.tls,
               "Connect over TLS (default: TLS=1 in endpoints.env; any --tls-* option implies it)")
      ->envname("POLYCRUD_TLS");
  app.add_option("--tls-ca", o.tls_ca,
                 "CA that signs the server's certificate (default: TLS_CA of endpoints.env, "
                 "else the system's CAs)")
      ->envname("POLYCRUD_TLS_CA");
  app.add_option("--tls-cert", o.tls_cert, "Client certificate, for mutual TLS")
      ->envname("POLYCRUD_TLS_CLIENT_CERT");
  app.add_option("--tls-key", o.tls_key, "Private key of --tls-cert")
      ->envname("POLYCRUD_TLS_CLIENT_KEY");

  std::function<int()> action;

  auto* ping = app.add_subcommand("ping", "Ask the server for its name and version");
  ping->callback([&] {
    action = [&] {
      return Run(o, [&](gen::UserServiceClient& c) {
        std::string out;
        c.ping(out);
        std::cout << (o.json ? nlohmann::json{{"server", out}}.dump() : out) << '\n';
      });
    };
  });

  std::int64_t id = 0;
  auto* get = app.add_subcommand("get", "Show one user");
  get->add_option("id", id, "User id")->required();
  get->callback([&] {
    action = [&] {
      return Run(o, [&](gen::UserServiceClient& c) {
        gen::User u;
        c.getUser(u, o.token, id);
        PrintUser(o, u);
      });
    };
  });

  std::vector<std::int64_t> ids;
  auto* batch = app.add_subcommand("batch-get", "Show several users (1-1000 ids)");
  batch->add_option("ids", ids, "User ids")->required();
  batch->callback([&] {
    action = [&] {
      return Run(o, [&](gen::UserServiceClient& c) {
        std::vector<gen::User> users;
        c.batchGetUsers(users, o.token, ids);
        PrintUsers(o, users);
      });
    };
  });

  gen::UserDraft draft;
  auto* create = app.add_subcommand("create", "Create a user");
  create->add_option("--username", draft.username, "3-32 of a-z 0-9 _ . -")->required();
  create->add_option("--email", draft.email, "E-mail address")->required();
  create->add_option("--full-name", draft.full_name, "1-128 characters")->required();
  create->callback([&] {
    action = [&] {
      return Run(o, [&](gen::UserServiceClient& c) {
        gen::User u;
        c.createUser(u, o.token, draft);
        PrintUser(o, u);
      });
    };
  });

  std::optional<std::string> new_email;
  std::optional<std::string> new_full_name;
  std::int64_t expected_version = 0;
  auto* update = app.add_subcommand("update", "Change a user's email and/or full name");
  update->add_option("id", id, "User id")->required();
  update->add_option("--email", new_email, "New e-mail address");
  update->add_option("--full-name", new_full_name, "New full name");
  update->add_option("--expected-version", expected_version,
                     "Fail with CONFLICT unless the user is at this version (0: any)");
  update->callback([&] {
    action = [&] {
      return Run(o, [&](gen::UserServiceClient& c) {
        gen::UserPatch patch;
        if (new_email) patch.__set_email(*new_email);
        if (new_full_name) patch.__set_full_name(*new_full_name);
        patch.expected_version = expected_version;
        gen::User u;
        c.updateUser(u, o.token, id, patch);
        PrintUser(o, u);
      });
    };
  });

  auto* del = app.add_subcommand("delete", "Delete a user");
  del->add_option("id", id, "User id")->required();
  del->callback([&] {
    action = [&] {
      return Run(o, [&](gen::UserServiceClient& c) {
        c.deleteUser(o.token, id);
        std::cout << (o.json ? nlohmann::json{{"deleted", id}}.dump()
                             : "deleted " + std::to_string(id))
                  << '\n';
      });
    };
  });

  std::int64_t after_id = 0;
  std::int32_t limit = 0;
  auto* list = app.add_subcommand("list", "List users in id order (keyset pagination)");
  list->add_option("--after-id", after_id, "Start after this id (0: from the start)");
  list->add_option("--limit", limit, "Page size 1-1000 (default 100)");
  list->callback([&] {
    action = [&] {
      return Run(o, [&](gen::UserServiceClient& c) {
        gen::UserPage page;
        c.listUsers(page, o.token, after_id, limit);
        if (o.json) {
          nlohmann::json arr = nlohmann::json::array();
          for (const auto& u : page.users) arr.push_back(ToJson(u));
          std::cout << nlohmann::json{{"users", arr}, {"next_after_id", page.next_after_id}}.dump(2)
                    << '\n';
        } else {
          PrintTable(page.users);
          if (page.next_after_id != 0) {
            std::cout << "next page: --after-id " << page.next_after_id << '\n';
          }
        }
      });
    };
  });

  std::string prefix;
  std::int32_t search_limit = 0;
  auto* search = app.add_subcommand(
      "search", "Find users whose username or e-mail starts with a prefix (by username)");
  search->add_option("prefix", prefix, "Start of a username or e-mail (case-insensitive)")
      ->required();
  search->add_option("--limit", search_limit, "At most this many, 1-100 (default 20)");
  search->callback([&] {
    action = [&] {
      return Run(o, [&](gen::UserServiceClient& c) {
        std::vector<gen::User> users;
        c.searchUsers(users, o.token, prefix, search_limit);
        PrintUsers(o, users);
      });
    };
  });

  std::string binding = "user.*";
  std::string queue;
  std::uint64_t max_events = 0;
  double watch_seconds = 0;
  auto* watch = app.add_subcommand(
      "watch",
      "Print change events (user.created, user.updated, user.deleted) as they arrive from "
      "RabbitMQ, one line each (the event's JSON with --json). Runs until Ctrl-C, --count or "
      "--seconds");
  watch->add_option("--amqp-host", o.amqp.host, "Broker host (default: AMQP_HOST, or 127.0.0.1)")
      ->envname("POLYCRUD_AMQP_HOST");
  watch->add_option("--amqp-port", o.amqp.port, "Broker port (default: AMQP_PORT, or 5672)")
      ->envname("POLYCRUD_AMQP_PORT");
  watch->add_option("--amqp-user", o.amqp.user, "Broker user (default: AMQP_USER)")
      ->envname("POLYCRUD_AMQP_USER");
  watch
      ->add_option("--amqp-password", o.amqp.password,
                   "Password (default: AMQP_PASSWORD). Prefer the environment variable")
      ->envname("POLYCRUD_AMQP_PASSWORD");
  watch->add_option("--amqp-vhost", o.amqp.vhost, "Virtual host (default: AMQP_VHOST, or /)")
      ->envname("POLYCRUD_AMQP_VHOST");
  watch->add_option("--binding", binding, "Routing keys to receive, e.g. user.deleted")
      ->capture_default_str();
  watch->add_option("--queue", queue,
                    "Consume from this durable queue (created if need be), so events published "
                    "while nobody watches wait there; default: a private queue that lives as long "
                    "as the command");
  watch->add_option("--count", max_events, "Stop after this many events (0: no limit)");
  watch->add_option("--seconds", watch_seconds, "Stop after this long (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  watch->callback(
      [&] { action = [&] { return Watch(o, binding, queue, max_events, watch_seconds); }; });

  CLI11_PARSE(app, argc, argv);
  ResolveDefaults(o);
  return action ? action() : 2;
}
