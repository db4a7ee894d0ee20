"""clustersim in Python: the CLI's commands as functions returning plain dicts and lists.

    import clustersim
    r = clustersim.estimate("llama-3-8b", "h100-ndr", 8, plan={"micro_batch_size": 1,
                            "global_batch_size": 64, "seq_length": 8192, "bf16": True})
    r["mfu"], r["breakdown"]["bubble_s"]

The report: ``python3 -m clustersim.report RESULTS.jsonl -o report.html``. docs/python.md.
"""
from _clustersim import version

from clustersim.commands import (estimate, explain, read_rows, search, serve, simulate, sweep,
                                 validate)
from clustersim.errors import CommandError, InputError
from clustersim.frames import to_pandas

__all__ = ["CommandError", "InputError", "estimate", "explain", "read_rows", "search", "serve",
           "simulate", "sweep", "to_pandas", "validate", "version"]
