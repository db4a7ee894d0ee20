#include "models/planning/moe_overlap_schedule.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <vector>

namespace clustersim {

double MoeLayerNodes::total_s() const {
  return attention_s + attention_wgrad_s + experts_s + experts_wgrad_s + dispatch_comm_s + dispatch_compute_s +
         combine_comm_s + combine_compute_s;
}

namespace {

struct Segment {
  bool collective = false;
  double seconds = 0;
};

struct Node {
  int stream = 0;  // 0 compute, 1 communication
  std::array<Segment, 2> segments{};
  int segment_count = 0;
  int waits_for = -1;  // the node whose event it waits on (-1: none)
};

class TwoStreams {
 public:
  int add(int stream, int waits_for, std::initializer_list<Segment> segments) {
    Node n;
    n.stream = stream;
    n.waits_for = waits_for;
    for (const Segment& s : segments) {
      if (s.seconds > 0) n.segments[static_cast<std::size_t>(n.segment_count++)] = s;
    }
    nodes_.push_back(n);
    queue_[static_cast<std::size_t>(stream)].push_back(static_cast<int>(nodes_.size()) - 1);
    return static_cast<int>(nodes_.size()) - 1;
  }

  // Runs both streams to the end; the time it takes.
  double run(int comm_sms, std::int64_t sm_count) const {
    const double shared = comm_sms > 0 && comm_sms < sm_count
                              ? static_cast<double>(sm_count - comm_sms) / static_cast<double>(sm_count)
                              : 1.0;
    std::vector<char> done(nodes_.size(), 0);
    std::array<std::size_t, 2> next{0, 0};
    std::array<int, 2> active{-1, -1}, segment{0, 0};
    std::array<double, 2> left{0, 0};
    double now = 0;
    for (;;) {
      for (std::size_t s = 0; s < 2; ++s) {
        // Start the stream's next node when the node it waits on is done (empty nodes pass).
        while (active[s] < 0 && next[s] < queue_[s].size()) {
          const int id = queue_[s][next[s]];
          const Node& n = nodes_[static_cast<std::size_t>(id)];
          if (n.waits_for >= 0 && !done[static_cast<std::size_t>(n.waits_for)]) break;
          ++next[s];
          if (n.segment_count == 0) {
            done[static_cast<std::size_t>(id)] = 1;
            continue;
          }
          active[s] = id;
          segment[s] = 0;
          left[s] = n.segments[0].seconds;
        }
      }
      if (active[0] < 0 && active[1] < 0) break;
      std::array<double, 2> rate{1.0, 1.0};
      if (active[0] >= 0 && active[1] >= 0) {
        const Segment& comm = nodes_[static_cast<std::size_t>(active[1])].segments[static_cast<std::size_t>(segment[1])];
        if (comm.collective) {
          rate[0] = shared;
        } else {
          rate = {0.5, 0.5};
        }
      }
      double dt = std::numeric_limits<double>::infinity();
      for (std::size_t s = 0; s < 2; ++s) {
        if (active[s] >= 0) dt = std::min(dt, left[s] / rate[s]);
      }
      now += dt;
      for (std::size_t s = 0; s < 2; ++s) {
        if (active[s] < 0) continue;
        left[s] -= dt * rate[s];
        if (left[s] > 1e-15 * std::max(1.0, now)) continue;
        const Node& n = nodes_[static_cast<std::size_t>(active[s])];
        if (++segment[s] < n.segment_count) {
          left[s] = n.segments[static_cast<std::size_t>(segment[s])].seconds;
        } else {
          done[static_cast<std::size_t>(active[s])] = 1;
          active[s] = -1;
        }
      }
    }
    return now;
  }

 private:
  std::vector<Node> nodes_;
  std::array<std::vector<int>, 2> queue_;
};

}  // namespace

double combined_chunk_s(const CombinedChunk& c) {
  constexpr int kCompute = 0, kComm = 1;
  const MoeLayerNodes& f = c.forward;
  const MoeLayerNodes& b = c.backward;
  const bool delay = c.delay_wgrad_compute;
  // Without delayed weight gradients each backward node computes its own.
  const double experts_b = b.experts_s + (delay ? 0.0 : b.experts_wgrad_s);
  const double attention_b = b.attention_s + (delay ? 0.0 : b.attention_wgrad_s);
  const double experts_f = f.experts_s, attention_f = f.attention_s;
  TwoStreams g;
  int forward_last = -1, backward_last = -1;
  const std::int64_t layers = std::max<std::int64_t>(1, c.layers);
  for (std::int64_t i = 0; i < layers; ++i) {
    // The combine's backward: the unpermutation's gradient, then the all-to-all.
    const int combine_b = g.add(kComm, backward_last, {{false, b.combine_compute_s}, {true, b.combine_comm_s}});
    const int attn_f = g.add(kCompute, forward_last, {{false, attention_f}});
    const int experts_bwd = g.add(kCompute, combine_b, {{false, experts_b}});
    const int dispatch_f = g.add(kComm, attn_f, {{true, f.dispatch_comm_s}, {false, f.dispatch_compute_s}});
    if (delay) g.add(kCompute, -1, {{false, b.experts_wgrad_s}});
    const int dispatch_b = g.add(kComm, experts_bwd, {{false, b.dispatch_compute_s}, {true, b.dispatch_comm_s}});
    const int experts_fwd = g.add(kCompute, dispatch_f, {{false, experts_f}});
    forward_last = g.add(kComm, experts_fwd, {{true, f.combine_comm_s}, {false, f.combine_compute_s}});
    backward_last = g.add(kCompute, dispatch_b, {{false, attention_b}});
    // The first layer's attention weight gradient waits until after the chunk's pipeline
    // transfers (still on the compute stream, still inside the step).
    if (delay) g.add(kCompute, -1, {{false, b.attention_wgrad_s}});
  }
  return g.run(c.comm_sms, c.sm_count);
}

double combined_paired_share(std::int64_t pp, std::int64_t pp_rank, std::int64_t virtual_stages,
                             std::int64_t microbatches) {
  const std::int64_t total = std::max<std::int64_t>(1, microbatches * std::max<std::int64_t>(1, virtual_stages));
  // Interleaved: (pp - rank - 1) * 2 + (v - 1) * microbatch_group_size_per_vp_stage (default
  // pp) warmup forwards, one more with the EP overlap; without pipelining one forward alone.
  std::int64_t warmup = (pp - pp_rank - 1) * 2 + (std::max<std::int64_t>(1, virtual_stages) - 1) * pp + 1;
  warmup = std::clamp<std::int64_t>(warmup, 0, total);
  return static_cast<double>(total - warmup) / static_cast<double>(total);
}

}  // namespace clustersim
