#include "tools/mechanism_ledger.hpp"

#include <fmt/format.h>

namespace clustersim::cli {

MechanismLedger mechanism_ledger(const Mechanisms& on, double all_on_s,
                                 const std::function<double(const Mechanisms&)>& step_time_s) {
  std::vector<const MechanismName*> listed;
  Mechanisms m = on;
  for (const MechanismName& n : kMechanismNames) {
    if (on.*n.on) listed.push_back(&n);
    m.*n.on = false;
  }
  MechanismLedger ledger;
  ledger.all_on_s = all_on_s;
  ledger.all_off_s = listed.empty() ? all_on_s : step_time_s(m);
  double before = ledger.all_off_s;
  for (std::size_t i = 0; i < listed.size(); ++i) {
    m.*listed[i]->on = true;
    // The last one completes `on`: the reported run itself.
    const double after = i + 1 == listed.size() ? all_on_s : step_time_s(m);
    ledger.increments.push_back({listed[i]->name, after - before});
    before = after;
  }
  return ledger;
}

void print_mechanism_ledger(const MechanismLedger& ledger, std::ostream& out) {
  out << fmt::format("by mechanism {:.3f} s with every mechanism off, then turned on one at a time:\n", ledger.all_off_s);
  for (const MechanismIncrement& i : ledger.increments) {
    out << fmt::format("  {:<15} {:>+8.3f} s  {:>+6.2f} %\n", i.name, i.added_s, 100 * i.added_s / ledger.all_off_s);
  }
  out << fmt::format("  {:<15} {:>+8.3f} s  {:>+6.2f} %  = {:.3f} s\n", "all", ledger.all_on_s - ledger.all_off_s,
                     100 * (ledger.all_on_s / ledger.all_off_s - 1), ledger.all_on_s);
}

nlohmann::ordered_json mechanism_ledger_json(const MechanismLedger& ledger) {
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  for (const MechanismIncrement& i : ledger.increments) added.push_back({{"mechanism", i.name}, {"added_s", i.added_s}});
  return {{"all_off_step_time_s", ledger.all_off_s}, {"added_in_order", added}, {"step_time_s", ledger.all_on_s}};
}

}  // namespace clustersim::cli
