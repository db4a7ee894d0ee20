#pragma once
// Reads the JSON file nccl-tests writes with -J / --output_file (format version 3 as written by
// src/util.cu): {"version", "args": [argv...], "env": ["K=V"...], "nccl_version",
// "config": {nthreads, ngpus, warmup_iters, iterations, devices: [{rank, hostname,
// device_info}...]}, "results": [{size, count, type, redop, root, out_of_place: {time (or
// cpu_time), alg_bw, bus_bw, nwrong} | null, in_place: {...}, out_of_place_per_iter: {times_us
// ...}}...]}.
//
// The collective comes from args[0] (the binary), else the caller's hint. nccl-tests writes
// one "devices" entry per process (the first GPU of each), so ranks = entries x nthreads x
// ngpus; nodes = distinct hostnames. When every result carries per-iteration times (-I), the
// samples are those times (CUDA events, one per iteration); otherwise each result's time, the
// host-timed mean of "iterations". alg_bw and bus_bw are checked against size / time as for
// the stdout log.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "models/cost/measurement_record.hpp"

namespace clustersim {

// True when `doc` has the shape of nccl-tests -J output.
bool looks_like_nccl_tests_json(const nlohmann::json& doc);

// Throws InputErrors naming JSON pointers.
RecordSet read_nccl_tests_json(const nlohmann::json& doc, const std::string& file,
                               std::optional<CollectiveKind> collective_hint = std::nullopt);

}  // namespace clustersim
