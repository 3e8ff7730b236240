#include "tests/support/tool_run.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/support/settings.h"

namespace polycrud::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

ToolRun RunTool(const std::string& command_head, const std::vector<std::string>& args,
                const std::string& json_flag) {
  static int counter = 0;
  const std::string scratch = Setting("POLYCRUD_TEST_SCRATCH");
  std::system(("mkdir -p '" + scratch + "'").c_str());
  const std::string base =
      scratch + "/tool-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::string command = command_head;
  for (const std::string& arg : args) command += " '" + arg + "'";
  if (!json_flag.empty()) command += " " + json_flag + " '" + base + ".json'";
  command += " > '" + base + ".out' 2>&1";
  ToolRun run;
  const int status = std::system(command.c_str());
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.output = ReadFile(base + ".out");
  run.document = ReadFile(base + ".json");
  std::remove((base + ".json").c_str());
  std::remove((base + ".out").c_str());
  return run;
}

std::string ProtocolParamName(const ::testing::TestParamInfo<std::string>& param) {
  std::string name = param.param;
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

}  // namespace polycrud::testing
