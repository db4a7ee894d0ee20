#include "kernels/gemm_run.hpp"

#include <algorithm>
#include <stdexcept>

#include "kernels/cublaslt_gemm.hpp"

namespace clustersim::kernels {

KernelRun run_gemm(const GemmShape& shape, const TimingOptions& options) {
  KernelRun run;
  run.operation = "gemm";
  if (options.verify) {
    // Same dtype, small sizes that keep the shape's alignment (FP8 needs multiples of 16).
    const GemmShape small{std::min<std::int64_t>(shape.m, 128), std::min<std::int64_t>(shape.n, 96),
                          std::min<std::int64_t>(shape.k, 256), shape.dtype};
    run.verification_error = verify_gemm_against_reference(small, options.first_device);
    if (run.verification_error > gemm_verification_tolerance(shape.dtype)) {
      throw std::runtime_error("GEMM " + to_string(small) + " differs from the CPU reference by " +
                               std::to_string(run.verification_error) + ": not timing it");
    }
  }
  GemmTimingOptions timing_options;
  timing_options.warmup_iterations = options.warmup_iterations;
  timing_options.iterations = options.iterations;
  timing_options.device = options.first_device;
  const GemmTiming timing = time_gemm(shape, timing_options);
  run.samples_s = timing.samples_s;
  run.timer = "cuda_event";
  run.l2 = "rotate";
  run.attributes = {{"algo_id", static_cast<double>(timing.algo_id)},
                    {"tile_id", static_cast<double>(timing.tile_id)},
                    {"stages_id", static_cast<double>(timing.stages_id)},
                    {"split_k", static_cast<double>(timing.split_k_count)},
                    {"cluster_shape_id", static_cast<double>(timing.cluster_shape_id)},
                    {"heuristic_waves", timing.heuristic_waves},
                    {"buffer_copies", static_cast<double>(timing.buffer_copies)},
                    {"cublaslt_version", static_cast<double>(timing.cublaslt_version)}};
  return run;
}

}  // namespace clustersim::kernels
