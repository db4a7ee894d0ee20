"""The clustersim Python module returns what the CLI prints with --format json, and raises
InputError with the file and JSON pointer on bad input."""
import json
import os

import pytest

import clustersim
from conftest import cli_json

PLAN_8B = {"tensor_model_parallel_size": 8, "pipeline_model_parallel_size": 4, "micro_batch_size": 1,
           "global_batch_size": 32, "seq_length": 8192, "sequence_parallel": True, "bf16": True}


def test_estimate_equals_the_cli():
    assert clustersim.estimate("llama-3-8b", "h100-ndr", 32, plan=PLAN_8B) == \
        cli_json("estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", 32, "--plan", json.dumps(PLAN_8B))


def test_estimate_from_a_preset_plan_and_options():
    got = clustersim.estimate("llama-3.1-405b", "h100-ndr", 16384, plan="llama-3.1-405b-16k", ablate=["variability"],
                              fleet="none")
    want = cli_json("estimate", "--model", "llama-3.1-405b", "--cluster", "h100-ndr", "--gpus", 16384, "--plan",
                    "llama-3.1-405b-16k", "--ablate", "variability", "--fleet", "none")
    assert got == want
    assert got["breakdown"]["variability_s"] == 0


def test_simulate_with_a_scenario_and_seed_equals_the_cli():
    got = clustersim.simulate("llama-3-8b", "h100-ndr", 32, plan=PLAN_8B, scenario="examples/stragglers.json", seed=3)
    want = cli_json("simulate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", 32, "--plan",
                    json.dumps(PLAN_8B), "--scenario", "examples/stragglers.json", "--seed", 3)
    assert got == want
    assert got["scenario"]["seed"] == 3
    assert "critical_path" in got


def test_search_explain_serve_equal_the_cli():
    assert clustersim.search("llama-3-8b", "h100-ndr", 64, 256, 4096, top=3) == \
        cli_json("search", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", 64, "--global-batch-size", 256,
                 "--seq-length", 4096, "--top", 3)
    assert clustersim.explain("llama-3-8b", cluster="h100-ndr", gpus=32, plan=PLAN_8B) == \
        cli_json("explain", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", 32, "--plan", json.dumps(PLAN_8B))
    serve_args = dict(deployment="configs/serve/distserve-opt-13b-deployment.json",
                      workload="configs/serve/sharegpt-like.json", profile="a100", rate=2, slo_ttft=0.2, slo_tpot=0.1)
    got = clustersim.serve("configs/serve/opt-13b.json", "a100-hdr", **serve_args)
    assert got == cli_json("serve", "--model", "configs/serve/opt-13b.json", "--cluster", "a100-hdr", "--deployment",
                           serve_args["deployment"], "--workload", serve_args["workload"], "--profile", "a100",
                           "--rate", 2, "--slo-ttft", 0.2, "--slo-tpot", 0.1)
    assert 0 <= got["slo"]["attainment"] <= 1


def test_a_model_given_as_a_dict():
    with open("configs/models/llama-3-8b.json") as f:
        config = json.load(f)
    by_dict = clustersim.estimate(config, "h100-ndr", 32, plan=PLAN_8B)
    by_name = clustersim.estimate("llama-3-8b", "h100-ndr", 32, plan=PLAN_8B)
    assert by_dict["step_time_s"] == by_name["step_time_s"]


def test_bad_plan_raises_input_error_with_pointer(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"tensor_model_parallel_size": 6, "seq_length": 4096, "bf16": True}))
    with pytest.raises(clustersim.InputError) as caught:
        clustersim.estimate("llama-3-70b", "h100-ndr", 48, plan=str(plan))
    e = caught.value
    assert e.file == str(plan)
    assert e.pointer == "/tensor_model_parallel_size"
    assert "does not divide num_attention_heads=64" in str(e)
    assert len(e.errors) == 2  # heads and intermediate size, both reported


def test_bad_inline_plan_and_unknown_preset():
    with pytest.raises(clustersim.InputError) as caught:
        clustersim.estimate("llama-3-8b", "h100-ndr", 8, plan={"seq_length": 4096, "micro_batch_sise": 1})
    assert caught.value.pointer == "/micro_batch_sise"
    with pytest.raises(clustersim.InputError) as caught:
        clustersim.estimate("llama-3-9b", "h100-ndr", 8, plan=PLAN_8B)
    assert "llama-3-8b" in str(caught.value)  # the closest preset as a hint


def test_bad_sweep_spec_raises_input_error_with_pointer():
    spec = {"training": {"models": ["llama-3-8b"], "clusters": ["h100-ndr"], "gpus": [0],
                         "plans": [{"grid": {"seq_length": 4096}}]}}
    with pytest.raises(clustersim.InputError) as caught:
        clustersim.sweep(spec, "/tmp/never-written.jsonl")
    assert caught.value.pointer == "/training/gpus/0"
    assert "is not a GPU count" in str(caught.value)


def test_sweep_rows_are_the_commands_json(small_sweep):
    rows = clustersim.read_rows(small_sweep)
    tiers = [r["tier"] for r in rows]
    assert tiers.count("estimate") == 24 and tiers.count("simulate") == 12 and tiers.count("serve") == 3
    row = next(r for r in rows if r["tier"] == "estimate" and r["status"] == "ok")
    p = row["point"]
    assert row["result"] == clustersim.estimate(p["model"], p["cluster"], p["gpus"], plan=p["plan"], profile="h100")


def test_to_pandas(small_sweep):
    pandas = pytest.importorskip("pandas", reason="pandas is optional (python3-pandas)")
    frame = clustersim.to_pandas(clustersim.read_rows(small_sweep))
    assert isinstance(frame, pandas.DataFrame)
    assert "result.breakdown.bubble_s" in frame.columns


def test_version_is_the_cli_version():
    import subprocess
    from conftest import BINARY
    assert subprocess.run([BINARY, "--version"], capture_output=True, text=True).stdout.strip() == clustersim.version
    assert os.path.basename(clustersim.__file__) == "__init__.py"
