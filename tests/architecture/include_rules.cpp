#include "tests/architecture/include_rules.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace clustersim::architecture {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

std::string first_component(std::string_view path) { return std::string(path.substr(0, path.find('/'))); }

std::string second_component(std::string_view path) {
  const auto slash = path.find('/');
  if (slash == std::string_view::npos) return {};
  const auto rest = path.substr(slash + 1);
  const auto next = rest.find('/');
  return next == std::string_view::npos ? std::string{} : std::string(rest.substr(0, next));
}

// The top-level layers and what each may include besides itself (docs/architecture.md).
bool layer_may_include(const std::string& from, const std::string& to) {
  if (to == "python") return from == "python" || from == "tests";  // nothing builds on the Python module
  if (from == to || from == "tools" || from == "tests" || from == "python") return true;
  if (from == "traces") return to == "models";
  if (from == "calibrate") return to == "models" || to == "traces" || to == "kernels";
  if (from == "sim") return to == "models" || to == "traces";
  return false;  // models and kernels include only themselves
}

// models/: floors, each may include itself and the floors before it.
constexpr std::array<std::string_view, 5> kModelFloors = {"inputs", "accounting", "cost", "lowering", "planning"};

int model_floor(const std::string& room) {
  const auto it = std::find(kModelFloors.begin(), kModelFloors.end(), room);
  return it == kModelFloors.end() ? -1 : static_cast<int>(it - kModelFloors.begin());
}

bool is_simgrid_header(std::string_view included) {
  return starts_with(included, "simgrid/") || starts_with(included, "xbt/") || included == "simgrid.hpp";
}

bool is_cuda_header(std::string_view included) {
  for (std::string_view prefix : {"cuda", "cublas", "nccl", "cupti", "curand", "cufft", "cusparse", "nvml", "nvtx"}) {
    if (starts_with(included, prefix) && included.find('/') == std::string_view::npos && included.ends_with(".h"))
      return true;
  }
  return false;
}

bool is_mpi_header(std::string_view included) { return included == "mpi.h" || starts_with(included, "openmpi/"); }

}  // namespace

std::optional<std::string> include_violation(const std::string& includer, const std::string& included) {
  const std::string from = first_component(includer);
  if (is_simgrid_header(included)) {
    if (starts_with(includer, "sim/platform/simgrid_") || from == "tests") return std::nullopt;
    return "SimGrid headers are included only by the adapter family sim/platform/simgrid_*";
  }
  if (is_cuda_header(included)) {
    if (from == "kernels" || includer == "calibrate/cuda_backend.cpp") return std::nullopt;
    return "CUDA headers are included only in kernels/ and calibrate/cuda_backend.cpp";
  }
  if (is_mpi_header(included)) {
    if (includer == "tools/sweep/mpi_module.cpp" || from == "tests") return std::nullopt;
    return "MPI headers are included only by tools/sweep/mpi_module.cpp (the module opened under mpirun)";
  }
  if (starts_with(included, "pybind11/")) {
    if (from == "python") return std::nullopt;
    return "pybind11 is included only in python/ (the Python module)";
  }
  const std::string to = first_component(included);
  static constexpr std::array<std::string_view, 8> kLayers = {"models", "traces", "calibrate", "kernels",
                                                              "sim", "tools", "tests", "python"};
  if (std::find(kLayers.begin(), kLayers.end(), to) == kLayers.end()) return std::nullopt;  // a library header
  if (!layer_may_include(from, to)) return from + "/ may not include from " + to + "/ (layers point one way)";
  if (from != to) return std::nullopt;
  const std::string from_room = second_component(includer), to_room = second_component(included);
  if (from == "models") {
    const int from_floor = model_floor(from_room), to_floor = model_floor(to_room);
    if (from_floor < 0 || to_floor < 0) return "models/ files live in one of inputs, accounting, cost, lowering, planning";
    if (to_floor > from_floor)
      return "models/" + from_room + " may not include models/" + to_room +
             " (floors: inputs <- accounting <- cost <- lowering <- planning)";
  }
  if (from == "sim") {
    static constexpr std::array<std::string_view, 4> kRooms = {"platform", "training", "serving", "whatif"};
    if (std::find(kRooms.begin(), kRooms.end(), from_room) == kRooms.end() ||
        std::find(kRooms.begin(), kRooms.end(), to_room) == kRooms.end())
      return "sim/ files live in one of platform, training, serving, whatif";
    if (from_room != to_room && to_room != "platform")
      return "sim/" + from_room + " may include only itself and sim/platform, not sim/" + to_room;
  }
  return std::nullopt;
}

}  // namespace clustersim::architecture
