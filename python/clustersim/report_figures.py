"""The report's figures, each a function from rows to an SVG string (matplotlib), or None when
the rows hold nothing it can draw."""
import io
import statistics

import matplotlib
import matplotlib.ticker

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

from clustersim.report_data import ok, plan_family, plan_label  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3,
                     "svg.hashsalt": "clustersim"})

# The step-time breakdown, in the order the CLI prints it, with the replay's two extra causes.
BREAKDOWN = [("compute_s", "compute"), ("bubble_s", "bubble"), ("tp_comm_s", "TP comm"), ("cp_comm_s", "CP comm"),
             ("ep_comm_s", "EP comm"), ("pp_comm_s", "PP comm"), ("dp_comm_s", "DP comm"),
             ("optimizer_s", "optimizer"), ("fixed_s", "fixed costs"), ("variability_s", "variability"),
             ("imbalance_s", "data imbalance"), ("straggler_s", "stragglers"), ("contention_s", "contention")]
MAX_FAMILIES = 8


def _gpu_axis(ax, gpus):
    """GPU counts on a log axis, labelled with the counts themselves."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(gpus))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("GPUs")


def _svg(fig):
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]


def _fitting_estimates(rows):
    return [r for r in ok(rows, "estimate") if r["result"].get("fits_in_memory", True)]


def metric_vs_gpus(rows, metric, label):
    """The best value of `metric` per plan family at each GPU count (the best families only)."""
    best = {}
    for r in _fitting_estimates(rows):
        family = plan_family(r["result"], r.get("point"))
        gpus = r["result"]["num_gpus"]
        best.setdefault(family, {})
        best[family][gpus] = max(best[family].get(gpus, 0.0), r["result"][metric])
    if not best:
        return None
    ranked = sorted(best, key=lambda f: -max(best[f].values()))[:MAX_FAMILIES]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for family in ranked:
        points = sorted(best[family].items())
        ax.plot([g for g, _ in points], [v * (100 if metric == "mfu" else 1) for _, v in points], marker="o",
                label=family)
    _gpu_axis(ax, {g for f in ranked for g in best[f]})
    ax.set_ylabel(label)
    note = f" (best {len(ranked)} of {len(best)} plan families)" if len(best) > len(ranked) else ""
    ax.set_title(f"{label} against GPU count per plan family{note}")
    ax.legend(fontsize=7, loc="best")
    return _svg(fig)


def _stacked(ax, labels, breakdowns, title):
    left = [0.0] * len(labels)
    colors = plt.get_cmap("tab20")
    for i, (key, name) in enumerate(BREAKDOWN):
        values = [b.get(key, 0.0) for b in breakdowns]
        if not any(values):
            continue
        ax.barh(range(len(labels)), values, left=left, label=name, color=colors(i))
        left = [l + v for l, v in zip(left, values)]
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per step")
    ax.set_title(title)


def breakdowns(rows, top=10):
    """Stacked step-time breakdowns: the best estimated plans, and the simulated ones (mean over
    scenarios and seeds)."""
    estimates = sorted(_fitting_estimates(rows), key=lambda r: -r["result"]["mfu"])[:top]
    simulated = {}
    for r in ok(rows, "simulate"):
        simulated.setdefault(plan_label(r), []).append(r["result"]["breakdown"])
    if not estimates and not simulated:
        return None
    panels = [p for p in [estimates, simulated] if p]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 0.45 * sum(len(p) for p in panels) + 2.2 * len(panels)),
                             squeeze=False)
    if estimates:
        _stacked(axes[0][0], [plan_label(r) for r in estimates], [r["result"]["breakdown"] for r in estimates],
                 f"Step time of the {len(estimates)} best estimated plans (by MFU)")
    if simulated:
        labels = sorted(simulated)
        means = [{k: statistics.mean(b.get(k, 0.0) for b in simulated[l]) for k, _ in BREAKDOWN} for l in labels]
        _stacked(axes[-1][0], labels, means, "Simulated step time (mean over scenarios and seeds)")
    # One legend for both panels, above them, in the breakdown's order.
    handles = {}
    for row in axes:
        for handle, label in zip(*row[0].get_legend_handles_labels()):
            handles.setdefault(label, handle)
    order = [name for _, name in BREAKDOWN if name in handles]
    fig.legend([handles[n] for n in order], order, loc="upper center", ncol=7, fontsize=7, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return _svg(fig)


def pareto(rows):
    """Throughput against GPUs: every fitting plan, and the front (no plan with fewer or as many
    GPUs is faster)."""
    points = [(r["result"]["num_gpus"], r["result"]["tokens_per_s"], r) for r in _fitting_estimates(rows)]
    if not points:
        return None
    front, best = [], 0.0
    for gpus, tps, r in sorted(points, key=lambda p: (p[0], -p[1])):
        if tps > best:
            front.append((gpus, tps, r))
            best = tps
    fig, ax = plt.subplots(figsize=(7.5, 4))
    ax.scatter([p[0] for p in points], [p[1] / 1e6 for p in points], s=8, alpha=0.3, color="gray", label="plans")
    ax.step([p[0] for p in front], [p[1] / 1e6 for p in front], where="post", color="C3", marker="o", label="Pareto front")
    for gpus, tps, r in front:
        ax.annotate(plan_family(r["result"], r.get("point")), (gpus, tps / 1e6), fontsize=6, xytext=(4, -10),
                    textcoords="offset points")
    _gpu_axis(ax, {p[0] for p in points})
    ax.set_ylabel("million tokens/s")
    ax.set_title("Throughput against GPUs: the Pareto front")
    ax.legend(fontsize=7)
    return _svg(fig)


def scenario_spread(rows):
    """Per simulated plan, a box of its MFU over scenarios and seeds, the estimate's MFU as a dot."""
    per_plan, scenarios = {}, set()
    for r in ok(rows, "simulate"):
        per_plan.setdefault(plan_label(r), []).append(100 * r["result"]["mfu"])
        scenarios.add(r["point"].get("scenario"))
    if not per_plan:
        return None
    labels = sorted(per_plan)
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(labels) + 1.8))
    ax.boxplot([per_plan[l] for l in labels], vert=False, labels=labels)
    estimates = {}
    for r in ok(rows, "simulate"):
        estimates[plan_label(r)] = 100 * r["result"]["mfu"] * r["result"]["step_time_s"] / r["result"]["estimate_step_time_s"]
    ax.scatter([estimates[l] for l in labels], range(1, len(labels) + 1), marker="x", color="C3", zorder=3,
               label="closed-form estimate")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("MFU (%)")
    ax.set_title(f"Simulated MFU over {len(scenarios)} scenario(s) and their seeds, per plan")
    ax.legend(fontsize=7)
    return _svg(fig)


def _serving(rows):
    series = {}
    for r in ok(rows, "serve"):
        name = f"{r['result'].get('model')} / {str(r['point'].get('deployment') or r['result'].get('deployment')).split('/')[-1]}"
        series.setdefault(name, []).append(r["result"])
    return {k: sorted(v, key=lambda x: x["rate_per_s"]) for k, v in series.items()}


def serving_attainment(rows):
    """SLO attainment against request rate, per deployment."""
    series = _serving(rows)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for name, results in series.items():
        ax.plot([x["rate_per_s"] for x in results], [100 * x["slo"]["attainment"] for x in results], marker="o", label=name)
    ax.set_xlabel("requests per second")
    ax.set_ylabel("SLO attainment (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Serving: SLO attainment against rate")
    ax.legend(fontsize=7)
    return _svg(fig)


def serving_latency(rows):
    """TTFT and TPOT percentiles against request rate."""
    series = _serving(rows)
    if not series:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, metric, title in [(axes[0], "ttft_s", "TTFT"), (axes[1], "tpot_s", "TPOT")]:
        for i, (name, results) in enumerate(series.items()):
            rates = [x["rate_per_s"] for x in results]
            for q, style in [("p50", "-"), ("p90", "--"), ("p99", ":")]:
                ax.plot(rates, [1e3 * x[metric][q] for x in results], style, marker="o", markersize=3, color=f"C{i}",
                        label=f"{name} {q}")
        ax.set_xlabel("requests per second")
        ax.set_ylabel(f"{title} (ms)")
        ax.set_title(f"{title} percentiles")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _svg(fig)


# id, title, function: the report's figures in page order.
FIGURES = [
    ("mfu-vs-gpus", "MFU against GPUs", lambda rows: metric_vs_gpus(rows, "mfu", "MFU (%)")),
    ("tokens-per-gpu-vs-gpus", "Tokens/s per GPU against GPUs",
     lambda rows: metric_vs_gpus(rows, "tokens_per_s_per_gpu", "tokens/s per GPU")),
    ("breakdown", "Where the step time goes", breakdowns),
    ("pareto", "Pareto front of throughput against GPUs", pareto),
    ("scenario-spread", "Spread over straggler scenarios", scenario_spread),
    ("serving-attainment", "Serving: SLO attainment", serving_attainment),
    ("serving-latency", "Serving: TTFT and TPOT", serving_latency),
]
