#include "sim/platform/child_process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

namespace clustersim::sim {

namespace {

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

// The child writes one status byte ('+' result, '!' error message) and the text, then _exits
// without running the parent's atexit handlers.
std::string run_in_child_process(const std::function<std::string()>& body) {
  int fds[2];
  if (pipe(fds) != 0) throw ChildProcessError("pipe() failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    throw ChildProcessError("fork() failed");
  }
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    char status = '+';
    try {
      out = body();
    } catch (const std::exception& e) {
      status = '!';
      out = e.what();
    } catch (...) {
      status = '!';
      out = "unknown exception";
    }
    const bool ok = write_all(fds[1], &status, 1) && write_all(fds[1], out.data(), out.size());
    close(fds[1]);
    std::fflush(nullptr);
    _exit(ok ? 0 : 3);
  }
  close(fds[1]);
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (text.empty()) {
    if (WIFSIGNALED(status)) throw ChildProcessError("simulation process killed by signal " + std::to_string(WTERMSIG(status)));
    throw ChildProcessError("simulation process exited with code " + std::to_string(WEXITSTATUS(status)) + " and no result");
  }
  if (text[0] == '!') throw ChildProcessError(text.substr(1));
  return text.substr(1);
}

}  // namespace clustersim::sim
