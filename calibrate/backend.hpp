#pragma once
// A calibration backend measures sweep cases into records (docs/profiles.md). Backends
// register by name in register_builtin_backends: "cpu" always, "cuda" through a module loaded
// at run time (cuda_backend_loader.hpp) when the build has CUDA, otherwise as one that says so.
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/cost/measurement_record.hpp"
#include "calibrate/sweep_case.hpp"

namespace clustersim::calibrate {

// The backend cannot run here (no CUDA device, built without CUDA). The CLI exits 2.
struct BackendUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct BackendOptions {
  int gpus = 1;
  int warmup_iterations = 3;
  int iterations = 10;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // How the sweeps are sized for this backend.
  virtual SweepScale scale() const = 0;
  // Whether the backend implements `suite` (the CUDA backend does not have every suite yet).
  virtual bool supports(Suite) const { return true; }
  // The source records of `suite` point at: system facts (same for all suites) and the method
  // (timer, L2 policy, iterations) of that suite. Its id is unique per suite.
  virtual RecordSource source(Suite suite) const = 0;
  // Measures one case: one record, or several (MoE: dispatch and combine). Records' `source`
  // and `label` are set by the caller.
  virtual std::vector<MeasurementRecord> measure(const SweepCase& c) = 0;
};

using BackendFactory = std::function<std::unique_ptr<Backend>(const BackendOptions&)>;

class BackendRegistry {
 public:
  void add(const std::string& name, BackendFactory factory);
  // Throws std::invalid_argument naming the registered backends for an unknown name; the
  // factory may throw BackendUnavailable.
  std::unique_ptr<Backend> create(const std::string& name, const BackendOptions& options) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, BackendFactory> factories_;
};

void register_builtin_backends(BackendRegistry& registry);

// The record shape of an attention case as a backend measured it; `fallback` is the dtype when
// the case's name is not one (each backend's native one).
AttentionRecord attention_record_of(const AttentionCase& c, Dtype fallback, std::string implementation);

// Provenance shared by backends: NCCL_* and CUDA_* variables of this process's environment,
// sorted; the date (UTC, ISO 8601); the CPU model from /proc/cpuinfo ("unknown" without it).
std::map<std::string, std::string> nccl_cuda_environment();
std::string utc_date_now();
std::string cpu_model_name();

}  // namespace clustersim::calibrate
