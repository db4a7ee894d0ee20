#include "traces/nccl_tests_common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace clustersim {

namespace {

struct Binary {
  std::string_view stem;  // before "_perf"
  std::optional<CollectiveKind> kind;
};
constexpr Binary kBinaries[] = {
    {"all_reduce", CollectiveKind::kAllReduce},
    {"all_gather", CollectiveKind::kAllGather},
    {"reduce_scatter", CollectiveKind::kReduceScatter},
    {"alltoall", CollectiveKind::kAllToAll},
    {"broadcast", CollectiveKind::kBroadcast},
    {"reduce", CollectiveKind::kReduce},
    {"sendrecv", CollectiveKind::kSendRecv},
    {"alltoallv", std::nullopt},
    {"gather", std::nullopt},
    {"scatter", std::nullopt},
    {"hypercube", std::nullopt},
};

constexpr double kBytesPerGB = 1e9;
constexpr double kTolerance = 0.02;

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "./build/all_reduce_perf_mpi" -> "all_reduce"; "" when it is no nccl-tests binary.
std::string binary_stem(std::string_view program) {
  auto slash = program.find_last_of('/');
  if (slash != std::string_view::npos) program.remove_prefix(slash + 1);
  for (std::string_view suffix : {"_perf_mpi", "_perf"}) {
    if (program.size() > suffix.size() && program.ends_with(suffix)) {
      return std::string(program.substr(0, program.size() - suffix.size()));
    }
  }
  return "";
}

}  // namespace

std::optional<CollectiveKind> collective_from_nccl_tests_binary(std::string_view program) {
  std::string stem = binary_stem(program);
  for (const auto& b : kBinaries) {
    if (b.stem == stem) return b.kind;
  }
  return std::nullopt;
}

bool looks_like_nccl_tests_binary(std::string_view token) {
  std::string stem = binary_stem(token);
  return std::any_of(std::begin(kBinaries), std::end(kBinaries),
                     [&](const Binary& b) { return b.stem == stem; });
}

std::optional<CollectiveKind> collective_from_file_name(std::string_view file_name) {
  std::string name = lowercase(file_name);
  // Longest names first, so that "all_reduce" is not read as "reduce".
  constexpr std::pair<std::string_view, CollectiveKind> kNames[] = {
      {"reduce_scatter", CollectiveKind::kReduceScatter}, {"all_reduce", CollectiveKind::kAllReduce},
      {"all_gather", CollectiveKind::kAllGather},         {"all_to_all", CollectiveKind::kAllToAll},
      {"alltoall", CollectiveKind::kAllToAll},             {"allreduce", CollectiveKind::kAllReduce},
      {"allgather", CollectiveKind::kAllGather},           {"broadcast", CollectiveKind::kBroadcast},
      {"sendrecv", CollectiveKind::kSendRecv},             {"send_recv", CollectiveKind::kSendRecv},
      {"reduce", CollectiveKind::kReduce}};
  for (const auto& [n, kind] : kNames) {
    if (name.find(n) != std::string::npos) return kind;
  }
  return std::nullopt;
}

std::string nccl_tests_binary_hint() {
  return "keep the command line (e.g. \"./build/all_reduce_perf -b 8 -e 1G\") or the "
         "\"# Collective test starting: all_reduce_perf\" line in the log, or name the file after "
         "the collective (all_reduce, all_gather, reduce_scatter, alltoall, broadcast, reduce, "
         "sendrecv)";
}

std::string normalize_nccl_tests_dtype(std::string_view type) {
  std::string t = lowercase(type);
  if (t == "float" || t == "float32") return "fp32";
  if (t == "half" || t == "float16") return "fp16";
  if (t == "bfloat16") return "bf16";
  if (t == "double" || t == "float64") return "fp64";
  if (t == "f8e4m3" || t == "f8e5m2" || t == "fp8_e4m3" || t == "fp8_e5m2") return "fp8";
  return t;
}

std::string nccl_version_from_code(long code) {
  if (code <= 0) return "";
  // NCCL_VERSION(X,Y,Z) is X*10000+Y*100+Z from 2.9 on, X*1000+Y*100+Z before.
  if (code >= 20900) return fmt::format("{}.{}.{}", code / 10000, code % 10000 / 100, code % 100);
  return fmt::format("{}.{}.{}", code / 1000, code % 1000 / 100, code % 100);
}

bool collect_nccl_env(std::string_view assignment, std::map<std::string, std::string>& env) {
  auto eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  std::string_view key = assignment.substr(0, eq);
  if (!key.starts_with("NCCL_") && !key.starts_with("CUDA_")) return false;
  bool name_ok = std::all_of(key.begin(), key.end(), [](char c) {
    return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '_';
  });
  if (!name_ok) return false;
  std::string value(assignment.substr(eq + 1));
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    value = value.substr(1, value.size() - 2);
  }
  env[std::string(key)] = value;
  return true;
}

void apply_pinned_nccl_env(const std::map<std::string, std::string>& env, CollectiveRecord& c) {
  // A single plain value pins it; lists ("Ring,Tree"), exclusions ("^LL") and per-collective
  // settings ("allreduce:tree") leave NCCL a choice.
  auto pinned = [&](const char* key) -> std::optional<std::string> {
    auto it = env.find(key);
    if (it == env.end() || it->second.empty()) return std::nullopt;
    if (it->second.find_first_of(",^:;") != std::string::npos) return std::nullopt;
    return lowercase(it->second);
  };
  if (auto algo = pinned("NCCL_ALGO")) c.algorithm = *algo;
  if (auto proto = pinned("NCCL_PROTO")) {
    if (*proto == "simple" || *proto == "ll" || *proto == "ll128") c.protocol = *proto;
  }
}

std::optional<std::string> bandwidth_mismatch(CollectiveKind kind, int ranks, bool bus,
                                              const PrintedBandwidth& p) {
  double factor = bus ? bus_bandwidth_factor(kind, ranks) : 1.0;
  double ours = algorithm_bandwidth_bytes_per_s(p.size_bytes, p.time_us * 1e-6) * factor / kBytesPerGB;
  double allowed = kTolerance * ours + p.printed_resolution / 2 +
                   ours * (p.time_resolution_us / 2) / p.time_us;
  if (std::abs(p.gbps - ours) <= allowed) return std::nullopt;
  return fmt::format(
      "nccl-tests printed {} {} GB/s, but {} bytes in {} us on {} ranks give {:.4g} GB/s for {}{}",
      bus ? "busbw" : "algbw", p.gbps, p.size_bytes, p.time_us, ranks, ours, to_string(kind),
      bus ? fmt::format(" (busbw factor {:.4g})", factor) : "");
}

std::string bandwidth_mismatch_hint() {
  return "more than 2 % apart: the columns are mapped wrongly, or the collective or the rank "
         "count is not what the log says (algbw = size / time; busbw = algbw x 2(n-1)/n for "
         "all_reduce, (n-1)/n for all_gather, reduce_scatter and alltoall, 1 otherwise)";
}

}  // namespace clustersim
