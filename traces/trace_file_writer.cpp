#include "traces/trace_file_writer.hpp"

#include <zlib.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace clustersim::traces {

void write_trace_file(const ChromeTraceWriter& trace, const std::string& path) {
  const bool gzip = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (!gzip) {
    std::ofstream out(path, std::ios::binary);
    trace.write(out);
    if (!out) throw std::runtime_error("cannot write trace " + path);
    return;
  }
  std::ostringstream text;
  trace.write(text);
  const std::string bytes = text.str();
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write trace " + path);
  const int written = bytes.empty() ? 0 : gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  const int closed = gzclose(f);
  if (written != static_cast<int>(bytes.size()) || closed != Z_OK) {
    throw std::runtime_error("cannot write trace " + path);
  }
}

}  // namespace clustersim::traces
