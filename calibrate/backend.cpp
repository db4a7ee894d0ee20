#include "calibrate/backend.hpp"

#include <chrono>
#include <ctime>
#include <fstream>

#include "calibrate/cpu_backend.hpp"
#include "calibrate/cuda_backend_loader.hpp"

extern char** environ;

namespace clustersim::calibrate {

AttentionRecord attention_record_of(const AttentionCase& c, Dtype fallback, std::string implementation) {
  AttentionRecord a;
  a.pass = c.pass == "backward" ? AttentionPass::kBackward
           : c.pass == "decode" ? AttentionPass::kDecode
                                : AttentionPass::kForward;
  a.batch = c.batch;
  a.heads = c.heads;
  a.kv_heads = c.kv_heads;
  a.seq_q = c.seq_q;
  a.seq_kv = c.seq_kv;
  a.head_dim = c.head_dim;
  a.causal = c.causal;
  a.dtype = dtype_from_string(c.dtype).value_or(fallback);
  a.implementation = std::move(implementation);
  return a;
}

void BackendRegistry::add(const std::string& name, BackendFactory factory) {
  factories_[name] = std::move(factory);
}

std::unique_ptr<Backend> BackendRegistry::create(const std::string& name,
                                                 const BackendOptions& options) const {
  const auto found = factories_.find(name);
  if (found == factories_.end()) {
    std::string known;
    for (const auto& [n, f] : factories_) {
      if (!known.empty()) known += ", ";
      known += n;
    }
    throw std::invalid_argument("unknown backend '" + name + "' (known: " + known + ")");
  }
  return found->second(options);
}

std::vector<std::string> BackendRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, f] : factories_) out.push_back(n);
  return out;
}

void register_builtin_backends(BackendRegistry& registry) {
  registry.add("cpu", [](const BackendOptions& o) { return make_cpu_backend(o); });
  registry.add("cuda", [](const BackendOptions& o) { return load_cuda_backend(o); });
}

std::map<std::string, std::string> nccl_cuda_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = entry.substr(0, eq);
    if (name.rfind("NCCL_", 0) == 0 || name.rfind("CUDA_", 0) == 0) env[name] = entry.substr(eq + 1);
  }
  return env;
}

std::string utc_date_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32] = {};
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        const std::size_t first = name.find_first_not_of(" \t");
        return first == std::string::npos ? "unknown" : name.substr(first);
      }
    }
  }
  return "unknown";
}

}  // namespace clustersim::calibrate
