#pragma once
// Reads a PyTorch profiler (Kineto) Chrome trace into collective and GEMM records.
//
// NCCL kernels (ncclKernel_* / ncclDevKernel_*, cat "kernel") become CollectiveRecords. Their
// collective, element counts ("In msg nelems", "Out msg nelems"), "dtype", "Group size" and
// "Process Group Ranks" come from the kernel's args, else from the record_param_comms CPU op
// that launched it. Size follows nccl-tests: max(in, out) elements x dtype bytes (the full
// buffer of all_reduce, the gathered output of all_gather, the input of reduce_scatter).
// Traces without that metadata (older PyTorch) fall back to the enclosing "nccl:<collective>"
// CPU op's first input tensor, with the group size taken as distributedInfo.world_size (the
// record label says so). Nodes: the distinct hosts of the group's ranks, assuming ranks are
// placed contiguously with as many per host as deviceProperties lists GPUs; else 1, noted in
// the label. Algorithm and protocol stay "any": kernel names do not tell which one ran.
//
// GEMM kernels become GemmRecords when the launching CPU op is aten::mm, aten::addmm,
// aten::bmm, aten::baddbmm or aten::matmul with recorded "Input Dims" (record_shapes=True);
// a sample is the summed duration of the kernels one op call launched, and ctas is the grid
// size of its longest kernel. A kernel's CPU op is found through its launch (the cuda_runtime
// event with the same correlation id) and the CPU ops enclosing that launch on its thread.
// Identical shapes (and grids) are grouped so each record holds all their samples. "float"
// inputs count as tf32 when the kernel name says tf32 or s1688 (TF32 tensor-core MMA).
//
// System: deviceProperties (GPU name, SM count); distributedInfo (NCCL version, world size).
#include <nlohmann/json.hpp>
#include <string>

#include "models/cost/measurement_record.hpp"

namespace clustersim {

bool looks_like_kineto_trace(const nlohmann::json& doc);

// Throws InputErrors naming JSON pointers (e.g. /traceEvents/12/dur).
RecordSet read_kineto_trace(const nlohmann::json& doc, const std::string& file);

}  // namespace clustersim
