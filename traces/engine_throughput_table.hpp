#pragma once
// Reads a table of published serving-engine throughputs (offline runs: fixed lengths, every
// request queued at once, one instance): "# key: value" comment lines describing the source,
// then a CSV header and one row per published figure. Columns: docs/serve.md, "Check against
// published engine numbers".
#include <cstdint>
#include <string>
#include <vector>

namespace clustersim {

struct EngineThroughputRow {
  int line = 0;  // 1-based line of the file, for messages
  std::string engine;          // "trtllm" (trtllm-bench throughput)
  std::string engine_version;  // as the source names it, e.g. "1.0"
  std::string model;           // preset or config.json path
  std::string cluster;         // cluster preset or file
  std::int64_t tp = 1;
  bool attention_dp = false;   // the engine ran attention data-parallel (MoE), not modelled
  std::string dtype;           // bf16 | fp16 | fp8
  std::int64_t isl = 0, osl = 0, num_requests = 0;
  double kv_cache_fraction = 0.9;  // of the memory left after the weights
  std::string metric;          // output_tokens_per_s
  double published = 0;
  std::string source;          // URL (commit-pinned) and table
};

struct EngineThroughputTable {
  std::string file;
  std::vector<EngineThroughputRow> rows;
};

// Throws InputErrors naming "line N" and the column.
EngineThroughputTable read_engine_throughput_table(const std::string& text, const std::string& file);
EngineThroughputTable load_engine_throughput_table(const std::string& path);

}  // namespace clustersim
