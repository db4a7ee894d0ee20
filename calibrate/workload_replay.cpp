// The CPU replay of a lowered training iteration (workload_replay.hpp).
#include "calibrate/workload_replay.hpp"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "kernels/attention_reference.hpp"
#include "calibrate/cpu_backend.hpp"
#include "calibrate/thread_communicator.hpp"

namespace clustersim::calibrate {

namespace {

using Clock = std::chrono::steady_clock;
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median_of(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::size_t floats_of(double bytes) {
  return static_cast<std::size_t>(std::max(0.0, bytes) / sizeof(float));
}

// A directed pipeline link: the sender appends a copy of its activation, the receiver blocks
// until one is there. Buffers are recycled so that steady state does not allocate.
class Mailbox {
 public:
  void send(const float* data, std::size_t count) {
    std::vector<float> message;
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        message = std::move(free_.back());
        free_.pop_back();
      }
    }
    message.assign(data, data + count);
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(message));
    }
    ready_.notify_one();
  }
  void receive(float* data, std::size_t count) {
    std::vector<float> message;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return !queue_.empty(); });
      message = std::move(queue_.front());
      queue_.pop_front();
    }
    std::memcpy(data, message.data(), std::min(count, message.size()) * sizeof(float));
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(message));
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::vector<float>> queue_;
  std::vector<std::vector<float>> free_;
};

struct GemmBuffers {
  Matrix a, b, c;
};

struct AttentionBuffers {
  kernels::AttentionProblem problem;
  std::vector<float> q, k, v, out, lse, dout;
};

kernels::AttentionProblem problem_of(const AttentionRecord& a) {
  kernels::AttentionProblem p;
  p.heads = a.heads;
  p.kv_heads = a.kv_heads;
  p.head_dim = a.head_dim;
  p.causal = a.causal;
  p.seq_q.assign(static_cast<std::size_t>(a.batch), a.seq_q);
  p.seq_kv.assign(static_cast<std::size_t>(a.batch), a.seq_kv);
  return p;
}

using GemmKey = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
using AttentionKey = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                std::int64_t, bool>;

AttentionKey key_of(const AttentionRecord& a) {
  return {static_cast<int>(a.pass), a.batch, a.heads, a.kv_heads, a.seq_q, a.seq_kv, a.head_dim, a.causal};
}

// Where a rank sits and the groups it belongs to. Megatron's rank order: TP fastest, then DP,
// then PP (CP and EP are 1 here).
struct RankPlace {
  std::int64_t tp = 0, dp = 0, pp = 0;
};

class Replay {
 public:
  Replay(const Workload& w, const ReplayOptions& o) : w_(w), o_(o) {
    const ParallelLayout& l = w.layout;
    world_ = static_cast<int>(l.tp * l.dp * l.pp);
    for (std::int64_t i = 0; i < l.dp * l.pp; ++i) tp_comms_.push_back(std::make_unique<ThreadCommunicator>(static_cast<int>(l.tp)));
    for (std::int64_t i = 0; i < l.tp * l.pp; ++i) dp_comms_.push_back(std::make_unique<ThreadCommunicator>(static_cast<int>(l.dp)));
    for (std::int64_t i = 0; i < l.tp * l.dp; ++i) pp_comms_.push_back(std::make_unique<ThreadCommunicator>(static_cast<int>(l.pp)));
    for (int r = 0; r < world_; ++r) {
      forward_links_.push_back(std::make_unique<Mailbox>());
      backward_links_.push_back(std::make_unique<Mailbox>());
    }
    ranks_.resize(static_cast<std::size_t>(world_));
    timings_.resize(static_cast<std::size_t>(world_));
  }

  ReplayResult run() {
    const int rounds = o_.warmup_iterations + o_.iterations;
    std::barrier<> barrier(world_);
    std::vector<double> samples;
    std::vector<std::thread> threads;
    for (int rank = 0; rank < world_; ++rank) {
      threads.emplace_back([&, rank] {
        pin_thread_to_rank_cpu(rank);
        prepare(rank);
        for (int round = 0; round < rounds; ++round) {
          barrier.arrive_and_wait();
          const Clock::time_point start = Clock::now();
          iteration(rank, start, round >= o_.warmup_iterations);
          barrier.arrive_and_wait();
          if (rank == 0 && round >= o_.warmup_iterations) samples.push_back(seconds_since(start));
        }
      });
    }
    for (auto& t : threads) t.join();
    ReplayResult result;
    result.ranks = world_;
    result.samples_s = samples;
    result.step_time_s = median_of(samples);
    for (std::int64_t p = 0; p < w_.layout.pp; ++p) {
      const auto& t = timings_[static_cast<std::size_t>(rank_of({0, 0, p}))];
      StageReplayTiming s;
      s.pp_rank = p;
      s.forward_s = median_of(t.forward);
      s.backward_s = median_of(t.backward);
      s.step_s = median_of(t.step);
      s.wait_s = median_of(t.wait);
      s.finish_s = median_of(t.finish);
      s.gemm_s = median_of(t.by_kind[0]);
      s.attention_s = median_of(t.by_kind[1]);
      s.memory_bound_s = median_of(t.by_kind[2]);
      s.collective_s = median_of(t.by_kind[3]);
      result.stages.push_back(s);
    }
    return result;
  }

 private:
  struct RankState {
    std::map<GemmKey, GemmBuffers> gemms;
    std::map<AttentionKey, AttentionBuffers> attention;
    std::vector<float> src, dst;          // memory-bound operations
    std::vector<float> coll_in, coll_out;  // collectives
    std::vector<float> activation;         // pipeline transfers
    double by_kind[4] = {0, 0, 0, 0};      // this iteration's seconds by OpKind (MoE as collective)
  };
  struct RankTimings {
    std::vector<double> forward, backward, step, wait, finish;
    std::vector<double> by_kind[4];
  };

  int rank_of(RankPlace p) const {
    const ParallelLayout& l = w_.layout;
    return static_cast<int>(p.tp + l.tp * (p.dp + l.dp * p.pp));
  }
  RankPlace place_of(int rank) const {
    const ParallelLayout& l = w_.layout;
    RankPlace p;
    p.tp = rank % l.tp;
    p.dp = (rank / l.tp) % l.dp;
    p.pp = rank / (l.tp * l.dp);
    return p;
  }

  // Buffers for every shape the rank's stage runs, allocated and filled before timing.
  void prepare(int rank) {
    const RankPlace place = place_of(rank);
    const StageProgram& stage = w_.stages[static_cast<std::size_t>(place.pp)];
    RankState& s = ranks_[static_cast<std::size_t>(rank)];
    double memory_bytes = 0, coll_bytes = 0;
    auto visit = [&](const std::vector<WorkOp>& ops) {
      for (const WorkOp& op : ops) {
        switch (op.kind) {
          case OpKind::kGemm: {
            const GemmKey key{op.gemm.m, op.gemm.n, op.gemm.k};
            if (s.gemms.count(key)) break;
            GemmBuffers& g = s.gemms[key];
            const auto seed = static_cast<std::uint64_t>(rank * 1000 + static_cast<int>(s.gemms.size()));
            const std::vector<float> a = cpu_operand(static_cast<std::size_t>(op.gemm.m * op.gemm.k), seed);
            const std::vector<float> b = cpu_operand(static_cast<std::size_t>(op.gemm.k * op.gemm.n), seed + 1);
            g.a = Eigen::Map<const Matrix>(a.data(), op.gemm.m, op.gemm.k);
            g.b = Eigen::Map<const Matrix>(b.data(), op.gemm.k, op.gemm.n);
            g.c.resize(op.gemm.m, op.gemm.n);
            break;
          }
          case OpKind::kAttention: {
            const AttentionKey key = key_of(op.attention);
            if (s.attention.count(key)) break;
            AttentionBuffers& a = s.attention[key];
            a.problem = problem_of(op.attention);
            const auto& p = a.problem;
            a.q = cpu_operand(static_cast<std::size_t>(p.total_q() * p.heads * p.head_dim), 6);
            a.k = cpu_operand(static_cast<std::size_t>(p.total_kv() * p.kv_heads * p.head_dim), 7);
            a.v = cpu_operand(a.k.size(), 8);
            if (op.attention.pass == AttentionPass::kBackward) {
              kernels::AttentionForward fwd = kernels::attention_forward_reference(p, a.q, a.k, a.v);
              a.out = std::move(fwd.out);
              a.lse = std::move(fwd.lse);
              a.dout = cpu_operand(a.q.size(), 9);
            }
            break;
          }
          case OpKind::kMemoryBound: memory_bytes = std::max(memory_bytes, op.bytes); break;
          case OpKind::kCollective:
          case OpKind::kMoeAllToAll: coll_bytes = std::max(coll_bytes, op.bytes); break;
        }
      }
    };
    visit(stage.forward);
    visit(stage.backward);
    visit(stage.step);
    s.src = cpu_operand(floats_of(memory_bytes / 2) + 1, 11);
    s.dst.assign(s.src.size(), 0.0f);
    s.coll_in = cpu_operand(floats_of(coll_bytes) + 64, 12);
    s.coll_out.assign(s.coll_in.size(), 0.0f);
    s.activation = cpu_operand(floats_of(w_.p2p_bytes) + 1, 13);
  }

  ThreadCommunicator* communicator(Group group, RankPlace p, int* member) {
    const ParallelLayout& l = w_.layout;
    switch (group) {
      case Group::kTp:
        *member = static_cast<int>(p.tp);
        return tp_comms_[static_cast<std::size_t>(p.dp + l.dp * p.pp)].get();
      case Group::kDp:
      case Group::kExpertDp:
        *member = static_cast<int>(p.dp);
        return dp_comms_[static_cast<std::size_t>(p.tp + l.tp * p.pp)].get();
      case Group::kPp:
        *member = static_cast<int>(p.pp);
        return pp_comms_[static_cast<std::size_t>(p.tp + l.tp * p.dp)].get();
      case Group::kCp:
      case Group::kEp:
      case Group::kEtp: break;
    }
    return nullptr;
  }

  void collective(const WorkOp& op, RankPlace place, RankState& s) {
    if (op.group_ranks <= 1) return;
    int member = 0;
    ThreadCommunicator* comm = communicator(op.group, place, &member);
    const auto ranks = static_cast<std::size_t>(op.group_ranks);
    // nccl-tests' size in floats, rounded to a multiple of the ranks (at least one per rank).
    const std::size_t elements = std::max(ranks, floats_of(op.bytes) / ranks * ranks);
    switch (op.collective) {
      case CollectiveKind::kAllReduce: comm->all_reduce(member, s.coll_in.data(), s.coll_out.data(), elements); break;
      case CollectiveKind::kAllGather:
        comm->all_gather(member, s.coll_in.data(), s.coll_out.data(), elements / ranks);
        break;
      case CollectiveKind::kReduceScatter:
        comm->reduce_scatter(member, s.coll_in.data(), s.coll_out.data(), elements / ranks);
        break;
      case CollectiveKind::kAllToAll:
        comm->all_to_all(member, s.coll_in.data(), s.coll_out.data(), elements / ranks);
        break;
      case CollectiveKind::kBroadcast:
      case CollectiveKind::kReduce:
      case CollectiveKind::kSendRecv: break;  // rejected by check_replayable
    }
  }

  void run_ops(const std::vector<WorkOp>& ops, RankPlace place, RankState& s) {
    for (const WorkOp& op : ops) {
      const Clock::time_point start = Clock::now();
      for (std::int64_t i = 0; i < op.count; ++i) {
        switch (op.kind) {
          case OpKind::kGemm: {
            GemmBuffers& g = s.gemms.at({op.gemm.m, op.gemm.n, op.gemm.k});
            for (std::int64_t b = 0; b < op.gemm.batch; ++b) g.c.noalias() = g.a * g.b;
            break;
          }
          case OpKind::kAttention: {
            AttentionBuffers& a = s.attention.at(key_of(op.attention));
            if (op.attention.pass == AttentionPass::kBackward) {
              (void)kernels::attention_backward_reference(a.problem, a.q, a.k, a.v, a.out, a.dout, a.lse);
            } else {
              (void)kernels::attention_forward_reference(a.problem, a.q, a.k, a.v);
            }
            break;
          }
          case OpKind::kMemoryBound: {
            // bytes are read plus written: copy half of them.
            const std::size_t n = std::min(s.src.size(), floats_of(op.bytes / 2));
            std::memcpy(s.dst.data(), s.src.data(), n * sizeof(float));
            break;
          }
          case OpKind::kCollective: collective(op, place, s); break;
          case OpKind::kMoeAllToAll: break;  // rejected by check_replayable
        }
      }
      s.by_kind[std::min(static_cast<int>(op.kind), 3)] += seconds_since(start);
    }
  }

  // One training iteration of `rank`: 1F1B over the micro-batches, then the step operations.
  void iteration(int rank, Clock::time_point start, bool record) {
    const RankPlace place = place_of(rank);
    const ParallelLayout& l = w_.layout;
    const StageProgram& stage = w_.stages[static_cast<std::size_t>(place.pp)];
    RankState& s = ranks_[static_cast<std::size_t>(rank)];
    const std::int64_t micro_batches = l.num_microbatches;
    const std::int64_t warmup = std::min(l.pp - place.pp - 1, micro_batches);
    const std::size_t p2p = std::min(s.activation.size(), floats_of(w_.p2p_bytes));
    const bool first = place.pp == 0, last = place.pp == l.pp - 1;
    const int next = last ? -1 : rank_of({place.tp, place.dp, place.pp + 1});
    const int previous = first ? -1 : rank_of({place.tp, place.dp, place.pp - 1});
    double forward = 0, backward = 0, wait = 0;
    std::fill(std::begin(s.by_kind), std::end(s.by_kind), 0.0);
    auto timed_receive = [&](Mailbox& box) {
      const Clock::time_point t = Clock::now();
      box.receive(s.activation.data(), p2p);
      wait += seconds_since(t);
    };
    auto run_forward = [&] {
      if (!first) timed_receive(*forward_links_[static_cast<std::size_t>(rank)]);
      const Clock::time_point t = Clock::now();
      run_ops(stage.forward, place, s);
      if (!last) forward_links_[static_cast<std::size_t>(next)]->send(s.activation.data(), p2p);
      forward += seconds_since(t);
    };
    auto run_backward = [&] {
      if (!last) timed_receive(*backward_links_[static_cast<std::size_t>(rank)]);
      const Clock::time_point t = Clock::now();
      run_ops(stage.backward, place, s);
      if (!first) backward_links_[static_cast<std::size_t>(previous)]->send(s.activation.data(), p2p);
      backward += seconds_since(t);
    };
    for (std::int64_t i = 0; i < warmup; ++i) run_forward();
    for (std::int64_t i = 0; i < micro_batches - warmup; ++i) {
      run_forward();
      run_backward();
    }
    for (std::int64_t i = 0; i < warmup; ++i) run_backward();
    const Clock::time_point t = Clock::now();
    run_ops(stage.step, place, s);
    const double step = seconds_since(t);
    if (!record) return;
    RankTimings& r = timings_[static_cast<std::size_t>(rank)];
    r.forward.push_back(forward);
    r.backward.push_back(backward);
    r.step.push_back(step);
    r.wait.push_back(wait);
    r.finish.push_back(seconds_since(start));
    for (int k = 0; k < 4; ++k) r.by_kind[k].push_back(s.by_kind[k]);
  }

  const Workload& w_;
  ReplayOptions o_;
  int world_ = 0;
  std::vector<std::unique_ptr<ThreadCommunicator>> tp_comms_, dp_comms_, pp_comms_;
  // forward_links_[r]: activations arriving at rank r; backward_links_[r]: gradients arriving.
  std::vector<std::unique_ptr<Mailbox>> forward_links_, backward_links_;
  std::vector<RankState> ranks_;
  std::vector<RankTimings> timings_;
};

}  // namespace

void check_replayable(const Workload& w, int max_ranks) {
  const ParallelLayout& l = w.layout;
  const std::int64_t ranks = l.tp * l.dp * l.pp;
  if (l.cp != 1 || l.ep != 1) {
    throw std::invalid_argument("the CPU replay runs TP, PP and DP only (context and expert parallelism must be 1)");
  }
  if (l.virtual_stages != 1) throw std::invalid_argument("the CPU replay runs non-interleaved 1F1B only");
  if (ranks < 1 || ranks > max_ranks) {
    throw std::invalid_argument(fmt::format("the CPU replay runs at most {} ranks (threads), the plan has {}",
                                            max_ranks, ranks));
  }
  if (static_cast<std::int64_t>(w.stages.size()) != l.pp) throw std::invalid_argument("workload has no stage per pipeline rank");
  for (const StageProgram& stage : w.stages) {
    for (const auto* list : {&stage.forward, &stage.backward, &stage.step}) {
      for (const WorkOp& op : *list) {
        if (op.kind == OpKind::kMoeAllToAll) throw std::invalid_argument("the CPU replay does not run MoE layers");
        if (op.kind != OpKind::kCollective || op.group_ranks <= 1) continue;
        const bool supported = op.collective == CollectiveKind::kAllReduce ||
                               op.collective == CollectiveKind::kAllGather ||
                               op.collective == CollectiveKind::kReduceScatter ||
                               op.collective == CollectiveKind::kAllToAll;
        if (!supported) {
          throw std::invalid_argument(fmt::format("the CPU replay does not run {} ({})", to_string(op.collective), op.name));
        }
        const std::int64_t size = op.group == Group::kTp ? l.tp
                                  : op.group == Group::kDp || op.group == Group::kExpertDp ? l.dp
                                  : op.group == Group::kPp ? l.pp
                                                           : 0;
        if (size != op.group_ranks) {
          throw std::invalid_argument(fmt::format("the CPU replay cannot place {} over {} ranks of the {} group", op.name,
                                                  op.group_ranks, to_string(op.group)));
        }
      }
    }
  }
}

ReplayResult replay_workload(const Workload& workload, const ReplayOptions& options) {
  check_replayable(workload);
  if (options.iterations < 1) throw std::invalid_argument("the CPU replay needs at least one timed iteration");
  return Replay(workload, options).run();
}

}  // namespace clustersim::calibrate
