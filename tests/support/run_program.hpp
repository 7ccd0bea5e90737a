// Runs a built program with arguments through the shell and captures its exit status, stdout and
// stderr (tests of the command-line tools).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sknet_test {

struct ProgramResult {
  int status;  ///< exit status, -1 if the program did not exit normally
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Exit status of a program that ran past its time limit (coreutils `timeout`).
constexpr int kTimedOut = 124;

/// Runs `"program" args` (args are shell words, quoted by the caller) under `timeout`: a program
/// still running after `timeout_seconds` is stopped (then killed) and the status is kTimedOut, so
/// a hang fails the test instead of blocking the suite. Capture files are unique per process and
/// call: CTest runs the test cases of one file in parallel processes.
inline ProgramResult run_program(const std::string& program, const std::string& args, int timeout_seconds = 600) {
  static int calls = 0;
  const std::string tag = std::to_string(::getpid()) + "_" + std::to_string(++calls);
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::filesystem::path out = dir / ("sknet_test_run_" + tag + ".out");
  const std::filesystem::path err = dir / ("sknet_test_run_" + tag + ".err");
  const std::string cmd = "timeout -k 5 " + std::to_string(timeout_seconds) + " \"" + program + "\" " + args + " >\"" +
                          out.string() + "\" 2>\"" + err.string() + "\"";
  const int raw = std::system(cmd.c_str());
  ProgramResult r{WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, slurp(out), slurp(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace sknet_test
