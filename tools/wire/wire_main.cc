// polycrud-wire: captures one real GetUser call of a protocol's client (the
// project's own, polycrud::clients) through a local forwarding proxy, and
// prints the bytes that crossed the wire in each direction, annotated: a
// JSON document for the web console's wire view, or a hex dump for people.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "clients/protocol_client.h"
#include "core/status.h"
#include "tools/wire/capture_proxy.h"
#include "tools/wire/grpc_wire.h"
#include "tools/wire/http1_wire.h"
#include "tools/wire/thrift_wire.h"
#include "tools/wire/wire_parts.h"

namespace {

// The document keeps its members in the order the web page expects to read.
using json = nlohmann::ordered_json;
using polycrud::wire::Capture;
using polycrud::wire::CaptureProxy;
using polycrud::wire::Direction;
using polycrud::wire::Part;

// How long the capture goes on after the answer: trailing frames (HTTP/2
// SETTINGS ACK, WINDOW_UPDATE, PING ack).
constexpr std::chrono::milliseconds kTrailingWait{100};
// The proxy's deadline beyond --timeout-ms: the trailing wait and the
// client's teardown.
constexpr std::chrono::milliseconds kProxyGrace{1000};

struct Options {
  std::string protocol;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string token;
  std::int64_t id = 1;
  int timeout_ms = 5000;
  std::string json_path;
  bool text = false;
};

int UsageError(const std::string& message) {
  std::cerr << "polycrud-wire: " << message << " (see --help)\n";
  return 2;
}

int RunError(const std::string& message) {
  std::cerr << "polycrud-wire: " << message << '\n';
  return 1;
}

// Replaces every occurrence of `secret` in `text` with `mask`.
void ReplaceAll(std::string& text, const std::string& secret, const std::string& mask) {
  if (secret.empty()) return;
  for (std::size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + mask.size())) {
    text.replace(at, secret.size(), mask);
  }
}

// The parts of both directions, by protocol.
std::pair<std::vector<Part>, std::vector<Part>> Annotate(const std::string& protocol,
                                                         const std::string& request,
                                                         const std::string& response) {
  using namespace polycrud::wire;
  if (protocol == "thrift" || protocol == "thrift-compact") {
    const bool compact = protocol == "thrift-compact";
    return {AnnotateThrift(request, compact), AnnotateThrift(response, compact)};
  }
  if (protocol == "grpc") {
    Http2Annotation both = AnnotateGrpc(request, response);
    return {std::move(both.request), std::move(both.response)};
  }
  const std::string body = protocol == "soap" ? "SOAP envelope" : "JSON body";
  return {AnnotateHttp1(request, true, body), AnnotateHttp1(response, false, body)};
}

// One direction of the document. Parts marked `conceal` show '*' bytes in
// the hex; `token` never shows in any text.
json DirectionJson(const std::string& bytes, const std::vector<Part>& parts,
                   const std::string& token) {
  std::string shown = bytes;
  json list = json::array();
  for (const Part& part : parts) {
    if (part.conceal) shown.replace(part.offset, part.length, part.length, '*');
    std::string section = part.section;
    std::string label = part.label;
    std::string value = part.value;
    for (std::string* text : {&section, &label, &value}) ReplaceAll(*text, token, "***");
    list.push_back({{"offset", part.offset},
                    {"length", part.length},
                    {"section", section},
                    {"label", label},
                    {"value", value}});
  }
  return {{"bytes", bytes.size()}, {"hex", polycrud::wire::Hex(shown)}, {"parts", list}};
}

// The hex dump of one direction: a heading per run of parts of one section,
// then per part its offset, its bytes (16 a line) and "label: value".
void PrintText(std::ostream& out, const std::string& name, const json& direction) {
  const std::string hex = direction["hex"].get<std::string>();
  out << name << ": " << direction["bytes"].get<std::size_t>() << " bytes\n";
  std::string section;
  bool first = true;
  for (const json& part : direction["parts"]) {
    if (first || part["section"] != section) {
      section = part["section"].get<std::string>();
      out << section << '\n';
      first = false;
    }
    const auto offset = part["offset"].get<std::size_t>();
    const auto length = part["length"].get<std::size_t>();
    std::vector<std::string> hex_lines;
    for (std::size_t at = 0; at < length; at += 16) {
      std::string line;
      for (std::size_t i = at; i < length && i < at + 16; ++i) {
        if (i != at) line += ' ';
        line += hex.substr(2 * (offset + i), 2);
      }
      line.resize(47, ' ');
      hex_lines.push_back(line);
    }
    std::vector<std::string> text_lines;
    std::istringstream value(part["label"].get<std::string>() + ": " +
                             part["value"].get<std::string>());
    for (std::string line; std::getline(value, line);) text_lines.push_back(line);
    char where[16];
    std::snprintf(where, sizeof where, "%06zx", offset);
    const std::size_t lines = std::max(hex_lines.size(), text_lines.size());
    for (std::size_t i = 0; i < lines; ++i) {
      std::string line = "  " + std::string(i == 0 ? where : "      ") + "  " +
                         (i < hex_lines.size() ? hex_lines[i] : std::string(47, ' '));
      if (i < text_lines.size()) line += "  " + text_lines[i];
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << line << '\n';
    }
  }
}

int Run(int argc, char** argv) {
  Options o;
  CLI::App app{
      "polycrud-wire: captures one real GetUser call of a protocol's client and prints its\n"
      "bytes, annotated. The project's own client (polycrud::clients) calls GetUser(token, id)\n"
      "once, through a forwarding proxy on 127.0.0.1 that records every byte both ways; the\n"
      "document shows each direction as hex and as parts that cover every byte once: Thrift\n"
      "frame, message header and fields; HTTP/2 frames, HPACK headers and protobuf fields\n"
      "(gRPC); the HTTP/1.1 head and the SOAP envelope or JSON body (SOAP, REST, web).\n"
      "Thrift field names come from the generated code (getUser's argument and result\n"
      "structs and the structs they hold); protobuf names from the generated descriptors.\n"
      "The token's bytes are replaced by as many '*' in the captured bytes before anything is\n"
      "annotated (and Authorization values show as \"Bearer ***\"): no output holds it.\n"
      "Plain TCP only: TLS is not supported (the bytes would be ciphertext).\n"
      "Exit status: 0 the call was captured (an error answer such as NOT_FOUND included),\n"
      "1 it could not run (cannot connect, nothing captured, the call failed below the\n"
      "protocol), 2 usage."};
  app.set_version_flag("--version", POLYCRUD_VERSION);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--protocol", o.protocol,
                 "thrift|thrift-compact|grpc|soap|rest|web (web: the REST client under /api, "
                 "the Node gateway)")
      ->required()
      ->check(CLI::IsMember(polycrud::clients::KnownProtocols()));
  app.add_option("--host", o.host, "Server host")->capture_default_str();
  app.add_option("--port", o.port, "Server port (of the protocol's face)")
      ->required()
      ->check(CLI::Range(1, 65535));
  app.add_option("--token", o.token, "Bearer token")->envname("POLYCRUD_TOKEN")->required();
  app.add_option("--id", o.id, "The id of the user to get")->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "Bound of connect, send and receive")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  app.add_option("--json", o.json_path, "Write the document to FILE (else print it to stdout)");
  app.add_flag("--text", o.text, "Print an annotated hex dump instead of the JSON document");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return UsageError(e.what());
  }
  if (o.token.empty()) return UsageError("--token (or POLYCRUD_TOKEN) may not be empty");

  const std::chrono::milliseconds timeout(o.timeout_ms);
  std::unique_ptr<CaptureProxy> proxy;
  try {
    proxy = std::make_unique<CaptureProxy>(o.host, o.port, timeout + kProxyGrace);
  } catch (const std::exception& e) {
    return RunError(e.what());
  }
  polycrud::clients::Outcome<polycrud::User> outcome;
  std::string client_error;
  try {
    auto client = polycrud::clients::MakeProtocolClient(
        o.protocol, polycrud::clients::ClientOptions{
                        .host = "127.0.0.1",
                        .port = proxy->port(),
                        .rest_prefix = o.protocol == "web" ? "/api" : "",
                        .timeout_ms = o.timeout_ms,
                    });
    outcome = client->GetUser(o.token, o.id);
    std::this_thread::sleep_for(kTrailingWait);
  } catch (const std::exception& e) {
    client_error = e.what();
  }
  const Capture capture = proxy->Stop();
  std::string request = capture.Bytes(Direction::kRequest);
  std::string response = capture.Bytes(Direction::kResponse);
  if (!client_error.empty()) {
    ReplaceAll(client_error, o.token, "***");
    return RunError("the client failed: " + client_error);
  }
  if (request.empty()) {
    return RunError("nothing captured" +
                    (capture.error.empty() ? std::string() : ": " + capture.error));
  }
  if (capture.truncated) std::cerr << "polycrud-wire: " << capture.error << '\n';

  // No credential past this point: the token's bytes become '*' before
  // anything reads them.
  const std::string stars(o.token.size(), '*');
  ReplaceAll(request, o.token, stars);
  ReplaceAll(response, o.token, stars);
  const auto [request_parts, response_parts] = Annotate(o.protocol, request, response);

  const bool transport = outcome.status.transport_failure;
  std::string message = outcome.status.message;
  ReplaceAll(message, o.token, "***");
  const json document = {
      {"protocol", o.protocol},
      {"server", o.host + ":" + std::to_string(o.port)},
      {"id", o.id},
      {"outcome",
       {{"code", transport ? std::string("TRANSPORT")
                           : std::string(polycrud::StatusCodeName(outcome.status.code))},
        {"message", message}}},
      {"request", DirectionJson(request, request_parts, o.token)},
      {"response", DirectionJson(response, response_parts, o.token)}};

  const std::string dumped = document.dump(-1, ' ', false, json::error_handler_t::replace);
  if (!o.json_path.empty()) {
    std::ofstream file(o.json_path, std::ios::trunc);
    file << dumped << '\n';
    if (!file.flush()) return RunError("cannot write " + o.json_path);
  }
  if (o.text) {
    std::cout << "protocol " << o.protocol << ", server " << document["server"].get<std::string>()
              << ", GetUser id " << o.id << ": " << document["outcome"]["code"].get<std::string>()
              << (message.empty() ? "" : " (" + message + ")") << "\n\n";
    PrintText(std::cout, "request", document["request"]);
    std::cout << '\n';
    PrintText(std::cout, "response", document["response"]);
  } else if (o.json_path.empty()) {
    std::cout << dumped << '\n';
  }
  std::cout.flush();
  if (transport) return RunError("the call failed below the protocol: " + message);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that closed its socket must not end the process.
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    return RunError(e.what());
  }
}
