#pragma once
// Reading and writing profile files (docs/profiles.md), with the same strict validation as
// every other input.
#include <nlohmann/json.hpp>
#include <string>

#include "models/cost/profile.hpp"

namespace clustersim {

nlohmann::json profile_to_json(const Profile& profile);

// `source` is a path or a preset name resolved by the caller. Throws InputErrors.
Profile load_profile(const std::string& path);

}  // namespace clustersim
