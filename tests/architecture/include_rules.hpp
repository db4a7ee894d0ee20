#pragma once
// The direction every #include must take (docs/architecture.md): which folder may include which,
// where SimGrid and CUDA headers may appear. Pure functions over repository-relative paths, so a
// test can feed them a deliberately wrong include as well as scan the real tree.
#include <optional>
#include <string>

namespace clustersim::architecture {

// Why `includer` (a file, e.g. "models/cost/cost_model.cpp") must not include `included` (as
// written between quotes or angle brackets, e.g. "sim/platform/rail_fabric.hpp" or
// "simgrid/s4u.hpp"); nullopt when the include is allowed.
std::optional<std::string> include_violation(const std::string& includer, const std::string& included);

}  // namespace clustersim::architecture
