#pragma once
// `estimate --ops`: every operation of the bottleneck pipeline stage with its price, the fit
// that priced it and whether that price extrapolates or is a roofline default, so a user can
// see which kernels a prediction rests on.
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "models/cost/cost_model.hpp"
#include "tools/training_run.hpp"

namespace clustersim::cli {

nlohmann::ordered_json operations_json(const TrainingRun& run, const CostModel& costs);
void print_operations_table(const TrainingRun& run, const CostModel& costs, std::ostream& out);

// How the bottleneck stage's GEMM and attention calls were priced: inside their fit's measured
// range, outside it (the largest factor per input), or inside the range of the fit of another
// dtype (GEMMs) or pass, mask or head dimension (attention). `operations.coverage` of --ops.
nlohmann::ordered_json coverage_json(const TrainingRun& run, const CostModel& costs);
// The same on one line: "GEMM 147: 144 inside, 1 outside (m x3.00), 2 other fit; attention ...".
std::string coverage_line(const TrainingRun& run, const CostModel& costs);

}  // namespace clustersim::cli
