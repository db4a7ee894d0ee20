#include "calibrate/cuda_backend_loader.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace clustersim::calibrate {

#if defined(CLUSTERSIM_HAVE_CUDA) && CLUSTERSIM_HAVE_CUDA

namespace {

// The module is looked for beside the running executable (build/tools/ in a build tree).
std::filesystem::path module_path() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path dir = ec ? std::filesystem::current_path() : self.parent_path();
  return dir / CLUSTERSIM_CUDA_BACKEND_MODULE;
}

}  // namespace

std::unique_ptr<Backend> load_cuda_backend(const BackendOptions& options) {
  const std::filesystem::path path = module_path();
  // Opened once and never closed: the backend's code and vtables live in the module.
  void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (module == nullptr) {
    const char* why = dlerror();
    throw BackendUnavailable("cannot load the CUDA backend module " + path.string() + ": " +
                             (why ? why : "unknown dlopen error") +
                             " (build the clustersim_cuda_backend target; it is placed beside clustersim)");
  }
  using Factory = Backend* (*)(const BackendOptions&);
  auto make = reinterpret_cast<Factory>(dlsym(module, kCudaBackendEntry));
  if (make == nullptr) {
    throw BackendUnavailable(path.string() + " has no " + kCudaBackendEntry +
                             ": a module from another clustersim build? rebuild clustersim_cuda_backend");
  }
  return std::unique_ptr<Backend>(make(options));
}

#else

std::unique_ptr<Backend> load_cuda_backend(const BackendOptions&) {
  throw BackendUnavailable(
      "this clustersim was built without CUDA (no nvcc at configure time, or a sanitizer "
      "build): rebuild with the CUDA toolkit to use --backend cuda");
}

#endif

}  // namespace clustersim::calibrate
