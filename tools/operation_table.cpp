#include "tools/operation_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
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

// How the GEMMs or the attention kernels of the table were priced, in calls: inside the range of
// shapes their fit measured, outside it (the largest factor per input), or by a fit of another
// dtype, pass, mask or head dimension with every input inside its range.
struct Coverage {
  std::int64_t calls = 0, inside = 0, outside = 0, derived = 0;
  std::map<std::string, double> largest;  // input -> largest factor outside the measured range

  void add(const OperationRow& r) {
    const std::int64_t n = r.op->count;
    calls += n;
    if (!r.price.outside_range.empty()) {
      outside += n;
      for (const RangeExcess& e : r.price.outside_range) {
        double& f = largest[e.variable];
        f = std::max(f, e.ratio());
      }
    } else if (r.price.extrapolated) {
      derived += n;
    } else {
      inside += n;
    }
  }
  std::string factors() const {
    std::string out;
    for (const auto& [variable, factor] : largest) {
      out += fmt::format("{}{} up to x{:.2f}", out.empty() ? "" : ", ", variable, factor);
    }
    return out;
  }
  nlohmann::ordered_json json() const {
    nlohmann::ordered_json f = nlohmann::ordered_json::object();
    for (const auto& [variable, factor] : largest) f[variable] = factor;
    return {{"calls", calls}, {"inside", inside}, {"outside_range", outside}, {"derived", derived},
            {"largest_factor_outside", f}};
  }
};

// GEMMs first, then attention; a kind the table has no call of is left out.
std::vector<std::pair<std::string, Coverage>> coverage_of(const std::vector<OperationRow>& rows) {
  Coverage gemm, attention;
  for (const OperationRow& r : rows) {
    if (r.op->kind == OpKind::kGemm) gemm.add(r);
    if (r.op->kind == OpKind::kAttention) attention.add(r);
  }
  std::vector<std::pair<std::string, Coverage>> c;
  if (gemm.calls > 0) c.emplace_back("gemm", gemm);
  if (attention.calls > 0) c.emplace_back("attention", attention);
  return c;
}

}  // namespace

nlohmann::ordered_json operations_json(const TrainingRun& run, const CostModel& costs) {
  nlohmann::ordered_json ops = nlohmann::ordered_json::array();
  const std::vector<OperationRow> rows = rows_of(run, costs);
  for (const OperationRow& r : rows) {
    const WorkOp& o = *r.op;
    nlohmann::ordered_json outside = nlohmann::ordered_json::array();
    for (const RangeExcess& e : r.price.outside_range) {
      outside.push_back({{"variable", e.variable}, {"value", e.value}, {"measured_bound", e.bound}, {"factor", e.ratio()}});
    }
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
                   {"outside_range", outside},
                   {"roofline_default", r.price.roofline_default}});
  }
  return {{"pipeline_stage", bottleneck_stage(run.estimate)}, {"operations", ops}, {"coverage", coverage_json(run, costs)}};
}

nlohmann::ordered_json coverage_json(const TrainingRun& run, const CostModel& costs) {
  nlohmann::ordered_json coverage = nlohmann::ordered_json::object();
  for (const auto& [kind, c] : coverage_of(rows_of(run, costs))) coverage[kind] = c.json();
  return coverage;
}

std::string coverage_line(const TrainingRun& run, const CostModel& costs) {
  std::string out;
  for (const auto& [kind, c] : coverage_of(rows_of(run, costs))) {
    out += fmt::format("{}{} {}: {} inside, {} outside{}, {} other fit", out.empty() ? "" : "; ",
                       kind == "gemm" ? "GEMM" : kind, c.calls, c.inside, c.outside,
                       c.largest.empty() ? "" : fmt::format(" ({})", c.factors()), c.derived);
  }
  return out;
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
    std::string flags =
        std::string(!r.price.outside_range.empty()
                        ? fmt::format(" [extrapolated: {}]", describe(r.price.outside_range))
                        : (r.price.extrapolated ? " [extrapolated]" : "")) +
        (r.price.roofline_default ? " [roofline default]" : "");
    out << fmt::format("{:<9} {:<10} {:<22} {:<44} {:>5} {:>10.4f} {:>10.3f}  {}{}\n", r.list, to_string(o.phase),
                       o.name, shape_of(o), o.count, 1e3 * r.price.seconds,
                       1e3 * r.price.seconds * static_cast<double>(o.count), r.price.basis, flags);
  }
  for (const auto& [kind, c] : coverage_of(rows)) {
    out << fmt::format("{} calls: {}, {} inside their fit's measured range, {} outside it{}, {} inside the range of the fit of another {}\n",
                       kind == "gemm" ? "GEMM" : kind, c.calls, c.inside, c.outside,
                       c.largest.empty() ? "" : fmt::format(" ({})", c.factors()), c.derived,
                       kind == "gemm" ? "dtype" : "pass, mask or head dimension");
  }
}

}  // namespace clustersim::cli
