#pragma once
// Per-operation straggler traces of Megatron-style training jobs (one row per GPU operation:
// worker, step, op type, start and duration), as published with the OSDI'25 straggler
// what-if study, plus the job metadata that goes with them. Format: docs/straggler-traces.md.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clustersim::traces {

enum class StragglerOpType : std::uint8_t {
  kForwardCompute,
  kBackwardCompute,
  kForwardSend,
  kForwardRecv,
  kBackwardSend,
  kBackwardRecv,
  kParamsAllGather,
  kGradsReduceScatter,
  kSeparateGradsAllReduce,
  kLayernormGradsAllReduce,
  kEmbeddingGradsAllReduce,
  kOptimizerClipMainGrad,
  kOptimizer,
  kGc,
};
inline constexpr int kStragglerOpTypeCount = 14;

// The spelling used in the trace files, e.g. "forward-compute".
std::string_view op_type_name(StragglerOpType type);
std::optional<StragglerOpType> parse_op_type(std::string_view name);
// Every spelling, in enum order (for messages listing what is valid).
const std::array<std::string_view, kStragglerOpTypeCount>& op_type_names();

// Compute-like ops (forward/backward compute, gc, optimizer) take their type's mean duration in
// the ideal run; every other op is communication-like and takes its type's median.
bool is_compute_like(StragglerOpType type);
bool is_compute(StragglerOpType type);  // forward-compute or backward-compute
bool is_p2p(StragglerOpType type);      // the four pipeline send/receive types

// One row of the trace. Times are seconds as recorded (float32 in the source format).
struct StragglerOp {
  std::int64_t step = 0;
  double start_s = 0;
  double duration_s = 0;
  std::int32_t seq_id = 0;  // index among ops of this type on this worker in this step
  std::int32_t line = 0;    // line in the file, for messages
  std::int16_t rank = 0;
  std::int16_t gmc = -1;    // global model chunk; -1 where not applicable
  std::int8_t dp_rank = 0;
  std::int8_t stage = 0;
  std::int8_t mc = -1;      // model chunk within the stage; -1 where not applicable
  std::int8_t mb_id = -1;   // microbatch of a compute op; -1 elsewhere
  StragglerOpType optype = StragglerOpType::kForwardCompute;

  double end_s() const { return start_s + duration_s; }
};

struct StragglerTrace {
  std::string file;  // as named on the command line, for messages
  std::vector<StragglerOp> ops;
};

// Job layout. dsp_size is the context-parallel (Megatron "dsp") size.
struct StragglerJobMeta {
  std::string file;
  std::string trial_name;
  std::int64_t run_id = 0;
  int dp_size = 1;
  int dsp_size = 1;
  int pp_size = 1;
  int tp_size = 1;
  int vpp_size = 1;
  int world_size = 1;
};

}  // namespace clustersim::traces
