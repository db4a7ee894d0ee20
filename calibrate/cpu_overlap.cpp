// CPU backend, overlap suite: tensor-parallel AG+GEMM and GEMM+RS on rank threads, decomposed
// into row chunks. Overlapped, a helper thread per rank moves chunk i+1 (AG) or reduces chunk
// i-1 (RS) while the rank multiplies chunk i; the rank and its helper hand chunks over with a
// semaphore. Timed four ways: GEMM alone, communication alone, sequential, overlapped.
//
// Operands (run_thread_overlap's tests rebuild them): AG+GEMM: rank r's shard of A is
// cpu_operand(m/R k, 100 + r) ([m/R, k] row-major), its B cpu_operand(k n/R, 200 + r); GEMM+RS:
// A_r = cpu_operand(m k/R, 300 + r), B_r = cpu_operand(k/R n, 400 + r).
#include <Eigen/Dense>

#include <barrier>
#include <semaphore>
#include <stdexcept>
#include <thread>

#include "calibrate/cpu_backend.hpp"
#include "calibrate/sample_statistics.hpp"
#include "calibrate/thread_communicator.hpp"

namespace clustersim::calibrate {

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

enum class Mode { kGemmAlone, kCommAlone, kSequential, kOverlapped };

class ThreadOverlap {
 public:
  explicit ThreadOverlap(const OverlapCase& c)
      : c_(c), ranks_(static_cast<std::size_t>(c.ranks)), chunk_rows_(c.m / c.chunks),
        barrier_(c.ranks), rank_(ranks_) {
    if (c.ranks < 1 || c.chunks % c.ranks != 0 || c.m % c.chunks != 0 ||
        (c.all_gather_gemm ? c.n : c.k) % c.ranks != 0) {
      throw std::invalid_argument("CPU overlap: chunks must divide by ranks, m by chunks, and " +
                                  std::string(c.all_gather_gemm ? "n" : "k") + " by ranks");
    }
    const std::int64_t r = c.ranks;
    for (std::size_t i = 0; i < ranks_; ++i) {
      Rank& me = rank_[i];
      if (c.all_gather_gemm) {
        me.a = cpu_operand(static_cast<std::size_t>(c.m / r * c.k), 100 + i);
        me.b = cpu_operand(static_cast<std::size_t>(c.k * (c.n / r)), 200 + i);
        me.gathered.assign(static_cast<std::size_t>(c.m * c.k), 0.0f);
        me.out.assign(static_cast<std::size_t>(c.m * (c.n / r)), 0.0f);
      } else {
        me.a = cpu_operand(static_cast<std::size_t>(c.m * (c.k / r)), 300 + i);
        me.b = cpu_operand(static_cast<std::size_t>((c.k / r) * c.n), 400 + i);
        me.partial.assign(static_cast<std::size_t>(c.m * c.n), 0.0f);
        me.out.assign(static_cast<std::size_t>(c.m / r * c.n), 0.0f);
      }
    }
  }

  // The chunk rank `rank` handles at position i: AG starts with its own rows (ring order); RS
  // goes in the same order on every rank (its helpers meet at a barrier per chunk).
  std::int64_t chunk_at(int rank, std::int64_t i) const {
    if (!c_.all_gather_gemm) return i;
    return (rank * (c_.chunks / c_.ranks) + i) % c_.chunks;
  }

  void gemm_chunk(int rank, std::int64_t chunk) {
    Rank& me = rank_[static_cast<std::size_t>(rank)];
    const std::int64_t row = chunk * chunk_rows_;
    if (c_.all_gather_gemm) {
      const std::int64_t n = c_.n / c_.ranks;
      const Eigen::Map<const Matrix> a(me.gathered.data() + row * c_.k, chunk_rows_, c_.k);
      const Eigen::Map<const Matrix> b(me.b.data(), c_.k, n);
      Eigen::Map<Matrix>(me.out.data() + row * n, chunk_rows_, n).noalias() = a * b;
    } else {
      const std::int64_t k = c_.k / c_.ranks;
      const Eigen::Map<const Matrix> a(me.a.data() + row * k, chunk_rows_, k);
      const Eigen::Map<const Matrix> b(me.b.data(), k, c_.n);
      Eigen::Map<Matrix>(me.partial.data() + row * c_.n, chunk_rows_, c_.n).noalias() = a * b;
    }
  }

  void comm_chunk(int rank, std::int64_t chunk) {
    Rank& me = rank_[static_cast<std::size_t>(rank)];
    const std::int64_t per_rank = c_.chunks / c_.ranks;
    const auto owner = static_cast<std::size_t>(chunk / per_rank);
    const std::int64_t row = chunk * chunk_rows_;
    if (c_.all_gather_gemm) {
      const float* src = rank_[owner].a.data() + (chunk % per_rank) * chunk_rows_ * c_.k;
      std::copy_n(src, chunk_rows_ * c_.k, me.gathered.begin() + row * c_.k);
      return;
    }
    barrier_.arrive_and_wait();  // every rank's partial of this chunk is written
    if (owner != static_cast<std::size_t>(rank)) return;
    float* out = me.out.data() + (chunk % per_rank) * chunk_rows_ * c_.n;
    const std::int64_t count = chunk_rows_ * c_.n;
    std::fill(out, out + count, 0.0f);
    for (const Rank& other : rank_) {
      const float* p = other.partial.data() + row * c_.n;
      for (std::int64_t i = 0; i < count; ++i) out[i] += p[i];
    }
  }

  void run(int rank, Mode mode) {
    const std::int64_t chunks = c_.chunks;
    const auto all_comm = [&] { for (std::int64_t i = 0; i < chunks; ++i) comm_chunk(rank, chunk_at(rank, i)); };
    const auto all_gemm = [&] { for (std::int64_t i = 0; i < chunks; ++i) gemm_chunk(rank, chunk_at(rank, i)); };
    switch (mode) {
      case Mode::kGemmAlone: all_gemm(); return;
      case Mode::kCommAlone: all_comm(); return;
      case Mode::kSequential:
        if (c_.all_gather_gemm) {
          all_comm();
          all_gemm();
        } else {
          all_gemm();
          all_comm();
        }
        return;
      case Mode::kOverlapped: break;
    }
    std::counting_semaphore<> ready(0);
    if (c_.all_gather_gemm) {
      std::thread helper([&] {
        pin_thread_to_rank_cpu(rank);
        for (std::int64_t i = 0; i < chunks; ++i) {
          comm_chunk(rank, chunk_at(rank, i));
          ready.release();
        }
      });
      for (std::int64_t i = 0; i < chunks; ++i) {
        ready.acquire();
        gemm_chunk(rank, chunk_at(rank, i));
      }
      helper.join();
    } else {
      std::thread helper([&] {
        pin_thread_to_rank_cpu(rank);
        for (std::int64_t i = 0; i < chunks; ++i) {
          ready.acquire();
          comm_chunk(rank, chunk_at(rank, i));
        }
      });
      for (std::int64_t i = 0; i < chunks; ++i) {
        gemm_chunk(rank, chunk_at(rank, i));
        ready.release();
      }
      helper.join();
    }
  }

  std::vector<std::vector<float>> outputs() const {
    std::vector<std::vector<float>> out;
    for (const Rank& r : rank_) out.push_back(r.out);
    return out;
  }

 private:
  struct Rank {
    std::vector<float> a, b, gathered, partial, out;
  };
  OverlapCase c_;
  std::size_t ranks_;
  std::int64_t chunk_rows_;
  std::barrier<> barrier_;
  std::vector<Rank> rank_;
};

}  // namespace

std::vector<std::vector<float>> run_thread_overlap(const OverlapCase& c, bool overlapped) {
  ThreadOverlap overlap(c);
  (void)time_ranks(c.ranks, 0, 1, [&](int rank, int) {
    overlap.run(rank, overlapped ? Mode::kOverlapped : Mode::kSequential);
  });
  return overlap.outputs();
}

MeasurementRecord measure_cpu_overlap(const OverlapCase& c, const BackendOptions& o) {
  ThreadOverlap overlap(c);
  const auto time_mode = [&](Mode mode) {
    return time_ranks(c.ranks, o.warmup_iterations, o.iterations,
                      [&](int rank, int) { overlap.run(rank, mode); });
  };
  // Communication first: it fills AG's gathered operand that GEMM-alone multiplies.
  const double comm_s = summarize_samples(time_mode(Mode::kCommAlone)).median_s;
  const double gemm_s = summarize_samples(time_mode(Mode::kGemmAlone)).median_s;
  const double sequential_s = summarize_samples(time_mode(Mode::kSequential)).median_s;
  MeasurementRecord record;
  record.samples_s = time_mode(Mode::kOverlapped);
  OverlapRecord ov;
  ov.pattern = c.all_gather_gemm ? OverlapPattern::kAllGatherGemm : OverlapPattern::kGemmReduceScatter;
  ov.variant = "cpu_" + c.variant;
  ov.m = c.m;
  ov.n = c.n;
  ov.k = c.k;
  ov.ranks = c.ranks;
  ov.gemm_alone_s = gemm_s;
  ov.comm_alone_s = comm_s;
  ov.sequential_s = sequential_s;
  record.shape = ov;
  return record;
}

}  // namespace clustersim::calibrate
