#pragma once
// User what-if scenarios for a straggler trace ("what if worker 17 were not slow", "what if the
// last stage had one layer fewer"), read from JSON. Format: docs/straggler-traces.md.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "traces/straggler_trace.hpp"

namespace clustersim::sim {

// Which ops a change applies to: all conditions that are given must hold.
struct WhatIfSelector {
  std::optional<int> rank;
  std::optional<int> dp_rank;
  std::optional<int> stage;
  std::uint32_t optype_mask = 0;  // bit per StragglerOpType; 0 = every type
  std::string pointer;            // JSON pointer of the selector, for messages

  bool matches_type(traces::StragglerOpType type) const {
    return optype_mask == 0 || (optype_mask >> static_cast<unsigned>(type) & 1u) != 0;
  }
};

struct WhatIfChange {
  enum class Kind { kIdeal, kScale };
  WhatIfSelector select;
  Kind kind = Kind::kIdeal;
  double factor = 1.0;  // kScale: durations and transfer times are multiplied by it
};

// Changes are applied in order to the no-delay run (measured durations, no launch delays).
struct WhatIfScenario {
  std::string name;
  std::vector<WhatIfChange> changes;
};

// {"scenarios": [{"name": ..., "changes": [{"select": {...}, "ideal": true | "scale": f |
// "layers": {"from": L, "to": L2}}]}]}. Throws InputErrors naming file and JSON pointer.
std::vector<WhatIfScenario> read_whatif_scenarios(const std::string& path);
std::vector<WhatIfScenario> parse_whatif_scenarios(const nlohmann::json& document,
                                                   const std::string& file);

}  // namespace clustersim::sim
