#pragma once
// Collectives between std::threads acting as ranks, through shared memory: the CPU backend's
// stand-in for NCCL. Ring all-reduce (reduce-scatter + all-gather), ring all-gather, ring
// reduce-scatter, and direct all-to-all(v), with a barrier between ring steps. Every rank calls
// the same collective with its own buffers, concurrently.
#include <barrier>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace clustersim::calibrate {

class ThreadCommunicator {
 public:
  explicit ThreadCommunicator(int ranks);
  int ranks() const { return ranks_; }
  void barrier() { barrier_.arrive_and_wait(); }

  // Sizes in elements, as in kernels::collective_reference: all_reduce count -> count;
  // all_gather count -> R count; reduce_scatter R count -> count; all_to_all R count -> R count.
  void all_reduce(int rank, const float* in, float* out, std::size_t count);
  void all_gather(int rank, const float* in, float* out, std::size_t count);
  void reduce_scatter(int rank, const float* in, float* out, std::size_t count);
  void all_to_all(int rank, const float* in, float* out, std::size_t count);
  // rows[src * R + dst] rows of `row_elements` floats go from src to dst. Rank r's input holds
  // its rows grouped by destination (ascending); its output receives rows grouped by source.
  void all_to_all_v(int rank, const float* in, float* out, const std::vector<std::int64_t>& rows,
                    std::size_t row_elements);

 private:
  // Publishes this rank's buffers and waits until every rank has.
  void publish(int rank, const float* in, float* out);

  int ranks_;
  std::barrier<> barrier_;
  std::vector<const float*> inputs_;
  std::vector<float*> outputs_;
};

// Pins the calling thread to the rank-th CPU this process may use (modulo their count), so
// that rank threads do not migrate and a rank's helper threads share its CPU (as NCCL's
// kernels share a GPU's SMs with the GEMM). Best effort: does nothing where it cannot.
void pin_thread_to_rank_cpu(int rank);

// Runs body(rank) on `ranks` threads for warmup + iterations rounds. Each round starts and ends
// with a barrier; the sample is rank 0's steady_clock time between the two (host wall clock,
// like nccl-tests' time per operation). Rank threads are pinned (pin_thread_to_rank_cpu). Returns the timed rounds' samples. `body` must not
// throw (a rank leaving early would leave the others waiting): validate before.
std::vector<double> time_ranks(int ranks, int warmup, int iterations,
                               const std::function<void(int rank, int round)>& body);

}  // namespace clustersim::calibrate
