#include "traces/chrome_trace_writer.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace clustersim::traces {

namespace {

constexpr double kMicrosecondsPerSecond = 1e6;

}  // namespace

void ChromeTraceWriter::name_process(std::int64_t pid, std::string name) {
  process_names_[pid] = std::move(name);
}

void ChromeTraceWriter::name_thread(std::int64_t pid, std::int64_t tid, std::string name) {
  thread_names_[{pid, tid}] = std::move(name);
}

void ChromeTraceWriter::add_span(TraceSpan span) { spans_.push_back(std::move(span)); }

void ChromeTraceWriter::add_flow(TraceFlow flow) { flows_.push_back(std::move(flow)); }

void ChromeTraceWriter::write(std::ostream& out) const {
  using json = nlohmann::ordered_json;
  json events = json::array();
  for (const auto& [pid, name] : process_names_) {
    events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"tid", 0},
                      {"args", {{"name", name}}}});
  }
  for (const auto& [key, name] : thread_names_) {
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", key.first},
                      {"tid", key.second}, {"args", {{"name", name}}}});
  }
  std::vector<const TraceSpan*> spans;
  for (const auto& s : spans_) spans.push_back(&s);
  std::stable_sort(spans.begin(), spans.end(), [](const TraceSpan* a, const TraceSpan* b) {
    return std::tie(a->pid, a->tid, a->start_s) < std::tie(b->pid, b->tid, b->start_s);
  });
  for (const TraceSpan* s : spans) {
    json e = {{"ph", "X"},
              {"name", s->name},
              {"cat", s->category},
              {"pid", s->pid},
              {"tid", s->tid},
              {"ts", s->start_s * kMicrosecondsPerSecond},
              {"dur", s->duration_s * kMicrosecondsPerSecond}};
    if (!s->args.empty()) e["args"] = s->args;
    events.push_back(std::move(e));
  }
  for (const auto& f : flows_) {
    events.push_back({{"ph", "s"}, {"id", f.id}, {"name", f.name}, {"cat", "flow"},
                      {"pid", f.from_pid}, {"tid", f.from_tid},
                      {"ts", f.from_s * kMicrosecondsPerSecond}});
    events.push_back({{"ph", "f"}, {"bp", "e"}, {"id", f.id}, {"name", f.name}, {"cat", "flow"},
                      {"pid", f.to_pid}, {"tid", f.to_tid},
                      {"ts", f.to_s * kMicrosecondsPerSecond}});
  }
  json doc = {{"traceEvents", events}, {"displayTimeUnit", "ns"}};
  // Names come from input files (per-op traces): invalid UTF-8 is replaced, not a failure.
  out << doc.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
}

}  // namespace clustersim::traces
