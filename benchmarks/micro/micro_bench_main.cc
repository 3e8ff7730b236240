// polycrud-micro-bench: encode and decode time and bytes on the wire of the
// four protocol faces' encodings, for a typical user (getUser's response), a
// 100-user listUsers page, and a 1000-id batchGetUsers request and its
// 1000-user response. Google Benchmark's own flags and reporters apply
// (--benchmark_format=json, --benchmark_out=FILE, --benchmark_filter, ...).
//
// Benchmark names: BM_<Direction>/<encoding>/<message>, with
//   Direction  Encode | Decode
//   encoding   thrift_binary | thrift_compact | protobuf | json | soap_xml
//   message    user | list_100 | batch_request_1000 | batch_response_1000
// e.g. BM_Encode/thrift_binary/user, BM_Decode/soap_xml/batch_response_1000.
// Every benchmark reports the counter "bytes" (bytes on the wire of one
// message; wire_codec.h says what they include) and bytes_per_second.
//
// Before anything is timed, every encoding decodes its own encoding of every
// message and must get the message back; otherwise the program exits 1 with
// the encoding and message named, so a broken round trip is never measured.
// --dump_wire=DIR writes the encoded messages to files for independent
// decoders (check_micro_bench.py).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "benchmarks/micro/wire_codec.h"

namespace polycrud::micro_bench {
namespace {

struct Encoding {
  const char* name;
  std::function<std::unique_ptr<Codec>(MessageKind, const MessageValue&)> make;
};

const std::vector<Encoding>& Encodings() {
  static const std::vector<Encoding> kEncodings = {
      {"thrift_binary",
       [](MessageKind k, const MessageValue& v) { return MakeThriftCodec(false, k, v); }},
      {"thrift_compact",
       [](MessageKind k, const MessageValue& v) { return MakeThriftCodec(true, k, v); }},
      {"protobuf", MakeProtobufCodec},
      {"json", MakeJsonCodec},
      {"soap_xml", MakeSoapCodec},
  };
  return kEncodings;
}

// One encoding of one message, verified, with its encoded bytes.
struct Case {
  std::string label;  // "<encoding>/<message>"
  std::unique_ptr<Codec> codec;
  std::string wire;
};

void PrintHelp() {
  std::printf(
      "polycrud-micro-bench: encode/decode time and bytes on the wire of Thrift binary,\n"
      "Thrift compact, Protobuf (gRPC), JSON (REST body) and SOAP XML (whole envelope)\n"
      "for: user (getUser response), list_100 (listUsers page of 100 users),\n"
      "batch_request_1000 (batchGetUsers with 1000 ids), batch_response_1000 (1000 users).\n"
      "\n"
      "Benchmarks are named BM_Encode/<encoding>/<message> and BM_Decode/<encoding>/<message>;\n"
      "each reports the counter \"bytes\" (one message on the wire) and bytes_per_second.\n"
      "Examples:\n"
      "  polycrud-micro-bench --benchmark_format=json\n"
      "  polycrud-micro-bench --benchmark_filter='/soap_xml/' --benchmark_min_time=0.1\n"
      "  polycrud-micro-bench --benchmark_out=micro.json --benchmark_out_format=json\n"
      "\n"
      "Own flag:\n"
      "  --dump_wire=DIR  also write each message's bytes on the wire to\n"
      "                   DIR/<encoding>.<message>.bin (DIR must exist)\n"
      "\n"
      "Google Benchmark flags:\n");
  benchmark::PrintDefaultHelp();
}

// Encodes, decodes and compares; exits 1 with a clear message on any mismatch.
Case Verified(const Encoding& encoding, MessageKind kind, const MessageValue& value) {
  Case c{.label = std::string(encoding.name) + "/" + std::string(MessageName(kind)),
         .codec = nullptr,
         .wire = {}};
  try {
    c.codec = encoding.make(kind, value);
    const std::size_t bytes = c.codec->Encode();
    c.wire = c.codec->LastWire();
    if (bytes == 0 || bytes != c.wire.size()) {
      std::fprintf(stderr, "error: %s: Encode() counted %zu bytes but produced %zu\n",
                   c.label.c_str(), bytes, c.wire.size());
      std::exit(1);
    }
    if (c.codec->DecodeValue(c.wire) != value) {
      std::fprintf(stderr, "error: %s: decode(encode(message)) differs from the message\n",
                   c.label.c_str());
      std::exit(1);
    }
    c.codec->Decode(c.wire);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s: round trip failed: %s\n", c.label.c_str(), e.what());
    std::exit(1);
  }
  return c;
}

constexpr std::string_view kDumpWireFlag = "--dump_wire=";

// Removes --dump_wire=DIR from argv into `dir`; false (after a message) if
// the flag has no directory.
bool TakeDumpWireFlag(int& argc, char** argv, std::string& dir) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.substr(0, kDumpWireFlag.size()) == kDumpWireFlag) {
      dir = std::string(arg.substr(kDumpWireFlag.size()));
      if (dir.empty()) {
        std::fprintf(stderr, "error: --dump_wire needs a directory: --dump_wire=DIR\n");
        return false;
      }
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return true;
}

// Writes the case's bytes on the wire to DIR/<encoding>.<message>.bin.
bool WriteWire(const std::string& dir, const Case& c) {
  std::string name = c.label;
  std::replace(name.begin(), name.end(), '/', '.');
  const std::filesystem::path path = std::filesystem::path(dir) / (name + ".bin");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(c.wire.data(), static_cast<std::streamsize>(c.wire.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "error: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

void RunEncode(benchmark::State& state, Codec* codec, std::size_t bytes) {
  try {
    for (auto _ : state) benchmark::DoNotOptimize(codec->Encode());
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

void RunDecode(benchmark::State& state, Codec* codec, const std::string* wire) {
  try {
    for (auto _ : state) {
      codec->Decode(*wire);
      benchmark::ClobberMemory();
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.counters["bytes"] = static_cast<double>(wire->size());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(wire->size()));
}

}  // namespace

int Main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv, PrintHelp);
  std::string dump_dir;
  if (!TakeDumpWireFlag(argc, argv, dump_dir)) return 2;
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  // Kept alive until the benchmarks have run: the registered lambdas point here.
  std::vector<Case> cases;
  for (const MessageKind kind : kAllMessageKinds) {
    const MessageValue value = MakeSampleMessage(kind);
    for (const Encoding& encoding : Encodings()) cases.push_back(Verified(encoding, kind, value));
  }
  if (!dump_dir.empty()) {
    for (const Case& c : cases) {
      if (!WriteWire(dump_dir, c)) return 1;
    }
  }
  for (const Case& c : cases) {
    Codec* codec = c.codec.get();
    const std::string* wire = &c.wire;
    benchmark::RegisterBenchmark(
        ("BM_Encode/" + c.label).c_str(),
        [codec, wire](benchmark::State& state) { RunEncode(state, codec, wire->size()); });
    benchmark::RegisterBenchmark(
        ("BM_Decode/" + c.label).c_str(),
        [codec, wire](benchmark::State& state) { RunDecode(state, codec, wire); });
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace polycrud::micro_bench

int main(int argc, char** argv) { return polycrud::micro_bench::Main(argc, argv); }
