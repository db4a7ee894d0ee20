#pragma once
// --by-mechanism (estimate, simulate): what each loss mechanism adds to the step. The step is
// priced with every mechanism the user left on turned off, then with them turned on one at a
// time in kMechanismNames' order; each increment is charged to the mechanism just turned on, so
// the increments sum exactly to the difference between the all-off and the reported step (an
// interaction between two mechanisms lands on the later one).
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "models/planning/training_estimate.hpp"

namespace clustersim::cli {

struct MechanismIncrement {
  std::string name;
  double added_s = 0;
};

struct MechanismLedger {
  double all_off_s = 0;
  double all_on_s = 0;  // the reported step: every mechanism of `on` applied
  std::vector<MechanismIncrement> increments;
};

// `on`: the mechanisms of the reported run (those ablated stay off and are not listed);
// `all_on_s`: its step time; `step_time_s`: prices the step under other mechanisms (one more run
// each: one with all off, one per listed mechanism but the last).
MechanismLedger mechanism_ledger(const Mechanisms& on, double all_on_s,
                                 const std::function<double(const Mechanisms&)>& step_time_s);

void print_mechanism_ledger(const MechanismLedger& ledger, std::ostream& out);
nlohmann::ordered_json mechanism_ledger_json(const MechanismLedger& ledger);

}  // namespace clustersim::cli
