// SimGrid platforms for clustersim: the rail-optimized fat-tree as a custom routing zone and
// the flat star oracle. Part of the SimGrid adapter (the only files including SimGrid headers).
#include <simgrid/kernel/routing/NetPoint.hpp>
#include <simgrid/kernel/routing/NetZoneImpl.hpp>
#include <xbt/log.h>

#include <stdexcept>
#include <string>

#include "sim/platform/rail_fabric.hpp"
#include "sim/platform/simgrid_adapter.hpp"
#include "sim/platform/simgrid_adapter_internal.hpp"

namespace clustersim::sim {

namespace sg4 = simgrid::s4u;
namespace routing = simgrid::kernel::routing;

namespace {

// prefix + number, built by appending (GCC 12 warns spuriously on "x" + std::string).
std::string numbered(const char* prefix, std::int64_t n) {
  std::string name(prefix);
  name += std::to_string(n);
  return name;
}

constexpr double kHostSpeedFlops = 1e15;  // compute is simulated as sleeps; the speed is unused

// One zone holding every GPU host and every fabric link; a route is RailFabric::route mapped to
// SimGrid link objects, so routing costs O(1) per comm and the platform O(N) to build (the
// zone keeps no routing table). Host netpoint ids are their creation order = GPU rank.
class RailZone final : public routing::NetZoneImpl {
 public:
  RailZone(const std::string& name, const RailFabric& fabric) : NetZoneImpl(name), fabric_(fabric) {}
  std::vector<simgrid::kernel::resource::StandardLinkImpl*> links;  // by RailFabric link id

 protected:
  void get_local_route(const routing::NetPoint* src, const routing::NetPoint* dst, routing::Route* into,
                       double* latency) override {
    const FabricRoute r = fabric_.route(static_cast<std::int64_t>(src->id()),
                                        static_cast<std::int64_t>(dst->id()));
    for (std::int32_t i = 0; i < r.size; ++i) {
      into->link_list_.push_back(links[static_cast<std::size_t>(r.links[static_cast<std::size_t>(i)])]);
    }
    if (latency != nullptr) *latency += r.latency_s;
  }

 private:
  const RailFabric& fabric_;
};

}  // namespace

std::unique_ptr<sg4::Engine> start_engine() {
  if (sg4::Engine::is_initialized()) {
    throw std::logic_error("SimGrid allows one engine per process; a SimGrid session already exists");
  }
  char name[] = "clustersim";
#if defined(__SANITIZE_ADDRESS__)
  // Sanitizer builds only: AddressSanitizer cannot follow the raw contexts' stack switches
  // (false positives), so actors run on system threads (slower, same results). The factory is
  // chosen when the engine is constructed, hence on the command line.
  char factory[] = "--cfg=contexts/factory:thread";
  char* argv[] = {name, factory, nullptr};
  int argc = 2;
#else
  char* argv[] = {name, nullptr};
  int argc = 1;
#endif
  xbt_log_control_set("root.thresh:warning");
  auto engine = std::make_unique<sg4::Engine>(&argc, argv);
  // Model flags must be set before the first zone exists.
  sg4::Engine::set_config(NetworkModelConfig::kModel);
  sg4::Engine::set_config(NetworkModelConfig::kCrossTraffic);
  sg4::Engine::set_config(NetworkModelConfig::kTcpGamma);
  return engine;
}

SimgridPlatform build_star_zone(std::int64_t hosts, double bandwidth_bytes_per_s, double latency_s,
                                double loopback_bandwidth_bytes_per_s) {
  if (hosts < 1 || bandwidth_bytes_per_s <= 0 || latency_s < 0 || loopback_bandwidth_bytes_per_s <= 0) {
    throw std::invalid_argument("star platform needs hosts >= 1, bandwidths > 0, latency >= 0");
  }
  SimgridPlatform platform;
  platform.hosts.reserve(static_cast<std::size_t>(hosts));
  sg4::NetZone* zone = sg4::create_star_zone("star");
  sg4::Link* loopback = zone->create_link("loopback", loopback_bandwidth_bytes_per_s)
                            ->set_sharing_policy(sg4::Link::SharingPolicy::FATPIPE);
  for (std::int64_t i = 0; i < hosts; ++i) {
    sg4::Host* host = zone->create_host(numbered("h", i), kHostSpeedFlops);
    sg4::Link* link = zone->create_split_duplex_link(numbered("l", i), bandwidth_bytes_per_s)->set_latency(latency_s);
    zone->add_route(host->get_netpoint(), nullptr, nullptr, nullptr,
                    {sg4::LinkInRoute(link, sg4::LinkInRoute::Direction::UP)}, true);
    zone->add_route(host->get_netpoint(), host->get_netpoint(), nullptr, nullptr,
                    {sg4::LinkInRoute(loopback)}, false);
    platform.hosts.push_back(host);
  }
  zone->seal();
  return platform;
}

SimgridPlatform build_rail_zone(const RailFabric& fabric) {
  if (sg4::Engine::get_instance()->get_netzone_root() != nullptr) {
    throw std::logic_error("the rail zone must be the first (root) zone of the engine");
  }
  auto* zone = new RailZone("rail_fat_tree", fabric);  // the first zone becomes root; the engine owns it
  sg4::NetZone* iface = zone->get_iface();
  SimgridPlatform platform;
  platform.hosts.reserve(static_cast<std::size_t>(fabric.gpu_count()));
  for (std::int64_t g = 0; g < fabric.gpu_count(); ++g) {
    sg4::Host* host = iface->create_host(numbered("g", g), kHostSpeedFlops);
    if (host->get_netpoint()->id() != static_cast<unsigned long>(g)) {
      throw std::logic_error("rail zone: host netpoint ids must follow GPU ranks");
    }
    platform.hosts.push_back(host);
  }
  const auto n_links = static_cast<std::size_t>(fabric.link_count());
  platform.links.reserve(n_links);
  zone->links.reserve(n_links);
  for (std::size_t i = 0; i < n_links; ++i) {
    const auto id = static_cast<std::int32_t>(i);
    const FabricLink spec = fabric.link(id);
    sg4::Link* link = iface->create_link(fabric.link_name(id), spec.bandwidth_bytes_per_s)->set_latency(spec.latency_s);
    if (!spec.shared) link->set_sharing_policy(sg4::Link::SharingPolicy::FATPIPE);
    platform.links.push_back(link);
    zone->links.push_back(link->get_impl());
  }
  iface->seal();
  return platform;
}

}  // namespace clustersim::sim
