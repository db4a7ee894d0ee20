#pragma once
// Requests for a serving simulation: synthetic (Poisson or Gamma arrivals, length
// distributions) or a replayed trace (traces/request_trace_reader.hpp). Format: docs/serve.md.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/inputs/input_error.hpp"

namespace clustersim {

struct ServeRequest {
  double arrival_s = 0;
  std::int32_t input_tokens = 0;
  std::int32_t output_tokens = 0;
  std::uint32_t hash_begin = 0, hash_end = 0;  // prefix-block hashes in RequestSet::hash_ids
};

struct RequestSet {
  std::vector<ServeRequest> requests;  // sorted by arrival
  std::vector<std::uint64_t> hash_ids;
};

enum class LengthDistribution { kFixed, kUniform, kLognormal, kEmpirical };

struct LengthSpec {
  LengthDistribution kind = LengthDistribution::kFixed;
  double value = 0;              // fixed
  double min = 1, max = 0;       // uniform bounds; for the others a clip (max 0: none)
  double mean = 0, sigma = 1;    // lognormal: mean of the lengths, sigma of the log
  std::vector<std::pair<double, double>> table;  // empirical: (tokens, weight)
};

struct TraceSpec {
  std::string path;
  std::string format;  // "azure" or "mooncake"
  double time_scale = 1;    // arrival times are multiplied by it (0.5: twice the rate)
  double length_scale = 1;  // input and output lengths are multiplied by it
  std::int64_t max_requests = 0;  // 0: all
};

struct WorkloadSpec {
  std::string source;
  // Synthetic.
  std::string arrival = "poisson";  // poisson | gamma
  double rate_per_s = 1;
  double gamma_cv = 1;              // coefficient of variation of inter-arrival times (gamma)
  std::int64_t count = 0;           // requests; or
  double duration_s = 0;            // arrivals until this time
  LengthSpec input, output;
  // Or the (input, output) pairs of a dataset, in file order ("pairs": a CSV with prompt_len and
  // output_len columns, from first_row): request i takes pair i, as DistServe's benchmark
  // replays its sampled ShareGPT rows.
  std::vector<std::pair<std::int32_t, std::int32_t>> pairs;
  std::string pairs_source;
  // > 0: a drawn (input, output) pair with input + output >= this is redrawn, as datasets are
  // filtered to a model's context (DistServe keeps ShareGPT pairs below OPT's 2048 positions).
  std::int64_t max_total_tokens = 0;
  std::uint64_t seed = 1;
  // Replay.
  std::optional<TraceSpec> trace;
};

// Reads a workload (path or inline JSON); collects every problem, throws InputErrors.
WorkloadSpec load_workload_spec(const std::string& source, Diagnostics& diag);

// Draws the synthetic requests (deterministic for a seed). `rate_per_s` overrides the spec's.
RequestSet generate_requests(const WorkloadSpec& spec, double rate_per_s);

// Mean of a length distribution (after clipping, estimated by sampling for lognormal).
double length_mean(const LengthSpec& spec);

}  // namespace clustersim
