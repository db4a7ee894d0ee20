#include "calibrate/thread_communicator.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace clustersim::calibrate {

namespace {

std::size_t wrap(std::int64_t value, int ranks) {
  return static_cast<std::size_t>(((value % ranks) + ranks) % ranks);
}

}  // namespace

ThreadCommunicator::ThreadCommunicator(int ranks)
    : ranks_(ranks),
      barrier_(ranks),
      inputs_(static_cast<std::size_t>(ranks), nullptr),
      outputs_(static_cast<std::size_t>(ranks), nullptr) {
  if (ranks < 1) throw std::invalid_argument("ThreadCommunicator: need at least one rank");
}

void ThreadCommunicator::publish(int rank, const float* in, float* out) {
  inputs_[static_cast<std::size_t>(rank)] = in;
  outputs_[static_cast<std::size_t>(rank)] = out;
  barrier();
}

void ThreadCommunicator::all_reduce(int rank, const float* in, float* out, std::size_t count) {
  if (count % static_cast<std::size_t>(ranks_) != 0) {
    throw std::invalid_argument("all_reduce: count must divide by the rank count");
  }
  std::memcpy(out, in, count * sizeof(float));  // out of place, then in place on `out`
  publish(rank, in, out);
  const std::size_t block = count / static_cast<std::size_t>(ranks_);
  const float* left = outputs_[wrap(rank - 1, ranks_)];
  // Reduce-scatter: at step s pull the partial of block (r - s - 2) from the left neighbour.
  for (int s = 0; s < ranks_ - 1; ++s) {
    const std::size_t b = wrap(rank - s - 2, ranks_) * block;
    for (std::size_t i = 0; i < block; ++i) out[b + i] += left[b + i];
    barrier();
  }
  // All-gather: rank r now owns block r; at step s pull block (r - s) from the left.
  for (int s = 1; s < ranks_; ++s) {
    const std::size_t b = wrap(rank - s, ranks_) * block;
    std::memcpy(out + b, left + b, block * sizeof(float));
    barrier();
  }
}

void ThreadCommunicator::all_gather(int rank, const float* in, float* out, std::size_t count) {
  std::memcpy(out + static_cast<std::size_t>(rank) * count, in, count * sizeof(float));
  publish(rank, in, out);
  const float* left = outputs_[wrap(rank - 1, ranks_)];
  for (int s = 1; s < ranks_; ++s) {
    const std::size_t b = wrap(rank - s, ranks_) * count;
    std::memcpy(out + b, left + b, count * sizeof(float));
    barrier();
  }
}

void ThreadCommunicator::reduce_scatter(int rank, const float* in, float* out, std::size_t count) {
  // Partials accumulate in place in a private copy of the input, published as the output.
  thread_local std::vector<float> acc;
  acc.assign(in, in + count * static_cast<std::size_t>(ranks_));
  publish(rank, in, acc.data());
  const float* left = outputs_[wrap(rank - 1, ranks_)];
  for (int s = 0; s < ranks_ - 1; ++s) {
    const std::size_t b = wrap(rank - s - 2, ranks_) * count;
    for (std::size_t i = 0; i < count; ++i) acc[b + i] += left[b + i];
    barrier();
  }
  std::memcpy(out, acc.data() + static_cast<std::size_t>(rank) * count, count * sizeof(float));
  barrier();  // nobody may leave while the right neighbour still reads `acc`
}

void ThreadCommunicator::all_to_all(int rank, const float* in, float* out, std::size_t count) {
  publish(rank, in, out);
  for (int src = 0; src < ranks_; ++src) {
    std::memcpy(out + static_cast<std::size_t>(src) * count,
                inputs_[static_cast<std::size_t>(src)] + static_cast<std::size_t>(rank) * count,
                count * sizeof(float));
  }
  barrier();
}

void ThreadCommunicator::all_to_all_v(int rank, const float* in, float* out,
                                      const std::vector<std::int64_t>& rows,
                                      std::size_t row_elements) {
  const auto r = static_cast<std::size_t>(ranks_);
  if (rows.size() != r * r) throw std::invalid_argument("all_to_all_v: need ranks x ranks counts");
  publish(rank, in, out);
  std::size_t received = 0;
  for (std::size_t src = 0; src < r; ++src) {
    std::size_t offset = 0;  // rows src sends to ranks before us
    for (std::size_t dst = 0; dst < static_cast<std::size_t>(rank); ++dst) {
      offset += static_cast<std::size_t>(rows[src * r + dst]);
    }
    const auto count = static_cast<std::size_t>(rows[src * r + static_cast<std::size_t>(rank)]);
    std::memcpy(out + received * row_elements, inputs_[src] + offset * row_elements,
                count * row_elements * sizeof(float));
    received += count;
  }
  barrier();
}

void pin_thread_to_rank_cpu(int rank) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  const int count = CPU_COUNT(&allowed);
  if (count <= 0) return;
  int wanted = rank % count;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (wanted-- == 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      (void)pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
      return;
    }
  }
}

std::vector<double> time_ranks(int ranks, int warmup, int iterations,
                               const std::function<void(int, int)>& body) {
  if (ranks < 1 || warmup < 0 || iterations < 1) {
    throw std::invalid_argument("time_ranks: need ranks >= 1, warmup >= 0, iterations >= 1");
  }
  std::barrier<> barrier(ranks);
  std::vector<double> samples;
  const auto run = [&](int rank) {
    pin_thread_to_rank_cpu(rank);
    for (int round = 0; round < warmup + iterations; ++round) {
      barrier.arrive_and_wait();
      const auto start = std::chrono::steady_clock::now();
      body(rank, round);
      barrier.arrive_and_wait();
      if (rank == 0 && round >= warmup) {
        samples.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int rank = 1; rank < ranks; ++rank) threads.emplace_back(run, rank);
  cpu_set_t previous;
  const bool restore = pthread_getaffinity_np(pthread_self(), sizeof(previous), &previous) == 0;
  run(0);
  if (restore) (void)pthread_setaffinity_np(pthread_self(), sizeof(previous), &previous);
  for (auto& t : threads) t.join();
  return samples;
}

}  // namespace clustersim::calibrate
