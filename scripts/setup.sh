#!/usr/bin/env bash
# Installs what is missing (Debian packages), then configures and builds clustersim.
#   scripts/setup.sh [--sanitize] [TARGET...]
#     build/ (Release) or build-asan/ (ASan + UBSan); every target (tests, CUDA kernels) unless
#     TARGETs are named (scripts/run.sh builds only clustersim). Prints the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake ninja-build pkg-config libsimgrid-dev libeigen3-dev nlohmann-json3-dev
          libfmt-dev libcli11-dev libgtest-dev libgmock-dev zlib1g-dev)
# Optional, like CUDA: without them the build and the other tests still pass and say what they
# skipped. MPI: sweeps under mpirun; Python headers + pybind11: the Python module; pytest: its
# tests; matplotlib: the report; chromium: the report's browser test (docs/sweep.md, docs/python.md).
# Installed for a full build (the test command), not when TARGETs are named (scripts/run.sh's
# main job needs none of them).
optional=(openmpi-bin libopenmpi-dev python3-dev pybind11-dev python3-pybind11 python3-pytest
          python3-matplotlib chromium)
missing_from() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(missing_from "${packages[@]}")
named_targets=0
for a in "$@"; do [[ $a == --sanitize ]] || named_targets=1; done
missing_optional=()
((named_targets)) || mapfile -t missing_optional < <(missing_from "${optional[@]}")
if ((${#missing[@]} + ${#missing_optional[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >&2
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >&2
  fi
  if ((${#missing_optional[@]})); then
    echo "setup: installing the optional ${missing_optional[*]}" >&2
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing_optional[@]}" >&2 ||
      echo "setup: could not install ${missing_optional[*]}; the build skips what needs them (see its messages)" >&2
  fi
fi

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLUSTERSIM_SANITIZE=ON)
  shift
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake -S . -B "$build_dir" -G Ninja "${cmake_args[@]}" >&2
cmake --build "$build_dir" "${targets[@]}" >&2
echo "$build_dir"
