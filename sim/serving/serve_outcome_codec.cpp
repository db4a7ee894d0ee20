#include "sim/serving/serve_outcome_codec.hpp"

#include <cstring>
#include <stdexcept>
#include <type_traits>

namespace clustersim::sim {

namespace {

struct Out {
  std::string bytes;
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& v) {
    pod(v.size());
    bytes.append(v);
  }
};

struct In {
  const std::string& bytes;
  std::size_t at = 0;
  void take(void* to, std::size_t n) {
    if (at + n > bytes.size()) throw std::runtime_error("truncated serving outcome from the simulation process");
    std::memcpy(to, bytes.data() + at, n);
    at += n;
  }
  template <class T>
  T pod() {
    T v;
    take(&v, sizeof v);
    return v;
  }
  std::string str() {
    std::string v(pod<std::size_t>(), '\0');
    take(v.data(), v.size());
    return v;
  }
};

}  // namespace

std::string encode_outcome(const ServeOutcome& o, const traces::ChromeTraceWriter* trace) {
  Out out;
  out.pod(o.requests.size());
  out.bytes.append(reinterpret_cast<const char*>(o.requests.data()), o.requests.size() * sizeof(RequestOutcome));
  out.pod(o.pools.size());
  for (const PoolOutcome& p : o.pools) {
    out.str(p.name);
    out.pod(p.role);
    out.pod(p.instances);
    out.pod(p.gpus);
    out.pod(p.busy_share);
    out.pod(p.kv_utilisation_mean);
    out.pod(p.kv_utilisation_peak);
    out.pod(p.kv_blocks_per_instance);
    out.pod(p.iterations);
    out.pod(p.mean_batch_tokens);
    out.pod(p.afd_closed_form_s);
    out.pod(p.afd_event_level_s);
    out.pod(p.afd_micro_batches);
    out.pod(p.measured_fits.size());
    for (const auto& f : p.measured_fits) out.str(f);
  }
  out.pod(o.makespan_s);
  out.pod(o.preemptions);
  out.pod(o.gpus);
  out.pod(o.kv_transfer_s_mean);
  out.pod(o.kv_transfers);
  out.pod(o.prefix_hit_share);
  out.pod(o.wall_s);
  out.pod(o.network);
  out.pod(o.flows);
  out.pod(o.fabric_gpus);
  out.pod(o.kv_transfer_slowdown_mean);
  out.pod(o.background_rounds);
  out.pod(o.background_round_s_mean);
  const auto spans = trace ? trace->spans() : std::vector<traces::TraceSpan>{};
  out.pod(spans.size());
  for (const auto& s : spans) {
    out.pod(s.pid);
    out.pod(s.tid);
    out.str(s.name);
    out.str(s.category);
    out.pod(s.start_s);
    out.pod(s.duration_s);
    out.pod(s.args.size());
    for (const auto& [k, v] : s.args) {
      out.str(k);
      out.str(v);
    }
  }
  const auto processes = trace ? trace->process_names() : std::map<std::int64_t, std::string>{};
  out.pod(processes.size());
  for (const auto& [pid, name] : processes) {
    out.pod(pid);
    out.str(name);
  }
  const auto threads =
      trace ? trace->thread_names() : std::map<std::pair<std::int64_t, std::int64_t>, std::string>{};
  out.pod(threads.size());
  for (const auto& [key, name] : threads) {
    out.pod(key.first);
    out.pod(key.second);
    out.str(name);
  }
  return std::move(out.bytes);
}

ServeOutcome decode_outcome(const std::string& bytes, traces::ChromeTraceWriter* trace) {
  In in{bytes};
  ServeOutcome o;
  o.requests.resize(in.pod<std::size_t>());
  in.take(o.requests.data(), o.requests.size() * sizeof(RequestOutcome));
  o.pools.resize(in.pod<std::size_t>());
  for (PoolOutcome& p : o.pools) {
    p.name = in.str();
    p.role = in.pod<PoolRole>();
    p.instances = in.pod<std::int64_t>();
    p.gpus = in.pod<std::int64_t>();
    p.busy_share = in.pod<double>();
    p.kv_utilisation_mean = in.pod<double>();
    p.kv_utilisation_peak = in.pod<double>();
    p.kv_blocks_per_instance = in.pod<std::int64_t>();
    p.iterations = in.pod<std::int64_t>();
    p.mean_batch_tokens = in.pod<double>();
    p.afd_closed_form_s = in.pod<double>();
    p.afd_event_level_s = in.pod<double>();
    p.afd_micro_batches = in.pod<std::int64_t>();
    p.measured_fits.resize(in.pod<std::size_t>());
    for (auto& f : p.measured_fits) f = in.str();
  }
  o.makespan_s = in.pod<double>();
  o.preemptions = in.pod<std::int64_t>();
  o.gpus = in.pod<std::int64_t>();
  o.kv_transfer_s_mean = in.pod<double>();
  o.kv_transfers = in.pod<std::int64_t>();
  o.prefix_hit_share = in.pod<double>();
  o.wall_s = in.pod<double>();
  o.network = in.pod<ServeNetworkMode>();
  o.flows = in.pod<std::int64_t>();
  o.fabric_gpus = in.pod<std::int64_t>();
  o.kv_transfer_slowdown_mean = in.pod<double>();
  o.background_rounds = in.pod<std::int64_t>();
  o.background_round_s_mean = in.pod<double>();
  const auto spans = in.pod<std::size_t>();
  for (std::size_t i = 0; i < spans; ++i) {
    traces::TraceSpan s;
    s.pid = in.pod<std::int64_t>();
    s.tid = in.pod<std::int64_t>();
    s.name = in.str();
    s.category = in.str();
    s.start_s = in.pod<double>();
    s.duration_s = in.pod<double>();
    const auto args = in.pod<std::size_t>();
    for (std::size_t a = 0; a < args; ++a) {
      std::string k = in.str();
      s.args[k] = in.str();
    }
    if (trace) trace->add_span(std::move(s));
  }
  const auto processes = in.pod<std::size_t>();
  for (std::size_t i = 0; i < processes; ++i) {
    const auto pid = in.pod<std::int64_t>();
    std::string name = in.str();
    if (trace) trace->name_process(pid, std::move(name));
  }
  const auto threads = in.pod<std::size_t>();
  for (std::size_t i = 0; i < threads; ++i) {
    const auto pid = in.pod<std::int64_t>();
    const auto tid = in.pod<std::int64_t>();
    std::string name = in.str();
    if (trace) trace->name_thread(pid, tid, std::move(name));
  }
  if (in.at != bytes.size()) throw std::runtime_error("serving outcome from the simulation process has trailing bytes");
  return o;
}

}  // namespace clustersim::sim
