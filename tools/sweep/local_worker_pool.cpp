// Forked local workers (-j N): one socket pair each; the coordinator writes a task line and reads
// the row line back. SimGrid allows one engine per process, and a simulation already runs in a
// child of its worker (sim/platform/child_process), so workers need no threads.
#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "tools/sweep/sweep_task.hpp"
#include "tools/sweep/worker_pool.hpp"

namespace clustersim::cli {

namespace {

bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads from `fd` into `buffer` until it holds a newline; false at end of input or error.
bool read_line(int fd, std::string& buffer, std::string& line) {
  for (;;) {
    const std::size_t newline = buffer.find('\n');
    if (newline != std::string::npos) {
      line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      return true;
    }
    char chunk[65536];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

struct Worker {
  pid_t pid = -1;
  int fd = -1;
  std::string buffer;
};

class LocalWorkerPool final : public WorkerPool {
 public:
  explicit LocalWorkerPool(int count) : workers_(static_cast<std::size_t>(count)) {
    ::signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < count; ++i) start(i);
  }
  ~LocalWorkerPool() override { shutdown(); }

  int workers() const override { return static_cast<int>(workers_.size()); }

  void send(int worker, const std::string& task_line) override {
    // A worker that died since its last answer shows up as a failed write or at the next receive.
    write_all(workers_[static_cast<std::size_t>(worker)].fd, task_line + '\n');
  }

  Reply receive() override {
    std::vector<pollfd> fds;
    for (const Worker& w : workers_) fds.push_back({w.fd, POLLIN, 0});
    for (;;) {
      // A worker whose buffer already holds a line answers first.
      for (std::size_t i = 0; i < workers_.size(); ++i) {
        if (workers_[i].buffer.find('\n') != std::string::npos) return answer(static_cast<int>(i));
      }
      const int ready = ::poll(fds.data(), fds.size(), -1);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents != 0) return answer(static_cast<int>(i));
      }
    }
  }

  bool restart(int worker) override {
    start(worker);
    return true;
  }

  void shutdown() override {
    for (Worker& w : workers_) {
      if (w.fd >= 0) ::close(w.fd);  // end of input: the worker leaves its loop
      w.fd = -1;
    }
    for (Worker& w : workers_) {
      if (w.pid > 0) ::waitpid(w.pid, nullptr, 0);
      w.pid = -1;
    }
  }

 private:
  void start(int i) {
    Worker& w = workers_[static_cast<std::size_t>(i)];
    if (w.fd >= 0) ::close(w.fd);
    if (w.pid > 0) ::waitpid(w.pid, nullptr, 0);
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
    }
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      // A coordinator killed with SIGKILL takes its workers along: only the points in flight are lost.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::close(pair[0]);
      for (const Worker& other : workers_) {
        if (other.fd >= 0) ::close(other.fd);
      }
      serve_tasks_on_fds(pair[1], pair[1]);
      _exit(0);
    }
    ::close(pair[1]);
    w = {pid, pair[0], {}};
  }

  Reply answer(int i) {
    Worker& w = workers_[static_cast<std::size_t>(i)];
    Reply reply;
    reply.worker = i;
    if (read_line(w.fd, w.buffer, reply.row_line)) return reply;
    reply.died = true;
    int status = 0;
    ::waitpid(w.pid, &status, 0);
    w.pid = -1;
    reply.why = WIFSIGNALED(status) ? fmt::format("worker {} was killed by signal {} ({})", i, WTERMSIG(status),
                                                  strsignal(WTERMSIG(status)))
                                    : fmt::format("worker {} exited with code {}", i, WEXITSTATUS(status));
    return reply;
  }

  std::vector<Worker> workers_;
};

}  // namespace

std::unique_ptr<WorkerPool> make_local_worker_pool(int count) { return std::make_unique<LocalWorkerPool>(count); }

void serve_tasks_on_fds(int in_fd, int out_fd) {
  std::string buffer, line;
  while (read_line(in_fd, buffer, line)) {
    if (!write_all(out_fd, run_task_line(line) + '\n')) return;
  }
}

}  // namespace clustersim::cli
