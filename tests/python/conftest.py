"""Shared by the Python tests: where the binary and the sources are (set by ctest), and the small
example sweep run once per test session."""
import json
import os
import subprocess
import sys

import pytest

SOURCE_DIR = os.environ.get("CLUSTERSIM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("CLUSTERSIM_BINARY", os.path.join(SOURCE_DIR, "build", "tools", "clustersim"))


def cli_json(*args):
    """What `clustersim ARGS --format json` prints, parsed."""
    out = subprocess.run([BINARY, *map(str, args), "--format", "json"], check=True, capture_output=True, text=True,
                         cwd=SOURCE_DIR)
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory):
    """The rows file of examples/sweep-small.json, run through the module."""
    import clustersim
    out = tmp_path_factory.mktemp("sweep") / "small.jsonl"
    clustersim.sweep(os.path.join(SOURCE_DIR, "examples", "sweep-small.json"), out, jobs=2)
    return out


@pytest.fixture(autouse=True)
def in_source_dir(monkeypatch):
    """Relative paths (examples/, configs/) as in the docs: from the repository."""
    monkeypatch.chdir(SOURCE_DIR)
    sys.stderr.flush()
