#include "models/inputs/preset_path.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"

#ifndef CLUSTERSIM_DEFAULT_CONFIG_DIR
#define CLUSTERSIM_DEFAULT_CONFIG_DIR "configs"
#endif

namespace clustersim {

namespace fs = std::filesystem;

std::string config_dir() {
  if (const char* env = std::getenv("CLUSTERSIM_CONFIG_DIR"); env && *env) return env;
  return CLUSTERSIM_DEFAULT_CONFIG_DIR;
}

std::vector<std::string> preset_names(const std::string& kind) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(config_dir()) / kind, ec)) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string resolve_input(const std::string& argument, const std::string& kind,
                          const std::string& flag) {
  if (looks_like_inline_json(argument)) return argument;
  std::error_code ec;
  if (fs::is_regular_file(argument, ec)) return argument;
  if (fs::is_directory(argument, ec)) {
    const fs::path config = fs::path(argument) / "config.json";
    throw_input_error(argument, "", fmt::format("is a directory, not a file ({})", flag),
                      fs::is_regular_file(config, ec)
                          ? fmt::format("did you mean {}?", config.string())
                          : fmt::format("give a JSON file or a preset name: {}", fmt::join(preset_names(kind), ", ")));
  }
  bool looks_like_path = argument.find('/') != std::string::npos ||
                         argument.ends_with(".json");
  if (looks_like_path) throw_input_error(argument, "", "no such file", "check the path");
  fs::path preset = fs::path(config_dir()) / kind / (argument + ".json");
  if (fs::is_regular_file(preset, ec)) return preset.string();
  auto names = preset_names(kind);
  auto near = closest_match(argument, names);
  throw_input_error(flag, "",
                    fmt::format("\"{}\" is neither a file nor a {} preset", argument,
                                kind.substr(0, kind.size() - 1)),
                    near ? fmt::format("did you mean \"{}\"? presets: {}", *near,
                                       fmt::join(names, ", "))
                         : fmt::format("presets: {}", fmt::join(names, ", ")));
}

}  // namespace clustersim
