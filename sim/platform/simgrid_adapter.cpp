#include "sim/platform/simgrid_adapter.hpp"

#include <simgrid/s4u.hpp>
#include <xbt/config.hpp>

#include <algorithm>
#include <stdexcept>

#include "sim/platform/simgrid_adapter_internal.hpp"

namespace clustersim::sim {

namespace sg4 = simgrid::s4u;

struct SimgridSession::Impl {
  std::unique_ptr<sg4::Engine> engine;
  std::vector<sg4::Host*> hosts;
};

SimgridSession::SimgridSession() : impl_(std::make_unique<Impl>()) { impl_->engine = start_engine(); }

SimgridSession::~SimgridSession() = default;

void SimgridSession::build_star_platform(const StarPlatformSpec& spec) {
  impl_->hosts = build_star_zone(spec.hosts, spec.link_bandwidth_bytes_per_s, spec.link_latency_s,
                                 spec.link_bandwidth_bytes_per_s)
                     .hosts;
}

std::vector<double> SimgridSession::run_transfers(const std::vector<Transfer>& transfers) {
  std::vector<sg4::CommPtr> comms;
  comms.reserve(transfers.size());
  for (const auto& t : transfers) {
    if (t.src < 0 || t.dst < 0 || t.src >= static_cast<std::int64_t>(impl_->hosts.size()) ||
        t.dst >= static_cast<std::int64_t>(impl_->hosts.size()) || t.src == t.dst) {
      throw std::invalid_argument("transfer between unknown or identical hosts");
    }
    auto comm = sg4::Comm::sendto_init(impl_->hosts[static_cast<std::size_t>(t.src)],
                                       impl_->hosts[static_cast<std::size_t>(t.dst)]);
    comm->set_payload_size(static_cast<std::uint64_t>(t.bytes));
    comms.push_back(comm);
  }
  // Issue each transfer at its start time: run the clock forward in start order.
  std::vector<std::size_t> order(transfers.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return transfers[a].start_s < transfers[b].start_s;
  });
  for (std::size_t i : order) {
    if (transfers[i].start_s > sg4::Engine::get_clock()) impl_->engine->run_until(transfers[i].start_s);
    comms[i]->start();
  }
  impl_->engine->run();
  std::vector<double> finish;
  finish.reserve(comms.size());
  for (const auto& c : comms) finish.push_back(c->get_finish_time());
  return finish;
}

std::string SimgridSession::config_string(const std::string& key) const {
  return simgrid::config::get_value<std::string>(key);
}

double SimgridSession::config_double(const std::string& key) const {
  return simgrid::config::get_value<double>(key);
}

}  // namespace clustersim::sim
