#include "tools/command_line.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <exception>
#include <iostream>
#include <sstream>

#include "models/inputs/json_reader.hpp"
#include "tools/calibrate_command.hpp"
#include "tools/cli_common.hpp"
#include "tools/estimate_command.hpp"
#include "tools/explain_command.hpp"
#include "tools/search_command.hpp"
#include "tools/serve_command.hpp"
#include "tools/serve_validate_command.hpp"
#include "tools/simulate_command.hpp"
#include "tools/sweep_command.hpp"
#include "tools/validate_command.hpp"
#include "tools/whatif_command.hpp"

namespace clustersim::cli {

namespace {

// "clustersim estmate ...": name the command meant instead of CLI11's "arguments were not
// expected" (exit 2 like any usage error).
void reject_unknown_command(CLI::App& app, const std::vector<std::string>& args) {
  if (args.empty() || args[0].empty() || args[0][0] == '-') return;
  const std::string& typed = args[0];
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
  if (std::find(names.begin(), names.end(), typed) != names.end()) return;
  const auto near = closest_match(typed, names);
  throw UsageError(near ? fmt::format("unknown command \"{}\" (did you mean \"{}\"?)", typed, *near)
                        : fmt::format("unknown command \"{}\" (commands: {})", typed, fmt::join(names, ", ")));
}

// Restores std::cout's and std::cerr's buffers however the command ends.
class StreamCapture {
 public:
  StreamCapture() : out_(std::cout.rdbuf(captured_out_.rdbuf())), err_(std::cerr.rdbuf(captured_err_.rdbuf())) {}
  ~StreamCapture() {
    std::cout.rdbuf(out_);
    std::cerr.rdbuf(err_);
  }
  StreamCapture(const StreamCapture&) = delete;
  StreamCapture& operator=(const StreamCapture&) = delete;
  std::string out() const { return captured_out_.str(); }
  std::string err() const { return captured_err_.str(); }

 private:
  std::ostringstream captured_out_, captured_err_;
  std::streambuf* out_;
  std::streambuf* err_;
};

}  // namespace

void register_builtin_commands(CLI::App& app) {
  register_explain_command(app);
  register_calibrate_command(app);
  register_estimate_command(app);
  register_validate_command(app);
  register_search_command(app);
  register_simulate_command(app);
  register_whatif_command(app);
  register_serve_command(app);
  register_serve_validate_command(app);
  register_sweep_command(app);
}

const char* version_string() { return "clustersim 0.1.0"; }

int run_command_line(const std::vector<std::string>& args, std::vector<InputError>* input_errors) {
  CLI::App app{"clustersim: predict LLM training and serving performance on GPU clusters"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_string());
  app.footer("Run 'clustersim <command> --help' for a command's options and an example.");
  register_builtin_commands(app);
  std::vector<std::string> words = {"clustersim"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  try {
    reject_unknown_command(app, args);
    app.parse(static_cast<int>(argv.size()), argv.data());
    return kExitOk;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  } catch (const InputErrors& e) {
    for (const auto& warning : e.warnings()) std::cerr << "warning: " << warning.to_string() << '\n';
    for (const auto& error : e.errors()) std::cerr << "error: " << error.to_string() << '\n';
    if (input_errors) *input_errors = e.errors();
    return kExitBadInput;
  } catch (const ExitWithCode& e) {
    return e.code;
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << '\n';
    if (input_errors) input_errors->push_back({"command line", "", e.what(), ""});
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << '\n';
    return kExitInternal;
  }
}

CapturedCommand run_command_captured(const std::vector<std::string>& args) {
  CapturedCommand result;
  StreamCapture capture;
  result.exit_code = run_command_line(args, &result.input_errors);
  std::cout.flush();
  result.out = capture.out();
  result.err = capture.err();
  return result;
}

}  // namespace clustersim::cli
