"""python3 -m clustersim.report: every figure from a sweep's rows, one self-contained page, and
estimate/simulate/serve --format json outputs accepted as well."""
import json
import re
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib", reason="the report needs matplotlib (python3-matplotlib)")

from clustersim.report import main  # noqa: E402
from clustersim.report_figures import FIGURES  # noqa: E402
from conftest import BINARY  # noqa: E402


def figures_in(page):
    return {m.group(1) for m in re.finditer(r'<figure id="([^"]+)"><figcaption>[^<]*</figcaption><svg', page)}


def test_every_figure_from_a_sweep(small_sweep, tmp_path):
    out = tmp_path / "report.html"
    assert main([str(small_sweep), "-o", str(out)]) == 0
    page = out.read_text()
    assert figures_in(page) == {fid for fid, _, _ in FIGURES}
    assert "Not in these results" not in page
    # Self-contained: nothing to fetch, no script.
    assert "<script" not in page and "src=" not in page
    assert not re.search(r'href="https?:', page)
    # The top plans with the command lines that reproduce them.
    assert page.count("<code>clustersim estimate --model llama-3-8b") >= 10


def test_same_rows_same_page(small_sweep, tmp_path):
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    assert main([str(small_sweep), "-o", str(a)]) == 0
    assert main([str(small_sweep), "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_command_outputs_are_accepted(tmp_path):
    files = []
    for name, args in [
        ("estimate16.json", ["estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "16", "--plan",
                             json.dumps({"tensor_model_parallel_size": 8, "global_batch_size": 64, "seq_length": 4096,
                                         "bf16": True})]),
        ("simulate32.json", ["simulate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "32", "--plan",
                             json.dumps({"tensor_model_parallel_size": 8, "global_batch_size": 64, "seq_length": 4096,
                                         "bf16": True}), "--scenario", "examples/stragglers.json"]),
        ("serve.json", ["serve", "--model", "configs/serve/opt-13b.json", "--cluster", "a100-hdr", "--profile", "a100",
                        "--deployment", "configs/serve/distserve-opt-13b-deployment.json", "--workload",
                        "configs/serve/sharegpt-like.json", "--rate", "2", "--slo-ttft", "0.2", "--slo-tpot", "0.1"]),
    ]:
        path = tmp_path / name
        path.write_text(subprocess.run([BINARY, *args, "--format", "json"], check=True, capture_output=True,
                                       text=True).stdout)
        files.append(str(path))
    out = tmp_path / "outputs.html"
    assert main([*files, "-o", str(out)]) == 0
    drawn = figures_in(out.read_text())
    assert {"mfu-vs-gpus", "breakdown", "pareto", "scenario-spread", "serving-attainment", "serving-latency"} <= drawn


def test_bad_file_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tier": "estimate"}\nnot json\n{"tier": "estimate"}\n')
    assert main([str(bad), "-o", str(tmp_path / "x.html")]) == 2
    assert "bad.jsonl:2: not JSON" in capsys.readouterr().err


def test_runs_as_a_module(small_sweep, tmp_path):
    out = tmp_path / "m.html"
    r = subprocess.run([sys.executable, "-m", "clustersim.report", str(small_sweep), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 10000
