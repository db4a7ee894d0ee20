#include "sim/platform/network_simulation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "sim/platform/simgrid_adapter.hpp"

namespace clustersim::sim {

namespace {

std::uint32_t index32(std::size_t v) { return static_cast<std::uint32_t>(v); }

SimgridNetwork::Platform backend_platform(PlatformKind kind) {
  return kind == PlatformKind::kRailFatTree ? SimgridNetwork::Platform::kRailZone
                                            : SimgridNetwork::Platform::kFlatStar;
}

}  // namespace

NetworkSimulation::NetworkSimulation(const ClusterSpec& cluster, std::int64_t gpus, PlatformKind kind,
                                     std::uint64_t ecmp_seed)
    : fabric_(cluster, gpus, ecmp_seed), kind_(kind) {
  if (gpus > std::numeric_limits<std::int32_t>::max()) {
    throw std::invalid_argument("more GPUs than 32-bit ranks can number");
  }
  network_ = std::make_unique<SimgridNetwork>(fabric_, backend_platform(kind));
  rank_slowdown_.assign(static_cast<std::size_t>(gpus), 1.0);
  if (kind == PlatformKind::kRailFatTree) {
    link_scale_.assign(static_cast<std::size_t>(fabric_.link_count()), 1.0);
    link_bytes_.assign(static_cast<std::size_t>(fabric_.link_count()), 0.0);
  }
}

NetworkSimulation::~NetworkSimulation() = default;

double NetworkSimulation::now_s() const { return network_->now_s(); }

void NetworkSimulation::check_rank(std::int64_t rank) const {
  if (rank < 0 || rank >= fabric_.gpu_count()) {
    throw std::invalid_argument("rank " + std::to_string(rank) + " outside 0.." +
                                std::to_string(fabric_.gpu_count() - 1));
  }
}

LaneId NetworkSimulation::add_lane(std::int64_t home_gpu) {
  check_rank(home_gpu);
  lane_home_.push_back(static_cast<std::int32_t>(home_gpu));
  return static_cast<LaneId>(lane_home_.size() - 1);
}

ActivityId NetworkSimulation::push_activity(LaneId lane, std::size_t phase_begin, std::size_t flow_begin,
                                            std::span<const ActivityId> deps) {
  const auto id = static_cast<ActivityId>(activities_.size());
  const bool lane_ok = lane >= 0 && static_cast<std::size_t>(lane) < lane_home_.size();
  const bool deps_ok = std::all_of(deps.begin(), deps.end(), [id](ActivityId d) { return d >= 0 && d < id; });
  if (!lane_ok || !deps_ok) {
    phases_.resize(phase_begin);  // leave no orphan phases or flows behind
    flows_.resize(flow_begin);
    throw std::invalid_argument(lane_ok ? "a dependency must be an activity added earlier"
                                        : "unknown lane " + std::to_string(lane));
  }
  Activity a;
  a.lane = lane;
  a.phase_begin = index32(phase_begin);
  a.phase_end = index32(phases_.size());
  a.dep_begin = index32(deps_.size());
  for (ActivityId d : deps) {
    if (d >= first_pending_) deps_.push_back(d);  // finished ones are met already
  }
  a.dep_end = index32(deps_.size());
  activities_.push_back(a);
  return id;
}

ActivityId NetworkSimulation::add_flows(LaneId lane, std::span<const Flow> flows, double then_sleep_s,
                                        std::span<const ActivityId> deps) {
  if (then_sleep_s < 0 || !std::isfinite(then_sleep_s)) throw std::invalid_argument("sleep must be >= 0");
  for (const Flow& f : flows) {
    check_rank(f.src);
    check_rank(f.dst);
    if (!(f.bytes >= 0) || !std::isfinite(f.bytes)) throw std::invalid_argument("flow bytes must be >= 0");
  }
  const std::size_t phase_begin = phases_.size(), flow_begin = flows_.size();
  for (const Flow& f : flows) {
    flows_.push_back({static_cast<std::int32_t>(f.src), static_cast<std::int32_t>(f.dst), f.bytes});
  }
  phases_.push_back({index32(flow_begin), index32(flows_.size()), then_sleep_s});
  return push_activity(lane, phase_begin, flow_begin, deps);
}

ActivityId NetworkSimulation::add_transfer(LaneId lane, std::int64_t src, std::int64_t dst, double bytes,
                                           std::span<const ActivityId> deps) {
  const Flow f{src, dst, bytes};
  return add_flows(lane, std::span<const Flow>(&f, 1), 0.0, deps);
}

double NetworkSimulation::hop_latency_s(std::span<const std::int64_t> group) const {
  double worst = 0;
  for (std::size_t i = 0; i < group.size(); ++i) {
    const std::int64_t src = group[i], dst = group[(i + 1) % group.size()];
    const double lat = kind_ == PlatformKind::kRailFatTree || src == dst
                           ? fabric_.route(src, dst).latency_s
                           : fabric_.cross_leaf_latency_s();
    worst = std::max(worst, lat);
  }
  return worst;
}

ActivityId NetworkSimulation::add_ring_collective(LaneId lane, RingCollective kind,
                                                  std::span<const std::int64_t> group, double bytes_per_rank,
                                                  std::span<const ActivityId> deps, RingEncoding encoding) {
  for (std::int64_t r : group) check_rank(r);
  if (!(bytes_per_rank >= 0) || !std::isfinite(bytes_per_rank)) throw std::invalid_argument("bytes must be >= 0");
  if (group.size() < 2) return add_delay(lane, 0.0, deps);
  const std::size_t phase_begin = phases_.size(), flow_begin = flows_.size();
  append_ring(kind, encoding, group, bytes_per_rank, hop_latency_s(group), phases_, flows_);
  return push_activity(lane, phase_begin, flow_begin, deps);
}

ActivityId NetworkSimulation::add_all_to_all(LaneId lane, std::span<const std::int64_t> group,
                                             double bytes_per_rank, std::span<const ActivityId> deps) {
  for (std::int64_t r : group) check_rank(r);
  if (!(bytes_per_rank >= 0) || !std::isfinite(bytes_per_rank)) throw std::invalid_argument("bytes must be >= 0");
  if (group.size() < 2) return add_delay(lane, 0.0, deps);
  const std::size_t phase_begin = phases_.size(), flow_begin = flows_.size();
  append_all_to_all(fabric_, group, bytes_per_rank, phases_, flows_);
  return push_activity(lane, phase_begin, flow_begin, deps);
}

ActivityId NetworkSimulation::add_compute(LaneId lane, std::int64_t rank, double seconds,
                                          std::span<const ActivityId> deps) {
  check_rank(rank);
  return add_delay(lane, seconds * rank_slowdown_[static_cast<std::size_t>(rank)], deps);
}

ActivityId NetworkSimulation::add_delay(LaneId lane, double seconds, std::span<const ActivityId> deps) {
  return add_flows(lane, {}, seconds, deps);
}

void NetworkSimulation::set_not_before(ActivityId activity, double t_s) {
  if (activity < first_pending_ || activity >= activity_count()) {
    throw std::invalid_argument("set_not_before: activity " + std::to_string(activity) + " is not pending");
  }
  activities_[static_cast<std::size_t>(activity)].not_before_s = t_s;
}

void NetworkSimulation::add_dependency(ActivityId before, ActivityId after) {
  if (after < first_pending_ || after >= activity_count() || before < 0 || before >= activity_count() ||
      before == after) {
    throw std::invalid_argument("add_dependency: " + std::to_string(before) + " -> " + std::to_string(after) +
                                " needs two distinct activities, the second not yet run");
  }
  if (before >= first_pending_) extra_deps_.emplace_back(before, after);
}

void NetworkSimulation::fill_plan_deps(ExecutionPlan& plan) const {
  const std::size_t n = plan.activities.size();
  const auto local = [this](ActivityId a) { return static_cast<std::size_t>(a - first_pending_); };
  std::vector<std::uint32_t> begin(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) begin[i + 1] = plan.activities[i].dep_end - plan.activities[i].dep_begin;
  for (const auto& [before, after] : extra_deps_) ++begin[local(after) + 1];
  for (std::size_t i = 0; i < n; ++i) begin[i + 1] += begin[i];
  plan.deps.assign(begin[n], 0);
  std::vector<std::uint32_t> fill(begin.begin(), begin.end() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::uint32_t d = plan.activities[i].dep_begin; d < plan.activities[i].dep_end; ++d) {
      plan.deps[fill[i]++] = static_cast<std::int32_t>(local(deps_[d]));
    }
  }
  for (const auto& [before, after] : extra_deps_) {
    plan.deps[fill[local(after)]++] = static_cast<std::int32_t>(local(before));
  }
  for (std::size_t i = 0; i < n; ++i) {
    plan.activities[i].dep_begin = begin[i];
    plan.activities[i].dep_end = begin[i + 1];
  }
  if (extra_deps_.empty()) return;  // deps on earlier activities only: acyclic by construction
  // Kahn's algorithm over dependencies plus each lane's order.
  std::vector<std::uint32_t> indegree(n, 0), succ_begin(n + 1, 0);
  std::vector<std::int32_t> lane_last(static_cast<std::size_t>(plan.lane_count), -1), lane_next(n, -1);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::uint32_t d = begin[i]; d < begin[i + 1]; ++d) ++succ_begin[static_cast<std::size_t>(plan.deps[d]) + 1];
    indegree[i] = begin[i + 1] - begin[i];
    std::int32_t& last = lane_last[static_cast<std::size_t>(plan.activities[i].lane)];
    if (last >= 0) {
      lane_next[static_cast<std::size_t>(last)] = static_cast<std::int32_t>(i);
      ++indegree[i];
    }
    last = static_cast<std::int32_t>(i);
  }
  for (std::size_t i = 0; i < n; ++i) succ_begin[i + 1] += succ_begin[i];
  std::vector<std::int32_t> succ(succ_begin[n]);
  std::vector<std::uint32_t> succ_fill(succ_begin.begin(), succ_begin.end() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::uint32_t d = begin[i]; d < begin[i + 1]; ++d) {
      succ[succ_fill[static_cast<std::size_t>(plan.deps[d])]++] = static_cast<std::int32_t>(i);
    }
  }
  std::vector<std::int32_t> ready;
  for (std::size_t i = 0; i < n; ++i) {
    if (indegree[i] == 0) ready.push_back(static_cast<std::int32_t>(i));
  }
  std::size_t visited = 0;
  auto release = [&](std::int32_t j) {
    if (j >= 0 && --indegree[static_cast<std::size_t>(j)] == 0) ready.push_back(j);
  };
  while (!ready.empty()) {
    const auto i = static_cast<std::size_t>(ready.back());
    ready.pop_back();
    ++visited;
    for (std::uint32_t k = succ_begin[i]; k < succ_begin[i + 1]; ++k) release(succ[k]);
    release(lane_next[i]);
  }
  if (visited != n) {
    throw std::invalid_argument("activities wait on each other in a cycle (dependencies plus lane order)");
  }
}

void NetworkSimulation::scale_link_bandwidth(std::string_view link_name, double factor, double at_s) {
  if (kind_ != PlatformKind::kRailFatTree) {
    throw std::logic_error("link perturbations need the rail fat-tree platform");
  }
  if (!(factor > 0) || !std::isfinite(factor) || !std::isfinite(at_s)) {
    throw std::invalid_argument("a bandwidth factor must be > 0 (use fail_link for a dead link)");
  }
  const std::int32_t link = fabric_.find_link(link_name);
  if (link < 0) throw std::invalid_argument("no fabric link named '" + std::string(link_name) + "'");
  pending_changes_.push_back({link, fabric_.link(link).bandwidth_bytes_per_s * factor, at_s});
  link_scale_[static_cast<std::size_t>(link)] = factor;
}

void NetworkSimulation::fail_link(std::string_view link_name) {
  if (kind_ != PlatformKind::kRailFatTree) {
    throw std::logic_error("link perturbations need the rail fat-tree platform");
  }
  const std::int32_t link = fabric_.find_link(link_name);
  if (link < 0) throw std::invalid_argument("no fabric link named '" + std::string(link_name) + "'");
  failed_links_.push_back(link);
}

void NetworkSimulation::set_rank_slowdown(std::int64_t rank, double factor) {
  check_rank(rank);
  if (!(factor > 0) || !std::isfinite(factor)) throw std::invalid_argument("a slowdown factor must be > 0");
  rank_slowdown_[static_cast<std::size_t>(rank)] = factor;
}

void NetworkSimulation::add_background_flow(const Flow& flow, double start_s) {
  check_rank(flow.src);
  check_rank(flow.dst);
  if (!(flow.bytes >= 0) || !std::isfinite(start_s)) throw std::invalid_argument("bad background flow");
  background_.push_back({static_cast<std::int32_t>(flow.src), static_cast<std::int32_t>(flow.dst), flow.bytes});
  background_start_.push_back(start_s);
  background_finish_.push_back(std::numeric_limits<double>::quiet_NaN());
}

void NetworkSimulation::check_failed_links(const ExecutionPlan& plan) const {
  if (failed_links_.empty()) return;
  std::vector<char> failed(static_cast<std::size_t>(fabric_.link_count()), 0);
  for (std::int32_t l : failed_links_) failed[static_cast<std::size_t>(l)] = 1;
  auto crossing = [&](const PlanFlow& f) -> std::int32_t {
    const FabricRoute r = fabric_.route(f.src, f.dst);
    for (std::int32_t i = 0; i < r.size; ++i) {
      if (failed[static_cast<std::size_t>(r.links[static_cast<std::size_t>(i)])]) {
        return r.links[static_cast<std::size_t>(i)];
      }
    }
    return -1;
  };
  for (std::size_t a = 0; a < plan.activities.size(); ++a) {
    const PlanActivity& act = plan.activities[a];
    for (std::uint32_t p = act.phase_begin; p < act.phase_end; ++p) {
      for (std::uint32_t f = plan.phases[p].flow_begin; f < plan.phases[p].flow_end; ++f) {
        if (const std::int32_t l = crossing(plan.flows[f]); l >= 0) {
          throw NetworkFailure("activity " + std::to_string(static_cast<std::size_t>(first_pending_) + a) +
                               ": flow " + std::to_string(plan.flows[f].src) + " -> " +
                               std::to_string(plan.flows[f].dst) + " crosses failed link " +
                               fabric_.link_name(l));
        }
      }
    }
  }
  for (const PlanFlow& f : plan.background_flows) {
    if (const std::int32_t l = crossing(f); l >= 0) {
      throw NetworkFailure("background flow " + std::to_string(f.src) + " -> " + std::to_string(f.dst) +
                           " crosses failed link " + fabric_.link_name(l));
    }
  }
}

void NetworkSimulation::count_link_bytes(const std::vector<PlanFlow>& flows) {
  if (link_bytes_.empty()) return;
  for (const PlanFlow& f : flows) {
    const FabricRoute r = fabric_.route(f.src, f.dst);
    for (std::int32_t i = 0; i < r.size; ++i) {
      link_bytes_[static_cast<std::size_t>(r.links[static_cast<std::size_t>(i)])] += f.bytes;
    }
  }
}

void NetworkSimulation::run() {
  ExecutionPlan plan;
  plan.lane_count = static_cast<std::int32_t>(lane_home_.size());
  plan.lane_home_gpu = lane_home_;
  plan.activities.reserve(activities_.size() - static_cast<std::size_t>(first_pending_));
  for (std::size_t a = static_cast<std::size_t>(first_pending_); a < activities_.size(); ++a) {
    const Activity& src = activities_[a];
    plan.activities.push_back(
        {src.lane, src.phase_begin, src.phase_end, src.dep_begin, src.dep_end, src.not_before_s});
  }
  fill_plan_deps(plan);
  plan.phases = phases_;
  plan.flows = flows_;
  plan.background_flows.assign(background_.begin() + static_cast<std::ptrdiff_t>(first_pending_background_),
                               background_.end());
  plan.background_start_s.assign(
      background_start_.begin() + static_cast<std::ptrdiff_t>(first_pending_background_), background_start_.end());
  plan.bandwidth_changes = pending_changes_;
  check_failed_links(plan);

  std::vector<ActivityTiming> timings;
  std::vector<double> finish;
  network_->execute(plan, timings, finish);

  timings_.insert(timings_.end(), timings.begin(), timings.end());
  std::copy(finish.begin(), finish.end(),
            background_finish_.begin() + static_cast<std::ptrdiff_t>(first_pending_background_));
  count_link_bytes(plan.flows);
  count_link_bytes(plan.background_flows);
  flows_simulated_ = static_cast<std::int64_t>(plan.flows.size() + plan.background_flows.size());
  // Everything added so far has run; later activities index fresh phase/flow/dep arrays.
  first_pending_ = activity_count();
  first_pending_background_ = background_.size();
  phases_.clear();
  flows_.clear();
  deps_.clear();
  extra_deps_.clear();
  const double now = now_s();
  std::erase_if(pending_changes_, [now](const BandwidthChange& c) { return c.at_s <= now; });
}

ActivityTiming NetworkSimulation::timing(ActivityId activity) const {
  if (activity < 0 || static_cast<std::size_t>(activity) >= timings_.size()) {
    throw std::out_of_range("activity " + std::to_string(activity) + " has not run");
  }
  return timings_[static_cast<std::size_t>(activity)];
}

double NetworkSimulation::link_utilisation(std::int32_t link_id, double window_s) const {
  if (link_bytes_.empty() || window_s <= 0) return 0;
  const double bw = fabric_.link(link_id).bandwidth_bytes_per_s * link_scale_[static_cast<std::size_t>(link_id)];
  return link_bytes_[static_cast<std::size_t>(link_id)] / (bw * window_s);
}

}  // namespace clustersim::sim
