#pragma once
// Request traces for serving replay:
//   - Azure LLM inference CSV (AzurePublicDataset 2023/2024): header TIMESTAMP,ContextTokens,
//     GeneratedTokens; TIMESTAMP a date-time ("2023-11-16 18:15:46.6805900") or seconds.
//   - Mooncake JSONL (FAST'25 traces): {"timestamp": ms, "input_length", "output_length",
//     "hash_ids": [...]} per line.
// Arrivals are shifted to start at 0, then multiplied by time_scale; lengths by length_scale.
// A bad line is an InputError naming the file and "line N".
#include <string>

#include "models/inputs/serve_workload.hpp"

namespace clustersim::traces {

RequestSet read_request_trace(const TraceSpec& spec);

}  // namespace clustersim::traces
