#include "simgrid_adapter.hpp"

#include <simgrid/s4u.hpp>
#include <xbt/config.hpp>
#include <xbt/log.h>

#include <stdexcept>

namespace clustersim::sim {

namespace sg4 = simgrid::s4u;

struct SimgridSession::Impl {
  std::unique_ptr<sg4::Engine> engine;
  std::vector<sg4::Host*> hosts;
};

SimgridSession::SimgridSession() : impl_(std::make_unique<Impl>()) {
  if (sg4::Engine::is_initialized()) {
    throw std::logic_error("SimGrid allows one engine per process; a SimgridSession already exists");
  }
  int argc = 1;
  char name[] = "clustersim";
  char* argv[] = {name, nullptr};
  xbt_log_control_set("root.thresh:warning");
  impl_->engine = std::make_unique<sg4::Engine>(&argc, argv);
  // Model flags must be set before the first zone exists.
  sg4::Engine::set_config(NetworkModelConfig::kModel);
  sg4::Engine::set_config(NetworkModelConfig::kCrossTraffic);
  sg4::Engine::set_config(NetworkModelConfig::kTcpGamma);
}

SimgridSession::~SimgridSession() = default;

void SimgridSession::build_star_platform(const StarPlatformSpec& spec) {
  if (spec.hosts < 1 || spec.link_bandwidth_bytes_per_s <= 0 || spec.link_latency_s < 0) {
    throw std::invalid_argument("star platform needs hosts >= 1, bandwidth > 0, latency >= 0");
  }
  sg4::NetZone* zone = sg4::create_star_zone("star");
  for (std::int64_t i = 0; i < spec.hosts; ++i) {
    std::string id = std::to_string(i);
    sg4::Host* host = zone->create_host("h" + id, 1e15)->seal();
    sg4::Link* link = zone->create_split_duplex_link("l" + id, spec.link_bandwidth_bytes_per_s)
                          ->set_latency(spec.link_latency_s)
                          ->seal();
    zone->add_route(host->get_netpoint(), nullptr, nullptr, nullptr,
                    {sg4::LinkInRoute(link, sg4::LinkInRoute::Direction::UP)}, true);
    impl_->hosts.push_back(host);
  }
  zone->seal();
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
