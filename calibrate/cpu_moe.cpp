// CPU backend, MoE suite: an expert-parallel MoE layer on threads. Dispatch packs each rank's
// token rows by destination expert and exchanges them by all-to-all-v; every rank multiplies
// the rows of each of its experts by the expert's weight (Eigen); combine sends the results
// back and sums each token's choices with its routing weights.
#include <Eigen/Dense>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <stdexcept>

#include "calibrate/cpu_backend.hpp"
#include "calibrate/sample_statistics.hpp"
#include "calibrate/thread_communicator.hpp"

namespace clustersim::calibrate {

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Segment {  // rows of one local expert inside a receive buffer
  std::int64_t expert = 0;
  std::int64_t first_row = 0;
  std::int64_t rows = 0;
};

// Who sends what where; built once, outside the timed region (the routing is an input).
struct ThreadMoePlan {
  int ranks = 0;
  std::int64_t tokens_per_rank = 0;
  std::vector<std::int64_t> rows;       // [src * R + dst]
  std::vector<std::int64_t> rows_back;  // transposed, for the combine
  std::vector<std::vector<std::int64_t>> send_order;  // per rank: choices by (expert, token)
  std::vector<std::vector<Segment>> segments;         // per receiving rank
  std::vector<std::int64_t> received_rows;            // per rank
};

ThreadMoePlan make_plan(const kernels::MoeRouting& routing, int ranks) {
  ThreadMoePlan plan;
  plan.ranks = ranks;
  plan.rows = kernels::moe_send_counts(routing, ranks);  // validates divisibility
  const auto r = static_cast<std::size_t>(ranks);
  plan.rows_back.assign(r * r, 0);
  for (std::size_t s = 0; s < r; ++s) {
    for (std::size_t d = 0; d < r; ++d) plan.rows_back[d * r + s] = plan.rows[s * r + d];
  }
  plan.tokens_per_rank = routing.tokens / ranks;
  const std::int64_t experts_per_rank = routing.num_experts / ranks;
  plan.send_order.resize(r);
  // count[src][expert]
  std::vector<std::vector<std::int64_t>> count(r, std::vector<std::int64_t>(static_cast<std::size_t>(routing.num_experts), 0));
  for (std::size_t s = 0; s < r; ++s) {
    auto& order = plan.send_order[s];
    for (std::int64_t t = 0; t < plan.tokens_per_rank; ++t) {
      for (std::int64_t k = 0; k < routing.topk; ++k) {
        const std::int64_t choice = (static_cast<std::int64_t>(s) * plan.tokens_per_rank + t) * routing.topk + k;
        order.push_back(choice);
        ++count[s][static_cast<std::size_t>(routing.experts[static_cast<std::size_t>(choice)])];
      }
    }
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
      return routing.experts[static_cast<std::size_t>(a)] < routing.experts[static_cast<std::size_t>(b)];
    });
  }
  plan.segments.resize(r);
  plan.received_rows.assign(r, 0);
  for (std::size_t d = 0; d < r; ++d) {
    std::int64_t row = 0;
    for (std::size_t s = 0; s < r; ++s) {
      for (std::int64_t e = static_cast<std::int64_t>(d) * experts_per_rank;
           e < static_cast<std::int64_t>(d + 1) * experts_per_rank; ++e) {
        const std::int64_t n = count[s][static_cast<std::size_t>(e)];
        if (n > 0) plan.segments[d].push_back({e, row, n});
        row += n;
      }
    }
    plan.received_rows[d] = row;
  }
  return plan;
}

// Buffers of one rank and the three phases.
struct MoeRank {
  std::vector<float> send, received, expert_out, returned, y;
};

class ThreadMoeLayer {
 public:
  ThreadMoeLayer(const kernels::MoeRouting& routing, int ranks, std::int64_t hidden,
                 std::int64_t ffn, const std::vector<float>& x, const std::vector<float>& w)
      : routing_(routing), plan_(make_plan(routing, ranks)), hidden_(hidden), ffn_(ffn), x_(x),
        w_(w), comm_(ranks), rank_(static_cast<std::size_t>(ranks)) {
    if (x.size() != static_cast<std::size_t>(routing.tokens * hidden) ||
        w.size() != static_cast<std::size_t>(routing.num_experts * hidden * ffn)) {
      throw std::invalid_argument("thread MoE layer: x or w has the wrong size");
    }
    for (std::size_t r = 0; r < rank_.size(); ++r) {
      const auto sent = plan_.send_order[r].size();
      const auto got = static_cast<std::size_t>(plan_.received_rows[r]);
      rank_[r].send.assign(sent * static_cast<std::size_t>(hidden), 0.0f);
      rank_[r].received.assign(got * static_cast<std::size_t>(hidden), 0.0f);
      rank_[r].expert_out.assign(got * static_cast<std::size_t>(ffn), 0.0f);
      rank_[r].returned.assign(sent * static_cast<std::size_t>(ffn), 0.0f);
      rank_[r].y.assign(static_cast<std::size_t>(plan_.tokens_per_rank * ffn), 0.0f);
    }
  }

  ThreadCommunicator& comm() { return comm_; }
  const ThreadMoePlan& plan() const { return plan_; }

  void dispatch(int rank) {
    MoeRank& me = rank_[static_cast<std::size_t>(rank)];
    const auto& order = plan_.send_order[static_cast<std::size_t>(rank)];
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::int64_t token = order[i] / routing_.topk;
      std::copy_n(x_.begin() + token * hidden_, hidden_,
                  me.send.begin() + static_cast<std::ptrdiff_t>(i) * hidden_);
    }
    comm_.all_to_all_v(rank, me.send.data(), me.received.data(), plan_.rows,
                       static_cast<std::size_t>(hidden_));
  }

  void expert_gemms(int rank) {
    MoeRank& me = rank_[static_cast<std::size_t>(rank)];
    for (const Segment& s : plan_.segments[static_cast<std::size_t>(rank)]) {
      const Eigen::Map<const Matrix> in(me.received.data() + s.first_row * hidden_, s.rows, hidden_);
      const Eigen::Map<const Matrix> weight(w_.data() + s.expert * hidden_ * ffn_, hidden_, ffn_);
      Eigen::Map<Matrix> out(me.expert_out.data() + s.first_row * ffn_, s.rows, ffn_);
      out.noalias() = in * weight;
    }
  }

  void combine(int rank) {
    MoeRank& me = rank_[static_cast<std::size_t>(rank)];
    comm_.all_to_all_v(rank, me.expert_out.data(), me.returned.data(), plan_.rows_back,
                       static_cast<std::size_t>(ffn_));
    std::fill(me.y.begin(), me.y.end(), 0.0f);
    const auto& order = plan_.send_order[static_cast<std::size_t>(rank)];
    const std::int64_t first_token = rank * plan_.tokens_per_rank;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const float weight = routing_.weights[static_cast<std::size_t>(order[i])];
      float* y_row = me.y.data() + (order[i] / routing_.topk - first_token) * ffn_;
      const float* row = me.returned.data() + static_cast<std::ptrdiff_t>(i) * ffn_;
      for (std::int64_t j = 0; j < ffn_; ++j) y_row[j] += weight * row[j];
    }
  }

  std::vector<float> output() const {
    std::vector<float> y;
    for (const auto& r : rank_) y.insert(y.end(), r.y.begin(), r.y.end());
    return y;
  }

  // Bytes the busiest rank sends in the dispatch (hidden-wide rows) or combine (ffn-wide).
  double bytes_per_rank(bool dispatch) const {
    std::int64_t most = 0;
    const auto r = static_cast<std::size_t>(plan_.ranks);
    for (std::size_t s = 0; s < r; ++s) {
      std::int64_t rows = 0;
      for (std::size_t d = 0; d < r; ++d) rows += dispatch ? plan_.rows[s * r + d] : plan_.rows_back[s * r + d];
      most = std::max(most, rows);
    }
    return static_cast<double>(most) * static_cast<double>(dispatch ? hidden_ : ffn_) * sizeof(float);
  }

 private:
  const kernels::MoeRouting& routing_;
  ThreadMoePlan plan_;
  std::int64_t hidden_, ffn_;
  const std::vector<float>& x_;
  const std::vector<float>& w_;
  ThreadCommunicator comm_;
  std::vector<MoeRank> rank_;
};

}  // namespace

std::vector<float> run_thread_moe_layer(const kernels::MoeRouting& routing, int ranks,
                                        std::int64_t hidden, std::int64_t ffn,
                                        const std::vector<float>& x, const std::vector<float>& w) {
  ThreadMoeLayer layer(routing, ranks, hidden, ffn, x, w);
  (void)time_ranks(ranks, 0, 1, [&](int rank, int) {
    layer.dispatch(rank);
    layer.expert_gemms(rank);
    layer.combine(rank);
  });
  return layer.output();
}

std::vector<MeasurementRecord> measure_cpu_moe(const MoeCase& c, const BackendOptions& o) {
  const std::int64_t tokens = c.tokens_per_rank * c.ranks;
  const kernels::MoeRouting routing = generate_routing(tokens, c.experts, c.topk, c.routing);
  const std::vector<float> x = cpu_operand(static_cast<std::size_t>(tokens * c.hidden), 11);
  const std::vector<float> w = cpu_operand(static_cast<std::size_t>(c.experts * c.hidden * c.ffn), 12);
  ThreadMoeLayer layer(routing, c.ranks, c.hidden, c.ffn, x, w);
  using Clock = std::chrono::steady_clock;
  std::vector<double> dispatch_s, combine_s;
  (void)time_ranks(c.ranks, o.warmup_iterations, o.iterations, [&](int rank, int round) {
    const auto t0 = Clock::now();
    layer.dispatch(rank);
    layer.comm().barrier();
    const auto t1 = Clock::now();
    layer.expert_gemms(rank);
    layer.comm().barrier();
    const auto t2 = Clock::now();
    layer.combine(rank);
    layer.comm().barrier();
    const auto t3 = Clock::now();
    if (rank == 0 && round >= o.warmup_iterations) {
      dispatch_s.push_back(std::chrono::duration<double>(t1 - t0).count());
      combine_s.push_back(std::chrono::duration<double>(t3 - t2).count());
    }
  });
  const kernels::MoeDispatchPlan plan = kernels::plan_moe_dispatch(routing);
  const double imbalance = kernels::moe_imbalance(plan.tokens_per_expert);
  std::vector<MeasurementRecord> records;
  for (MoePhase phase : {MoePhase::kDispatch, MoePhase::kCombine}) {
    MeasurementRecord r;
    AllToAllRecord a;
    a.phase = phase;
    a.ranks = c.ranks;
    a.nodes = 1;
    a.bytes_per_rank = layer.bytes_per_rank(phase == MoePhase::kDispatch);
    a.imbalance = imbalance;
    a.implementation = "cpu_threads";
    r.shape = a;
    r.samples_s = phase == MoePhase::kDispatch ? dispatch_s : combine_s;
    // The label keeps what the record format has no field for: tokens per expert.
    r.label = fmt::format("{} tokens_per_expert={}", to_string(phase), fmt::join(plan.tokens_per_expert, ","));
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace clustersim::calibrate
