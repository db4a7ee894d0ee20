#include "tools/sweep/sweep_runner.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <iostream>
#include <map>

#include "tools/sweep/results_file.hpp"
#include "tools/sweep/rows_csv.hpp"

namespace clustersim::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Points done, rate and time left, on stderr: rewritten in place on a terminal, a line every few
// seconds otherwise.
class Progress {
 public:
  Progress(std::string tier, std::size_t total, int workers)
      : tier_(std::move(tier)), total_(total), workers_(workers), tty_(::isatty(STDERR_FILENO) != 0) {}

  void tick(std::size_t done) {
    const auto now = Clock::now();
    if (done < total_ && now - last_ < std::chrono::milliseconds(tty_ ? 200 : 5000)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    std::cerr << fmt::format("{}sweep: {} {}/{} ({:.0f} %), {:.1f} points/s, ETA {:.0f} s{}", tty_ ? "\r" : "", tier_, done,
                             total_, total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0,
                             rate, eta, tty_ ? "   " : "\n");
  }

  // The phase's figure for benchmarks: points per second (estimates) or per minute (simulations).
  void finish(std::size_t ran) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    if (tty_) std::cerr << '\n';
    const double per_s = elapsed > 0 ? static_cast<double>(ran) / elapsed : 0.0;
    std::cerr << fmt::format("sweep: {} tier: {} points run in {:.2f} s on {} worker(s): {:.1f} points/s, {:.1f} points/min\n",
                             tier_, ran, elapsed, workers_, per_s, 60 * per_s);
  }

 private:
  std::string tier_;
  std::size_t total_;
  int workers_;
  bool tty_;
  Clock::time_point start_ = Clock::now(), last_ = Clock::time_point{};
};

// Runs `tasks` (those not done yet) on the pool, writing each row; returns how many ran and failed.
std::pair<std::size_t, std::size_t> run_tier(const std::string& tier, const std::vector<const SweepTask*>& tasks,
                                             WorkerPool& pool, ResultsFile& results) {
  constexpr int kTriesPerTask = 2;  // a task that kills two workers is written as failed
  std::deque<const SweepTask*> queue(tasks.begin(), tasks.end());
  std::map<int, const SweepTask*> in_flight;
  std::map<const SweepTask*, int> deaths;
  std::vector<bool> alive(static_cast<std::size_t>(pool.workers()), true);
  std::size_t done = 0, failed = 0;
  Progress progress(tier, tasks.size(), pool.workers());
  auto hand_out = [&] {
    for (int w = 0; w < pool.workers() && !queue.empty(); ++w) {
      if (!alive[static_cast<std::size_t>(w)] || in_flight.count(w)) continue;
      in_flight[w] = queue.front();
      queue.pop_front();
      pool.send(w, task_to_line(*in_flight[w]));
    }
  };
  hand_out();
  while (!in_flight.empty()) {
    const WorkerPool::Reply reply = pool.receive();
    const auto it = in_flight.find(reply.worker);
    const SweepTask* task = it == in_flight.end() ? nullptr : it->second;
    if (task) in_flight.erase(it);
    if (reply.died) {
      std::cerr << fmt::format("sweep: {}{}\n", reply.why, task ? "; its point is handed to another worker" : "");
      alive[static_cast<std::size_t>(reply.worker)] = pool.restart(reply.worker);
      if (task && ++deaths[task] >= kTriesPerTask) {
        results.append(failed_row(*task, reply.why));
        ++failed;
        ++done;
      } else if (task) {
        queue.push_front(task);
      }
      bool any = false;
      for (bool a : alive) any = any || a;
      if (!any) throw std::runtime_error("sweep: every worker died; run the sweep again to resume");
    } else if (task) {
      results.append(reply.row_line);
      if (reply.row_line.find("\"status\":\"failed\"") != std::string::npos) ++failed;
      ++done;
    }
    progress.tick(done);
    hand_out();
  }
  progress.finish(done);
  return {done, failed};
}

}  // namespace

SweepSummary run_sweep(const SweepOptions& o, WorkerPool& pool) {
  const SweepSpec spec = read_sweep_spec(o.spec);
  std::vector<SweepTask> first = first_tier_tasks(spec);
  // --shard I/N: whole groups (the tier rule's `per` fields; serving points one by one), so that
  // each shard can pick its own best points to simulate.
  if (o.shards > 1) {
    std::map<std::string, std::size_t> group_index;
    std::vector<SweepTask> mine;
    for (auto& t : first) {
      const std::string group = t.tier == "estimate" ? tier_group(spec, t) : t.key;
      const std::size_t index = group_index.emplace(group, group_index.size()).first->second;
      if (static_cast<int>(index % static_cast<std::size_t>(o.shards)) == o.shard) mine.push_back(std::move(t));
    }
    first = std::move(mine);
  }
  ResultsFile results(o.output);
  SweepSummary summary;
  auto pending = [&](const std::vector<SweepTask>& tasks) {
    std::vector<const SweepTask*> out;
    for (const auto& t : tasks) {
      if (results.done(t.key)) ++summary.skipped;
      else out.push_back(&t);
    }
    return out;
  };
  std::vector<const SweepTask*> todo = pending(first);
  if (summary.skipped) std::cerr << fmt::format("sweep: {} of {} points already in {}\n", summary.skipped, first.size(), o.output);
  auto [ran, failed] = run_tier("estimate+serve", todo, pool, results);
  summary.run += ran;
  summary.failed += failed;

  std::vector<nlohmann::json> rows;
  for (const auto& t : first) {
    const nlohmann::json* row = results.done(t.key);
    rows.push_back(row ? *row : nlohmann::json());
  }
  const std::vector<SweepTask> second = simulate_tasks(spec, first, rows);
  const std::size_t skipped_before = summary.skipped;
  todo = pending(second);
  if (summary.skipped > skipped_before) {
    std::cerr << fmt::format("sweep: {} of {} simulations already in {}\n", summary.skipped - skipped_before, second.size(),
                             o.output);
  }
  if (!second.empty()) {
    std::tie(ran, failed) = run_tier("simulate", todo, pool, results);
    summary.run += ran;
    summary.failed += failed;
  }

  std::vector<std::string> keys;
  for (const std::vector<SweepTask>* tasks : {static_cast<const std::vector<SweepTask>*>(&first), &second}) {
    for (const auto& t : *tasks) {
      keys.push_back(t.key);
      if (!results.done(t.key)) continue;
      (t.tier == "estimate" ? summary.estimated : t.tier == "serve" ? summary.served : summary.simulated) += 1;
    }
  }
  // Same sweep file, same file: rows in the sweep's order whatever order the workers finished in.
  results.rewrite_in_order(keys);
  if (!o.csv.empty()) write_rows_csv(o.csv, read_result_rows(o.output));
  std::cerr << fmt::format("sweep: {} rows in {}: {} estimated, {} simulated, {} served ({} run now, {} found done, {} failed)\n",
                           summary.estimated + summary.simulated + summary.served, o.output, summary.estimated,
                           summary.simulated, summary.served, summary.run, summary.skipped, summary.failed);
  return summary;
}

}  // namespace clustersim::cli
