#include "sim/platform/live_network.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "sim/platform/simgrid_adapter.hpp"

namespace clustersim::sim {

LiveNetwork::LiveNetwork(const ClusterSpec& cluster, std::int64_t gpus, PlatformKind kind) : fabric_(cluster, gpus) {
  if (gpus > std::numeric_limits<std::int32_t>::max()) throw std::invalid_argument("more GPUs than 32-bit ranks can number");
  network_ = std::make_unique<SimgridLiveNetwork>(
      fabric_, kind == PlatformKind::kRailFatTree ? SimgridNetwork::Platform::kRailZone : SimgridNetwork::Platform::kFlatStar);
}

LiveNetwork::~LiveNetwork() = default;

double LiveNetwork::now_s() const { return network_->now_s(); }

std::int32_t LiveNetwork::add_periodic_ring(RingCollective kind, std::span<const std::int64_t> group,
                                            double bytes_per_rank, double start_s, double period_s) {
  for (std::int64_t r : group) {
    if (r < 0 || r >= fabric_.gpu_count()) throw std::invalid_argument("rank " + std::to_string(r) + " outside the fabric");
  }
  if (group.size() < 2 || !(bytes_per_rank > 0) || !(period_s > 0) || !(start_s >= 0)) {
    throw std::invalid_argument("a periodic ring needs 2+ ranks, bytes > 0, a period > 0 and a start >= 0");
  }
  double hop_latency = 0;
  for (std::size_t i = 0; i < group.size(); ++i) {
    hop_latency = std::max(hop_latency, fabric_.route(group[i], group[(i + 1) % group.size()]).latency_s);
  }
  PeriodicJob job;
  job.start_s = start_s;
  job.period_s = period_s;
  append_ring(kind, RingEncoding::kAggregated, group, bytes_per_rank, hop_latency, job.phases, job.flows);
  network_->add_periodic_job(job);
  return static_cast<std::int32_t>(network_->periodic_stats().size() - 1);
}

void LiveNetwork::run(const std::function<void()>& driver) { network_->run(driver); }

TransferId LiveNetwork::start(std::span<const Flow> flows, double at_s) {
  if (flows.empty()) throw std::invalid_argument("a transfer needs at least one flow");
  if (network_->flows_in_flight() == 0 && at_s > network_->now_s()) network_->advance(at_s);
  const auto id = static_cast<TransferId>(remaining_.size());
  remaining_.push_back(static_cast<std::int32_t>(flows.size()));
  for (const Flow& f : flows) {
    if (f.src < 0 || f.dst < 0 || f.src >= fabric_.gpu_count() || f.dst >= fabric_.gpu_count() || !(f.bytes >= 0)) {
      throw std::invalid_argument("flow " + std::to_string(f.src) + " -> " + std::to_string(f.dst) + " is outside the fabric");
    }
    const std::int64_t flow = network_->start_flow(
        {static_cast<std::int32_t>(f.src), static_cast<std::int32_t>(f.dst), f.bytes});
    if (flow != static_cast<std::int64_t>(flow_transfer_.size())) throw std::logic_error("flow ids out of order");
    flow_transfer_.push_back(id);
  }
  transfers_in_flight_++;
  return id;
}

TransferId LiveNetwork::advance(double until_s) {
  while (true) {
    const std::int64_t flow = network_->advance(until_s);
    if (flow < 0) return -1;
    const TransferId t = flow_transfer_[static_cast<std::size_t>(flow)];
    if (--remaining_[static_cast<std::size_t>(t)] == 0) {
      transfers_in_flight_--;
      return t;
    }
  }
}

std::vector<PeriodicJobStats> LiveNetwork::periodic_stats() const { return network_->periodic_stats(); }

double uncontended_flow_s(const RailFabric& fabric, std::int64_t src, std::int64_t dst, double bytes) {
  const FabricRoute r = fabric.route(src, dst);
  double bw = std::numeric_limits<double>::infinity();
  for (std::int32_t i = 0; i < r.size; ++i) {
    const FabricLink l = fabric.link(r.links[static_cast<std::size_t>(i)]);
    if (l.shared) bw = std::min(bw, l.bandwidth_bytes_per_s);
  }
  return r.latency_s + (std::isfinite(bw) ? bytes / bw : 0.0);
}

}  // namespace clustersim::sim
