#pragma once
// Writes Chrome trace / Perfetto legacy JSON (open in ui.perfetto.dev): pid = rank,
// tid = stream, complete events for work, flow arrows for send/receive pairs.
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace clustersim::traces {

struct TraceSpan {
  std::int64_t pid = 0;  // rank
  std::int64_t tid = 0;  // stream
  std::string name;
  std::string category;
  double start_s = 0;
  double duration_s = 0;
  std::map<std::string, std::string> args;  // ordered: deterministic output
};

struct TraceFlow {  // an arrow from the end of one span to the start of another
  std::int64_t id = 0;
  std::int64_t from_pid = 0, from_tid = 0;
  double from_s = 0;
  std::int64_t to_pid = 0, to_tid = 0;
  double to_s = 0;
  std::string name;
};

class ChromeTraceWriter {
 public:
  void name_process(std::int64_t pid, std::string name);
  void name_thread(std::int64_t pid, std::int64_t tid, std::string name);
  void add_span(TraceSpan span);
  void add_flow(TraceFlow flow);

  // Events are written sorted by (pid, tid, start), timestamps in microseconds.
  void write(std::ostream& out) const;

  // What was added so far (e.g. to carry a trace out of a child process).
  const std::vector<TraceSpan>& spans() const { return spans_; }
  const std::map<std::int64_t, std::string>& process_names() const { return process_names_; }
  const std::map<std::pair<std::int64_t, std::int64_t>, std::string>& thread_names() const { return thread_names_; }

 private:
  std::map<std::int64_t, std::string> process_names_;
  std::map<std::pair<std::int64_t, std::int64_t>, std::string> thread_names_;
  std::vector<TraceSpan> spans_;
  std::vector<TraceFlow> flows_;
};

}  // namespace clustersim::traces
