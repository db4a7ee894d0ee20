#pragma once
// The "cuda" backend's factory in the clustersim binary. The backend itself (cuda_backend.cpp
// and kernels/) is a separate module, libclustersim_cuda_backend.so beside the binary, opened
// only here and only when a run asks for --backend cuda: no other command loads the CUDA
// libraries. Throws BackendUnavailable when the build has no CUDA, the module is missing or
// cannot be loaded, or (from the module) no CUDA device is usable.
#include <memory>

#include "calibrate/backend.hpp"

namespace clustersim::calibrate {

std::unique_ptr<Backend> load_cuda_backend(const BackendOptions& options);

// The symbol the module exports (extern "C", so dlsym finds it by this name): a new backend,
// owned by the caller, or BackendUnavailable thrown.
inline constexpr const char* kCudaBackendEntry = "clustersim_make_cuda_backend";

}  // namespace clustersim::calibrate
