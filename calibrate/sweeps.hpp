#pragma once
// Sweep definitions, one file per suite (gemm_sweep.cpp, collective_sweep.cpp,
// overlap_sweep.cpp, moe_sweep.cpp, attention_sweep.cpp, memory_sweep.cpp). Shapes come from model presets
// (models/: ModelSpec and layer_shapes) at the requested tensor-parallel sizes, plus ramps
// that expose tile and wave quantisation. Pure C++; labels are unique and deterministic.
#include <vector>

#include "models/inputs/model_spec.hpp"
#include "calibrate/sweep_case.hpp"

namespace clustersim::calibrate {

std::vector<SweepCase> gemm_sweep(const SweepOptions& options);
std::vector<SweepCase> collective_sweep(const SweepOptions& options);
std::vector<SweepCase> overlap_sweep(const SweepOptions& options);
std::vector<SweepCase> moe_sweep(const SweepOptions& options);
std::vector<SweepCase> attention_sweep(const SweepOptions& options);
std::vector<SweepCase> memory_sweep(const SweepOptions& options);

// The suites' sweeps concatenated, in the order given. Throws std::invalid_argument when two
// cases share a label.
std::vector<SweepCase> build_sweep(const std::vector<Suite>& suites, const SweepOptions& options);

// A tensor-parallel GEMM of one layer: column-parallel linears of a role fused (QKV, gate+up)
// with their output split, row-parallel ones (o_proj, down) with their input split.
struct LayerGemm {
  std::string name;  // "qkv", "o_proj", "gate_up", "down"
  std::int64_t n = 0, k = 0;
};
std::vector<LayerGemm> tensor_parallel_gemms(const ModelSpec& model, int tensor_parallel);

// Loads a model preset by name (or file); throws InputErrors like every other input.
ModelSpec load_sweep_model(const std::string& name);

}  // namespace clustersim::calibrate
