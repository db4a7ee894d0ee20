#!/usr/bin/env python3
"""NCCL's own cost model (ncclTopoTuneModel + ncclTopoGetAlgoTime + topoGetAlgoInfo),
re-implemented from the spec in clustersim docs/nccl-tuning-model.md.

Reference: https://github.com/NVIDIA/nccl at tag v2.30.7-1
(commit 73cf112295c33aee2b895f329f592f2a9b4b0f97): src/graph/tuning.cc, src/enqueue.cc,
src/graph/connect.cc, src/graph/search.cc, src/transport/nvls.cc, src/include/*.h.
This file holds numbers and formulas written from the spec; it copies no NCCL code.

Usage: python3 nccl_tuner.py [--json OUT.json] [--candidates]
Standard library only. Times are in microseconds, bandwidths in GB/s (1 GB/s = 1000 bytes/us).
"""
import json
import math
import sys

# ---------------------------------------------------------------- constants
ALGOS = ["Tree", "Ring", "CollNetDirect", "CollNetChain", "NVLS", "NVLSTree", "PAT"]
PROTOS = ["LL", "LL128", "Simple"]
TREE, RING, CND, CNC, NVLS, NVLST, PAT = range(7)
LL, LL128, SIMPLE = range(3)
HW_NVLINK, HW_PCI, HW_NET = range(3)
VOLTA, AMPERE, HOPPER, BLACKWELL = range(4)

# baseLatencies[algo][proto] (us)
BASE_LAT = [
    [6.8, 14.0, 8.4], [6.6, 14.0, 8.4],
    [0, 0, 0], [0, 0, 0],
    [0, 0, 0], [0, 0, 0],
    [8.0, 8.0, 8.0],
]
# hwLatencies[hw][algo][proto] (us)
HW_LAT = [
    [[0.6, 1.25, 4.0], [0.6, 1.9, 3.4], [0, 0, 3.7], [0, 0, 2.8], [0, 0, 25], [0, 0, 25], [0, 0, 4.0]],   # NVLINK
    [[1.0, 1.9, 4.0], [1.0, 2.5, 5.7], [0, 0, 3.7], [0, 0, 2.8], [0, 0, 0], [0, 0, 0], [0, 0, 4.0]],     # PCI
    [[5.0, 8.5, 14], [2.7, 4.0, 14.0], [0, 0, 31], [0, 0, 30], [0, 0, 18], [0, 0, 20.9], [0, 0, 14]],    # NET
]
# [index1][index2]; index1 = compcap index on 1 node, else 0 (Intel/other CPU) or 1 (AMD/mixed)
LL_MAX_BWS = [[39.0, 39.0, 20.4], [87.7, 22.5, 19.0], [141.0, 45.0, 35.0], [282.0, 90.0, 70.0]]
# [compcap][index2], index2 = nNodes-1 for 1 or 2 nodes, else 2
PER_CH_MAX_RING_LL128_BWS = [[20.0] * 3, [20.0] * 3, [36.7] * 3, [40.0] * 3]
PER_CH_MAX_TREE_LL128_BWS = [[20.0] * 3, [20.0] * 3, [36.7, 36.7, 29.0], [55.6, 31.67, 20.0]]
PER_CH_MAX_TREE_BWS = [[26.5, 18.5, 10.0], [24.0, 23.6, 17.8], [38.7, 41.4, 36.0], [70.0, 42.8, 24.0]]
PER_CH_MAX_NVLS_TREE_BWS = [[26.5, 18.5, 10.0], [24.0, 23.6, 17.8], [0.0, 57.7, 45.5], [0.0, 96.0, 80.0]]
NVLS_EFFICIENCY = [0.0, 0.0, 0.85, 0.74]
# treeCorrectionFactor[proto][log2(nBytes/64)], 64 B .. 256 MiB
TREE_CORRECTION = [
    [1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0, 1.0],
    [1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0, 1.0],
    [.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9, .9],
]
LL_THREAD_THRESHOLD, LL128_THREAD_THRESHOLD, SIMPLE_THREAD_THRESHOLD = 8, 8, 64
LL_MAX_NTHREADS, LL128_MAX_NTHREADS, SIMPLE_MAX_NTHREADS, MAX_NTHREADS = 512, 640, 512, 640
PCI_BW = 12.0
NVLS_NCHANNELS_SM90 = 16
TOPO_PATTERN_BALANCED_TREE, TOPO_PATTERN_TREE = 1, 3

# ---------------------------------------------------------------- systems (assumptions, see spec section 4)
# graph = (nChannels, bwIntra, bwInter) per algorithm as the topology search leaves them after the
# cross-rank minimum in init.cc; comm_nchannels = comm->nChannels after ncclTopoPostset.
SYSTEMS = {
    "dgx-h100": {
        "compcap": 90, "cpu": "intel", "ppn": 8, "latency_inter": 0.0, "max_tree_pattern": TOPO_PATTERN_BALANCED_TREE,
        "single": {"ring": (12, 30.0, 30.0), "tree": (12, 30.0, 30.0), "nvls": (8, 40.0, 60.0), "comm_nchannels": 24},
        "multi": {"ring": (8, 48.0, 48.0), "tree": (8, 48.0, 48.0), "nvls": (8, 40.0, 48.0), "comm_nchannels": 16},
    },
    "dgx-a100": {
        "compcap": 80, "cpu": "amd", "ppn": 8, "latency_inter": 0.0, "max_tree_pattern": TOPO_PATTERN_BALANCED_TREE,
        "single": {"ring": (12, 20.0, 20.0), "tree": (12, 20.0, 20.0), "nvls": (0, 0.0, 0.0), "comm_nchannels": 24},
        "multi": {"ring": (16, 12.0, 12.0), "tree": (16, 12.0, 12.0), "nvls": (0, 0.0, 0.0), "comm_nchannels": 32},
    },
}


def log2i(n):
    """floor(log2(n)); -1 for n == 0 (log2Down of 0)."""
    return n.bit_length() - 1


class Comm:
    def __init__(self, system, n_nodes, nvls=True, collnet=False, ppn=None):
        s = SYSTEMS[system]
        self.system = system
        self.compcap = s["compcap"]
        self.cpu = s["cpu"]
        self.ppn_i = ppn or s["ppn"]
        self.n_nodes = n_nodes
        self.n_ranks = n_nodes * self.ppn_i
        regime = s["single"] if n_nodes == 1 else s["multi"]
        self.graph = {}
        for a in range(7):
            key = {TREE: "tree", RING: "ring", NVLS: "nvls", NVLST: "nvls", PAT: "tree"}.get(a)  # PAT uses the tree graph (init.cc)
            self.graph[a] = regime[key] if key else (0, 0.0, 0.0)
        self.comm_nchannels = regime["comm_nchannels"]
        self.latency_inter = s["latency_inter"]
        self.max_tree_pattern = s["max_tree_pattern"]
        # NVLS needs sm90+, an NVSwitch, NCCL_NVLS_ENABLE and >= 2 NVLS graph channels
        self.nvls_support = bool(nvls) and self.compcap >= 90 and self.graph[NVLS][0] > 0
        self.nvls_channels = NVLS_NCHANNELS_SM90 if self.nvls_support else 0
        self.collnet = collnet  # SHARP (CollNet) plugin; not modelled beyond the enable flags
        self.bw = {}
        self.lat = {}
        self._tune()

    # ------------------------------------------------ ncclTopoTuneModel
    def _tune(self):
        cc = self.compcap
        cci = BLACKWELL if cc >= 100 else HOPPER if cc >= 90 else AMPERE if cc >= 80 else VOLTA
        n_nodes, n_ranks = self.n_nodes, self.n_ranks
        index2 = n_nodes - 1 if n_nodes <= 2 else 2
        index1 = cci if n_nodes == 1 else (1 if self.cpu == "amd" else 0)
        ll_max_bw = LL_MAX_BWS[index1][index2]
        per_ch_tree = PER_CH_MAX_TREE_BWS[cci][index2]
        per_ch_ring_ll128 = PER_CH_MAX_RING_LL128_BWS[cci][index2]
        per_ch_tree_ll128 = PER_CH_MAX_TREE_LL128_BWS[cci][index2]
        per_ch_nvls_tree = PER_CH_MAX_NVLS_TREE_BWS[cci][index2]
        ppn = n_ranks / n_nodes
        intra_hw = HW_NVLINK  # every graph's typeIntra is NVL on DGX nodes
        hw = intra_hw if n_nodes == 1 else HW_NET
        net_overhead_base = 2.0 if self.cpu == "amd" else 1.0
        for coll in ("AllReduce", "ReduceScatter", "AllGather"):
            nsteps = 2 * (n_ranks - 1) if coll == "AllReduce" else n_ranks - 1
            for a in range(7):
                if coll in ("ReduceScatter", "AllGather") and a not in (PAT, RING, NVLS, CND):
                    continue
                if coll == "AllReduce" and a == PAT:
                    continue
                for p in range(3):
                    if a in (NVLS, NVLST) and p != SIMPLE:
                        continue
                    if a == PAT and (p != SIMPLE or not (n_nodes == n_ranks)):
                        continue  # PAT: Simple only, and only with one GPU per node
                    g_nch, g_intra, g_inter = self.graph[a]
                    collnet = a in (CND, CNC)
                    bw = g_intra if (n_nodes <= 2 or collnet) else g_inter
                    if a in (NVLS, NVLST):
                        if g_nch < 2:
                            continue
                        intra_bw = g_intra * NVLS_EFFICIENCY[cci] * (g_nch - 1) / g_nch
                        intra_bw *= 2.0 if coll == "AllReduce" else (ppn - 1) / ppn
                        inter_bw = g_inter * (2 if (n_nodes <= 2 and a == NVLST) else 1)
                        bw = min(intra_bw, inter_bw, per_ch_nvls_tree if a == NVLST else float("inf"))
                    bus = g_nch * bw
                    if a == RING and p == LL:
                        bus = min(ll_max_bw, bus * .5)
                    if a == RING and p == LL128:
                        bus = min(bus * 0.92, g_nch * per_ch_ring_ll128)
                    if a == TREE and coll == "AllReduce":
                        bus = min(bus * .92, g_nch * per_ch_tree)
                    if a == TREE and p == LL:
                        bus = min(bus * 1.0 / 3.8, ll_max_bw)
                    if a == TREE and p == LL128:
                        bus = min(bus * (7.0 / 9.0 if n_nodes == 1 else 120.0 / 128.0), g_nch * per_ch_tree_ll128)
                    if a == TREE and self.max_tree_pattern == TOPO_PATTERN_TREE:
                        bus *= .85
                    if a == PAT:
                        bus *= .75
                    if collnet:
                        bus = 0.0  # CollNet (SHARP) not modelled here: see spec section 2.6
                    if a == NVLS and coll in ("AllGather", "ReduceScatter") and n_nodes > 1:
                        bus = 0.0  # needs CollNet iallgather/ireducescatter
                    # bus -> algorithm bandwidth
                    if not (a != RING and coll in ("AllGather", "ReduceScatter")):
                        ratio = n_ranks / nsteps if a in (RING, NVLS, NVLST) else .5
                        bus *= ratio
                    # latency
                    lat = BASE_LAT[a][p]
                    intra_lat = HW_LAT[intra_hw][a][p]
                    inter_lat = HW_LAT[HW_NET][TREE][p] if ppn == 1 else HW_LAT[HW_NET][a][p]
                    inter_lat += self.latency_inter
                    if p == SIMPLE:
                        inter_lat += self.latency_inter
                    if a == RING:
                        net_overhead = 0.0
                        if n_nodes > 1:
                            net_overhead = net_overhead_base * (3 if p == SIMPLE else 1)
                        intra_lat = max(intra_lat, net_overhead)
                        n_inter = 0 if n_nodes == 1 else (2 * (n_nodes - 1) if coll == "AllReduce" else n_nodes - 1)
                        lat += (nsteps - n_inter) * intra_lat + n_inter * inter_lat
                    elif a == TREE:
                        if coll == "AllReduce":
                            lat += 2 * ((n_ranks // n_nodes - 1) * intra_lat + log2i(n_nodes) * inter_lat)
                    elif a == NVLS:
                        lat = intra_lat + (inter_lat if n_nodes > 1 else 0.0)
                    elif a == NVLST:
                        lat += intra_lat + 2 * log2i(n_nodes) * inter_lat
                    elif a == PAT:
                        lat += log2i(n_nodes) * (inter_lat / 3.5) + n_ranks * 2.8
                    # enables (defaults; environment overrides ignored)
                    enabled = True
                    if a == NVLST and n_nodes == 1:
                        enabled = False
                    if not self.collnet and (collnet or (a == NVLS and n_nodes > 1)):
                        enabled = False
                    if a in (NVLS, NVLST) and not self.nvls_support:
                        enabled = False
                    # LL128 default enable: sm90 path to NIC <= PXN, sm80 <= PXB; NVLink intra: true on DGX
                    self.bw[(coll, a, p)] = bus if enabled else 0.0
                    self.lat[(coll, a, p)] = lat

    # ------------------------------------------------ ncclTopoGetAlgoTime
    def algo_time(self, coll, a, p, nbytes):
        bw = self.bw.get((coll, a, p), 0.0)
        lat = self.lat.get((coll, a, p), 0.0)
        if bw == 0:
            return -1.0
        log_size = log2i(nbytes >> 6)
        if a == TREE and coll == "AllReduce" and 0 <= log_size < 23:
            bw *= TREE_CORRECTION[p][log_size]
        if (a == RING and p == SIMPLE and self.n_nodes > 1 and coll == "AllReduce"
                and nbytes // (self.comm_nchannels * self.n_ranks) >= 64):
            lat *= 1.9 if self.compcap < 80 else 1.4  # ring plateau
        return lat * 1 + nbytes / (1000 * bw)  # numPipeOps = 1

    # ------------------------------------------------ topoGetAlgoInfo
    def select(self, coll, nbytes):
        best, best_t = None, float("inf")
        table = {}
        for a in range(7):
            if a in (CND, CNC) and not self.collnet:
                continue
            if a in (NVLS, NVLST) and not self.nvls_support:
                continue
            if a == NVLS and not self.collnet and self.n_nodes > 1:
                continue
            for p in range(3):
                t = self.algo_time(coll, a, p, nbytes)
                table[(a, p)] = t
                if 0.0 <= t < best_t:
                    best, best_t = (a, p), t
        a, p = best
        return a, p, best_t, table, self.exec_channels(a, p, nbytes)

    def exec_channels(self, a, p, nbytes):
        """Channels the kernel is launched with (does not change the predicted time)."""
        if a in (NVLS, NVLST):
            if self.n_nodes > 1 and a == NVLS:
                return min(self.nvls_channels, self.comm_nchannels)
            return self.nvls_channels
        nc = self.comm_nchannels
        if p == SIMPLE:
            ring_simple_default = 256 if self.graph[RING][1] * self.graph[RING][0] <= PCI_BW else SIMPLE_MAX_NTHREADS
            nt = ring_simple_default if a == RING else SIMPLE_MAX_NTHREADS
            thr = SIMPLE_THREAD_THRESHOLD
        elif p == LL:
            nt = LL_MAX_NTHREADS
            thr = LL_THREAD_THRESHOLD * (self.n_ranks if a == RING else 1)
        else:
            nt = LL128_MAX_NTHREADS
            thr = LL128_THREAD_THRESHOLD
        while nbytes < nc * nt * thr and nc >= 2:
            nc -= 1
        return nc


# ---------------------------------------------------------------- derived cases
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def fmt_bytes(n):
    for unit, v in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= v and n % v == 0:
            return f"{n // v} {unit}"
    return f"{n} B"


def derived_cases():
    cases = []
    grid = [
        # (system, nvls, nNodes list, collective, bytes list)
        ("dgx-h100", True, [1], "AllReduce", [64 * KiB, 4 * MiB, 256 * MiB]),
        ("dgx-h100", False, [1], "AllReduce", [64 * KiB, 4 * MiB, 256 * MiB]),
        ("dgx-h100", True, [1], "AllGather", [4 * MiB, 256 * MiB]),
        ("dgx-h100", True, [1], "ReduceScatter", [4 * MiB, 256 * MiB]),
        ("dgx-h100", True, [2, 16, 128], "AllReduce", [1 * MiB, 64 * MiB, 1 * GiB]),
        ("dgx-h100", False, [2, 16, 128], "AllReduce", [1 * MiB, 64 * MiB, 1 * GiB]),
        ("dgx-h100", True, [4, 24, 192], "ReduceScatter", [64 * MiB, 1 * GiB]),
        ("dgx-h100", True, [4, 24, 192], "AllGather", [64 * MiB, 1 * GiB]),
        ("dgx-h100", False, [1024], "AllReduce", [64 * MiB, 1 * GiB]),
        ("dgx-a100", False, [1], "AllReduce", [64 * KiB, 4 * MiB, 256 * MiB]),
        ("dgx-a100", False, [1], "AllGather", [4 * MiB, 256 * MiB]),
        ("dgx-a100", False, [2, 16, 128], "AllReduce", [1 * MiB, 64 * MiB, 1 * GiB]),
        ("dgx-a100", False, [4, 24, 192], "ReduceScatter", [64 * MiB, 1 * GiB]),
        ("dgx-a100", False, [1024], "AllReduce", [64 * MiB, 1 * GiB]),
    ]
    for system, nvls, nodes, coll, sizes in grid:
        for n in nodes:
            comm = Comm(system, n, nvls=nvls)
            for b in sizes:
                a, p, t, table, nc = comm.select(coll, b)
                cases.append({
                    "system": system, "arch": "sm90" if SYSTEMS[system]["compcap"] >= 90 else "sm80",
                    "nvls": bool(nvls and comm.nvls_support), "collective": coll, "bytes": b,
                    "nNodes": n, "gpus_per_node": comm.ppn_i, "nRanks": comm.n_ranks,
                    "algorithm": ALGOS[a], "protocol": PROTOS[p], "time_us": round(t, 3),
                    "exec_channels": nc,
                    "candidates_us": {f"{ALGOS[x]}/{PROTOS[y]}": round(v, 3) for (x, y), v in table.items() if v >= 0},
                })
    return cases


def main():
    cases = derived_cases()
    show_cand = "--candidates" in sys.argv
    print(f"{'#':>3} {'system':9} {'nvls':5} {'collective':13} {'bytes':>8} {'nodes':>5} {'ranks':>5} "
          f"{'algo/proto':17} {'time_us':>12} {'ch':>3}")
    for i, c in enumerate(cases, 1):
        print(f"{i:3d} {c['system']:9} {str(c['nvls']):5} {c['collective']:13} {fmt_bytes(c['bytes']):>8} "
              f"{c['nNodes']:5d} {c['nRanks']:5d} {c['algorithm'] + '/' + c['protocol']:17} {c['time_us']:12.3f} "
              f"{c['exec_channels']:3d}")
        if show_cand:
            print("      " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(c["candidates_us"].items(), key=lambda kv: kv[1])))
    if "--json" in sys.argv:
        out = sys.argv[sys.argv.index("--json") + 1]
        with open(out, "w") as f:
            json.dump(cases, f, indent=1)
        print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
