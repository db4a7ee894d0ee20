"""The report as one self-contained HTML page: inline SVG figures and a table, no script and
nothing fetched from the network."""
import html
import statistics

from clustersim.report_data import ok, plan_family

STYLE = """
body { font-family: sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1000px; color: #222; }
figure { margin: 1.5em 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-weight: bold; margin-bottom: .4em; }
table { border-collapse: collapse; font-size: 12px; } td, th { border: 1px solid #ccc; padding: 2px 6px; }
td.num { text-align: right; } code { font-size: 10px; word-break: break-all; }
"""


def top_plans_table(rows, top=15):
    estimates = sorted((r for r in ok(rows, "estimate") if r["result"].get("fits_in_memory", True)),
                       key=lambda r: -r["result"]["mfu"])[:top]
    simulated = {}
    for r in ok(rows, "simulate"):
        simulated.setdefault(r["point"].get("estimate_key"), []).append(r["result"]["mfu"])
    if not estimates:
        return ""
    lines = ["<table id=\"top-plans\"><tr><th>#</th><th>GPUs</th><th>plan</th><th>global batch</th><th>step (s)</th>"
             "<th>MFU</th><th>simulated MFU (mean, min)</th><th>tokens/s/GPU</th><th>memory (GiB)</th>"
             "<th>command line</th></tr>"]
    for i, r in enumerate(estimates, 1):
        res = r["result"]
        sims = simulated.get(r.get("key"), [])
        sim_text = f"{100 * statistics.mean(sims):.1f} %, {100 * min(sims):.1f} %" if sims else ""
        lines.append(
            f"<tr><td>{i}</td><td class=num>{res['num_gpus']}</td><td>{html.escape(plan_family(res, r.get('point')))}</td>"
            f"<td class=num>{res['plan']['global_batch_size']}</td><td class=num>{res['step_time_s']:.3f}</td>"
            f"<td class=num>{100 * res['mfu']:.1f} %</td><td class=num>{sim_text}</td>"
            f"<td class=num>{res['tokens_per_s_per_gpu']:.1f}</td>"
            f"<td class=num>{res['memory_per_gpu_bytes'] / 2**30:.1f}</td>"
            f"<td><code>{html.escape(r.get('command') or '')}</code></td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def page(title, rows, figures, sources):
    """figures: (id, caption, svg or None); those without an SVG are listed as not drawn."""
    counts = {}
    for r in rows:
        counts[(r.get("tier"), r.get("status"))] = counts.get((r.get("tier"), r.get("status")), 0) + 1
    summary = ", ".join(f"{n} {tier} {status}" for (tier, status), n in sorted(counts.items()))
    versions = sorted({r.get("version") for r in rows if r.get("version")})
    drawn = [(i, c, s) for i, c, s in figures if s]
    missing = [c for _, c, s in figures if not s]
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>{len(rows)} rows from {html.escape(', '.join(sources))}: {html.escape(summary)}."
            f"{' Made by ' + html.escape(', '.join(versions)) + '.' if versions else ''}</p>"]
    if missing:
        body.append(f"<p>Not in these results, so not drawn: {html.escape('; '.join(missing))}.</p>")
    for fid, caption, svg in drawn:
        body.append(f"<figure id=\"{fid}\"><figcaption>{html.escape(caption)}</figcaption>{svg}</figure>")
    table = top_plans_table(rows)
    if table:
        body.append("<h2>Top plans</h2>" + table)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title><style>" +
            STYLE + "</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
