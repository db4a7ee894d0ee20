#pragma once
// `estimate --ops`: every operation of the bottleneck pipeline stage with its price, the fit
// that priced it and whether that price extrapolates or is a roofline default, so a user can
// see which kernels a prediction rests on.
#include <nlohmann/json.hpp>
#include <ostream>

#include "models/cost/cost_model.hpp"
#include "tools/training_run.hpp"

namespace clustersim::cli {

nlohmann::ordered_json operations_json(const TrainingRun& run, const CostModel& costs);
void print_operations_table(const TrainingRun& run, const CostModel& costs, std::ostream& out);

}  // namespace clustersim::cli
