#pragma once
// One command line, run in this process: the registry of subcommands, the mapping of what they
// throw to exit codes (0 ok, 1 internal failure, 2 bad input or usage, or a command's own), and
// a captured form of it. `main`, a sweep's workers and the Python module all run commands
// through here, so a sweep row or a Python result is what the CLI prints for the same inputs.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "models/inputs/input_error.hpp"

namespace clustersim::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitBadInput = 2;

// Every subcommand registers here, explicitly.
void register_builtin_commands(CLI::App& app);

// The software version every result names ("clustersim 0.1.0").
const char* version_string();

// Parses and runs `args` (without the program name) with output on std::cout and std::cerr;
// returns the exit code. Bad input is also handed to `input_errors` when given.
int run_command_line(const std::vector<std::string>& args, std::vector<InputError>* input_errors = nullptr);

struct CapturedCommand {
  int exit_code = 0;
  std::string out;                       // what the command printed on stdout
  std::string err;                       // warnings, progress and error lines from stderr
  std::vector<InputError> input_errors;  // bad input, each with its file and JSON pointer
};
// run_command_line with std::cout and std::cerr captured (single-threaded callers only).
CapturedCommand run_command_captured(const std::vector<std::string>& args);

}  // namespace clustersim::cli
