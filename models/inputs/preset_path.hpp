#pragma once
// Resolves `--model`, `--cluster` and `--plan` arguments: an existing file, inline JSON, or the
// name of a preset in configs/<kind>/<name>.json.
#include <string>
#include <vector>

namespace clustersim {

// The configs/ folder: $CLUSTERSIM_CONFIG_DIR if set, else the source tree's configs/.
std::string config_dir();

// Names of the presets of one kind ("models", "clusters", "plans"), sorted.
std::vector<std::string> preset_names(const std::string& kind);

// Returns `argument` itself when it is inline JSON or an existing file; the preset's path when
// it names one; throws InputErrors naming `flag` otherwise (with the closest preset as a hint).
std::string resolve_input(const std::string& argument, const std::string& kind,
                          const std::string& flag);

}  // namespace clustersim
