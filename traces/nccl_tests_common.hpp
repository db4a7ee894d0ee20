#pragma once
// What the nccl-tests stdout and -J JSON readers share: binary names, dtype names, the NCCL
// version code, pinned NCCL_ALGO / NCCL_PROTO, and the busbw cross-check that catches a
// wrongly mapped column or a wrong rank count.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "models/cost/measurement_record.hpp"

namespace clustersim {

// "all_reduce_perf", "./build/all_gather_perf_mpi", "/opt/nccl-tests/alltoall_perf" -> kind.
// Binaries without a CollectiveKind (gather, scatter, alltoallv, hypercube) give nullopt.
std::optional<CollectiveKind> collective_from_nccl_tests_binary(std::string_view program);
// True when `token` names any nccl-tests binary, known to us or not ("gather_perf").
bool looks_like_nccl_tests_binary(std::string_view token);
// Collective named by a file name ("all_gather_8xh100.log" -> all_gather), for logs that
// name no binary.
std::optional<CollectiveKind> collective_from_file_name(std::string_view file_name);
// Hint listing what names a collective.
std::string nccl_tests_binary_hint();

// nccl-tests type names to ours: float -> fp32, half -> fp16, bfloat16 -> bf16,
// double -> fp64, f8e4m3 / f8e5m2 -> fp8; integer types keep their name (int8, uint8, ...).
std::string normalize_nccl_tests_dtype(std::string_view type);

// NCCL_VERSION_CODE (22703, or 2803 before 2.9) -> "2.27.3".
std::string nccl_version_from_code(long code);

// Keeps NCCL_* and CUDA_* assignments ("NCCL_ALGO=Ring", quotes stripped) in `env`.
// Returns false when `assignment` is not one.
bool collect_nccl_env(std::string_view assignment, std::map<std::string, std::string>& env);

// Sets algorithm / protocol when NCCL_ALGO / NCCL_PROTO pin exactly one value.
void apply_pinned_nccl_env(const std::map<std::string, std::string>& env, CollectiveRecord& c);

// Compares a printed bandwidth (GB/s = 1e9 B/s) with ours from size and time:
// bus bandwidth when `bus` is true, algorithm bandwidth otherwise. The printed value may be
// off by 2 % plus its own rounding (`printed_resolution`) plus the time's rounding
// (`time_resolution_us`). Returns a message when they disagree.
struct PrintedBandwidth {
  double size_bytes = 0;
  double time_us = 0;
  double time_resolution_us = 0;
  double gbps = 0;
  double printed_resolution = 0;
};
std::optional<std::string> bandwidth_mismatch(CollectiveKind kind, int ranks, bool bus,
                                              const PrintedBandwidth& printed);
// Hint for a bandwidth mismatch.
std::string bandwidth_mismatch_hint();

}  // namespace clustersim
