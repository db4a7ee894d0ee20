#pragma once
// The CPU backend: the calibration suites on this machine's cores, so that sweeps, timing,
// records, fitting and prediction are exercised for real where there is no GPU (CI). GEMMs run
// on Eigen, attention on the CPU reference kernels, collectives between threads through shared
// memory (thread_communicator.hpp). Timer: host_wall (steady_clock). A "GPU" is one rank
// thread on one CPU, as in calibrate replay: system.gpu is "cpu: <model name>", system.sm_count
// 1 (the threads one GEMM uses), system.gpus_per_node the rank threads (cpu_rank_threads).
#include <memory>
#include <vector>

#include "calibrate/backend.hpp"

namespace clustersim::calibrate {

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options);

// The suites, one file each (cpu_gemm.cpp, ...); records without source and label.
MeasurementRecord measure_cpu_gemm(const GemmCase& c, const BackendOptions& o);
MeasurementRecord measure_cpu_collective(const CollectiveCase& c, const BackendOptions& o);
MeasurementRecord measure_cpu_overlap(const OverlapCase& c, const BackendOptions& o);
std::vector<MeasurementRecord> measure_cpu_moe(const MoeCase& c, const BackendOptions& o);
MeasurementRecord measure_cpu_attention(const AttentionCase& c, const BackendOptions& o);
MeasurementRecord measure_cpu_memory(const MemoryCase& c, const BackendOptions& o);

// Rank threads the GEMM suite runs side by side: the hardware threads, at most 8 (the most
// ranks calibrate replay runs).
int cpu_rank_threads();

// Deterministic values in [-1, 1) for operands (an LCG; identical on every platform).
std::vector<float> cpu_operand(std::size_t count, std::uint64_t seed);

// One MoE layer on `ranks` threads (dispatch by all-to-all-v, per-expert GEMMs, combine), run
// once: y [tokens, ffn] for x [tokens, hidden] and w [experts, hidden, ffn]; for tests against
// kernels::moe_layer_reference.
std::vector<float> run_thread_moe_layer(const kernels::MoeRouting& routing, int ranks,
                                        std::int64_t hidden, std::int64_t ffn,
                                        const std::vector<float>& x, const std::vector<float>& w);

// One chunked overlapped AG+GEMM or GEMM+RS on c.ranks threads, run once: each rank's output
// ([m, n/R] for AG+GEMM, [m/R, n] for GEMM+RS), for tests against a plain GEMM.
std::vector<std::vector<float>> run_thread_overlap(const OverlapCase& c, bool overlapped);

}  // namespace clustersim::calibrate
