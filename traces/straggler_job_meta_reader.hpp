#pragma once
// Reads the job metadata of a straggler trace: the flat `key: value` YAML the published traces
// come with (only that subset: one key per line, `#` comments, no nesting), or the same keys as
// a JSON object. Keys: trial_name, run_id, dp_size, dsp_size, pp_size, tp_size, vpp_size,
// world_size (= dp * dsp * pp * tp).
#include <string>
#include <string_view>

#include "traces/straggler_trace.hpp"

namespace clustersim::traces {

// Reads `path`; JSON when the text starts with '{', flat YAML otherwise. Throws InputErrors.
StragglerJobMeta read_straggler_job_meta(const std::string& path);
StragglerJobMeta parse_straggler_job_meta(std::string_view text, const std::string& file);

}  // namespace clustersim::traces
