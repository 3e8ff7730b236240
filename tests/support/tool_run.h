// Running the project's command-line tools (polycrud-bench, polycrud-wire)
// from tests: their output, exit status and the JSON document they wrote.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace polycrud::testing {

struct ToolRun {
  int exit_status = -1;
  std::string output;    // stdout and stderr
  std::string document;  // the file of `json_flag`, as written (empty if none)
};

// Runs `command_head` (the quoted binary, maybe behind `env ...`) with `args`,
// each quoted; with a `json_flag` (e.g. "--json") it also passes that flag
// and a scratch file, and reads the file back. Scratch files are removed.
ToolRun RunTool(const std::string& command_head, const std::vector<std::string>& args,
                const std::string& json_flag = "");

// A test name part of a protocol parameter ("thrift-compact" -> "thrift_compact").
std::string ProtocolParamName(const ::testing::TestParamInfo<std::string>& param);

}  // namespace polycrud::testing
