#include "sim/platform/module_loader.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace clustersim::sim {

void* open_module_entry(const std::string& file_name, const std::string& build_path, const char* entry, bool global) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::string errors;
  for (const std::filesystem::path& path : {self.parent_path() / file_name, std::filesystem::path(build_path)}) {
    if (ec && path.is_relative()) continue;
    void* module = dlopen(path.c_str(), RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
    if (module == nullptr) {
      const char* why = dlerror();
      errors += "\n  " + path.string() + ": " + (why ? why : "unknown dlopen error");
      continue;
    }
    if (void* address = dlsym(module, entry)) return address;
    errors += "\n  " + path.string() + ": no " + entry + " (a module of another build?)";
  }
  throw std::runtime_error("cannot load " + file_name + ":" + errors);
}

}  // namespace clustersim::sim
