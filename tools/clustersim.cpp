// clustersim: performance simulator for LLM training and serving on GPU clusters.
// The only place that prints results and decides exit codes: 0 ok, 1 internal failure,
// 2 bad input or usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "tools/calibrate_command.hpp"
#include "tools/cli_common.hpp"
#include "tools/estimate_command.hpp"
#include "tools/explain_command.hpp"
#include "tools/search_command.hpp"
#include "tools/simulate_command.hpp"
#include "tools/serve_command.hpp"
#include "tools/validate_command.hpp"
#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"
#include "tools/whatif_command.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitInternal = 1;
constexpr int kExitBadInput = 2;

// Every subcommand registers here, explicitly.
void register_builtin_commands(CLI::App& app) {
  clustersim::cli::register_explain_command(app);
  clustersim::cli::register_calibrate_command(app);
  clustersim::cli::register_estimate_command(app);
  clustersim::cli::register_validate_command(app);
  clustersim::cli::register_search_command(app);
  clustersim::cli::register_simulate_command(app);
  clustersim::cli::register_whatif_command(app);
  clustersim::cli::register_serve_command(app);
}

// "clustersim estmate ...": name the command meant instead of CLI11's "arguments were not
// expected" (exit 2 like any usage error).
void reject_unknown_command(CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return;
  const std::string typed = argv[1];
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
  if (std::find(names.begin(), names.end(), typed) != names.end()) return;
  const auto near = clustersim::closest_match(typed, names);
  throw clustersim::cli::UsageError(
      near ? fmt::format("unknown command \"{}\" (did you mean \"{}\"?)", typed, *near)
           : fmt::format("unknown command \"{}\" (commands: {})", typed, fmt::join(names, ", ")));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"clustersim: predict LLM training and serving performance on GPU clusters"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "clustersim 0.1.0");
  app.footer("Run 'clustersim <command> --help' for a command's options and an example.");
  register_builtin_commands(app);
  try {
    reject_unknown_command(app, argc, argv);
    app.parse(argc, argv);
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
  } catch (const clustersim::InputErrors& e) {
    for (const auto& warning : e.warnings()) std::cerr << "warning: " << warning.to_string() << '\n';
    for (const auto& error : e.errors()) std::cerr << "error: " << error.to_string() << '\n';
    return kExitBadInput;
  } catch (const clustersim::cli::ExitWithCode& e) {
    return e.code;
  } catch (const clustersim::cli::UsageError& e) {
    std::cerr << "error: " << e.what() << '\n';
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << '\n';
    return kExitInternal;
  }
}
