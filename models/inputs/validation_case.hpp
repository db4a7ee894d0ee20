#pragma once
// Validation cases: published training runs with their plan and measured metrics, read from a
// case file (docs/validation.md). Inputs stay as the user wrote them (preset name, path or
// inline object) and are loaded like command-line inputs.
#include <cstdint>
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/inputs/input_error.hpp"

namespace clustersim {

// model: 6N-style model FLOPs with causal attention; full_attention: the same with the attention
// core over all s keys (NeMo's performance tables); megatron_sc21: that paper's Eq. 3;
// hardware: everything executed, recomputation included.
enum class FlopsConvention { kModel, kFullAttention, kMegatronSc21, kHardware };

struct ValidationCase {
  std::string id;
  std::string source;
  std::string group;    // cases are summarised per group (default: source up to its first ',')
  std::string model;    // preset, path, or inline JSON text
  std::string cluster;  // preset, path, or inline JSON text
  std::string profile;  // optional; default: the cluster's shipped profile
  std::int64_t num_gpus = 0;
  std::string plan;     // preset, path, or inline JSON text
  std::map<std::string, double> measured;  // step_time_s, tokens_per_s, tokens_per_s_per_gpu, tflops_per_gpu, mfu
  FlopsConvention flops_convention = FlopsConvention::kModel;
  double tolerance = 0.10;
  std::string pointer;  // JSON pointer of the case in its file
  // Plan settings the source does not state: per Megatron-LM argument name of the (inline) plan,
  // the values it could have had, as JSON text ("null": the argument left out). The plan's own
  // value is one of them; validate reports the range of predictions over every combination.
  std::vector<std::pair<std::string, std::vector<std::string>>> unstated;
};

// Combinations of unstated settings a case may ask validate to price.
inline constexpr std::size_t kMaxUnstatedSettings = 64;

struct ValidationSuite {
  std::string file;
  std::vector<ValidationCase> cases;
};

// The case's inline plan (JSON text) with combination `k` of its unstated settings: mixed radix
// over the settings' value lists, the first setting varying fastest.
std::string plan_with_unstated_setting(const ValidationCase& c, std::size_t k);

// Throws InputErrors naming the file and the pointer of every bad field.
ValidationSuite load_validation_cases(const std::string& path);

inline constexpr const char* kValidationMetrics[] = {"step_time_s", "tokens_per_s", "tokens_per_s_per_gpu",
                                                      "tflops_per_gpu", "mfu"};

}  // namespace clustersim
