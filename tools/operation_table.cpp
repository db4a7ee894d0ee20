#include "tools/operation_table.hpp"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "tools/units_format.hpp"

namespace clustersim::cli {

namespace {

struct OperationRow {
  const char* list;  // forward, backward, step
  const WorkOp* op;
  PricedOp price;
};

std::string shape_of(const WorkOp& o) {
  switch (o.kind) {
    case OpKind::kGemm:
      return fmt::format("{}x{}x{}{} {}", o.gemm.m, o.gemm.n, o.gemm.k,
                         o.gemm.batch > 1 ? fmt::format(" (batch {})", o.gemm.batch) : "", to_string(o.dtype));
    case OpKind::kAttention: {
      const AttentionRecord& a = o.attention;
      return fmt::format("{} b{} h{}/{} {}x{} d{}{}", to_string(a.pass), a.batch, a.heads, a.kv_heads, a.seq_q,
                         a.seq_kv, a.head_dim, a.causal ? " causal" : "");
    }
    case OpKind::kMemoryBound: return human_bytes(o.bytes);
    case OpKind::kCollective:
    case OpKind::kMoeAllToAll:
      return fmt::format("{} {} over {} ranks, {} node(s)", o.kind == OpKind::kCollective ? to_string(o.collective) : "",
                         human_bytes(o.bytes), o.group_ranks, o.group_nodes);
  }
  return {};
}

std::vector<OperationRow> rows_of(const TrainingRun& run, const CostModel& costs) {
  const StageProgram& stage = run.workload.stages[bottleneck_stage(run.estimate)];
  std::vector<OperationRow> rows;
  auto add = [&](const char* list, const std::vector<WorkOp>& ops) {
    for (const WorkOp& o : ops) rows.push_back({list, &o, price_op(o, costs)});
  };
  add("forward", stage.forward);
  add("backward", stage.backward);
  add("step", stage.step);
  return rows;
}

}  // namespace

nlohmann::ordered_json operations_json(const TrainingRun& run, const CostModel& costs) {
  nlohmann::ordered_json ops = nlohmann::ordered_json::array();
  for (const OperationRow& r : rows_of(run, costs)) {
    const WorkOp& o = *r.op;
    ops.push_back({{"list", r.list},
                   {"phase", to_string(o.phase)},
                   {"name", o.name},
                   {"attributed_to", to_string(o.cost)},
                   {"shape", shape_of(o)},
                   {"count", o.count},
                   {"seconds_per_call", r.price.seconds},
                   {"seconds", r.price.seconds * static_cast<double>(o.count)},
                   {"basis", r.price.basis},
                   {"extrapolated", r.price.extrapolated},
                   {"roofline_default", r.price.roofline_default}});
  }
  return {{"pipeline_stage", bottleneck_stage(run.estimate)}, {"operations", ops}};
}

void print_operations_table(const TrainingRun& run, const CostModel& costs, std::ostream& out) {
  const std::vector<OperationRow> rows = rows_of(run, costs);
  out << fmt::format("\noperations of pipeline stage {} (the bottleneck), one micro-batch; step ops once per "
                     "iteration; before overlap\n",
                     bottleneck_stage(run.estimate));
  out << fmt::format("{:<9} {:<10} {:<22} {:<44} {:>5} {:>10} {:>10}  {}\n", "list", "phase", "name", "shape",
                     "count", "ms/call", "ms", "basis");
  for (const OperationRow& r : rows) {
    const WorkOp& o = *r.op;
    std::string flags = std::string(r.price.extrapolated ? " [extrapolated]" : "") +
                        (r.price.roofline_default ? " [roofline default]" : "");
    out << fmt::format("{:<9} {:<10} {:<22} {:<44} {:>5} {:>10.4f} {:>10.3f}  {}{}\n", r.list, to_string(o.phase),
                       o.name, shape_of(o), o.count, 1e3 * r.price.seconds,
                       1e3 * r.price.seconds * static_cast<double>(o.count), r.price.basis, flags);
  }
}

}  // namespace clustersim::cli
