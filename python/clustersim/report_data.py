"""What the report reads: sweep rows (JSON Lines), or single ``estimate``/``simulate``/``serve``
``--format json`` outputs, turned into one list of rows of the same shape as a sweep's."""
import json


def _row_of_output(result, source):
    """A sweep-like row for one command's --format json output."""
    if "ttft_s" in result:
        tier = "serve"
        point = {"model": result.get("model"), "cluster": result.get("cluster"),
                 "deployment": result.get("deployment"), "rate_per_s": result.get("rate_per_s")}
    elif "step_time_s" in result and "plan" in result:
        tier = "simulate" if "critical_path" in result else "estimate"
        point = {"model": result.get("model"), "cluster": result.get("cluster"), "gpus": result.get("num_gpus"),
                 "plan": result.get("plan")}
        if "scenario" in result:
            point["scenario"] = result["scenario"].get("file")
            point["seed"] = result["scenario"].get("seed")
    else:
        raise ValueError(f"{source}: neither a sweep row nor an estimate, simulate or serve --format json output")
    return {"key": source, "tier": tier, "status": "ok", "point": point, "command": None, "result": result}


def load_rows(paths):
    """Every row of every file, in order. A file is JSON Lines of sweep rows, or one JSON output."""
    rows = []
    for path in paths:
        with open(path) as f:
            text = f.read()
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict) and "tier" not in whole:
            rows.append(_row_of_output(whole, str(path)))
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if number == len(text.splitlines()):
                    continue  # a last line cut short by a stopped sweep
                raise ValueError(f"{path}:{number}: not JSON")
            rows.append(row if "tier" in row else _row_of_output(row, f"{path}:{number}"))
    return rows


def ok(rows, tier):
    return [r for r in rows if r.get("tier") == tier and r.get("status") == "ok"]


def plan_family(result, point=None):
    """A plan without its data parallelism (which follows from the GPU count):
    "TP8 PP16 VPP2 CP1 MBS1 full"."""
    p = result.get("plan", {})
    text = (f"TP{p.get('tensor_model_parallel_size')} PP{p.get('pipeline_model_parallel_size')}"
            f"{' VPP%d' % p['virtual_stages_per_pipeline_rank'] if p.get('virtual_stages_per_pipeline_rank', 1) > 1 else ''}"
            f" CP{p.get('context_parallel_size')}"
            f"{' EP%d' % p['expert_model_parallel_size'] if p.get('expert_model_parallel_size', 1) > 1 else ''}"
            f" MBS{p.get('micro_batch_size')}")
    given = (point or {}).get("plan")
    if isinstance(given, dict) and given.get("recompute_granularity"):
        text += " " + given["recompute_granularity"]
    return text


def plan_label(row):
    """A plan at its GPU count, with its global batch: "TP8 PP16 CP1 MBS1 full, 8192 GPUs, GBS 2048"."""
    r = row["result"]
    return f"{plan_family(r, row.get('point'))}, {r.get('num_gpus')} GPUs, GBS {r.get('plan', {}).get('global_batch_size')}"
