"""The clustersim commands as Python functions.

Each function builds the command line the CLI would take from its arguments and runs it in this
process through the same code as the ``clustersim`` executable (the ``_clustersim`` extension,
``tools/command_line.hpp``), with ``--format json``; the result is that JSON as plain dicts and
lists, so ``estimate(...)`` equals ``clustersim estimate ... --format json``.

Arguments take what the CLI takes: a preset name, a path, or inline JSON; a dict is passed as
inline JSON. Keyword options are the command's long options with ``_`` for ``-``
(``fleet="none"``, ``ablate=["variability"]``, ``require_fit=True``), plus ``megatron_args`` for
``--from-megatron-args``. Bad input raises ``InputError`` with the file and JSON pointer.
"""
import json
import os
import sys
import tempfile

import _clustersim

from clustersim.errors import CommandError, InputError

_FLAG_NAMES = {"megatron_args": "--from-megatron-args", "operations": "--ops"}


def _option_value(value):
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def command_line(command, positional=(), **options):
    """The clustersim command line (without the program name) for a command and its options."""
    args = command.split() + [_option_value(p) for p in positional]
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
        args += [flag] if value is True else [flag, _option_value(value)]
    return args


def run(args, accept_exit_codes=(0,)):
    """Runs one clustersim command line; returns what it printed on stdout (str).

    Warnings and progress go to this process's stderr, as from the CLI.
    """
    code, out, err, errors = _clustersim.run([str(a) for a in args])
    err = err.decode()
    if err:
        sys.stderr.write(err)
    if code == 2 or errors:
        raise InputError(errors, err)
    if code not in accept_exit_codes:
        raise CommandError(code, err)
    return out.decode()


def _json(command, positional=(), accept_exit_codes=(0,), **options):
    return json.loads(run(command_line(command, positional, format="json", **options), accept_exit_codes))


def explain(model, **options):
    """``clustersim explain``: parameters, FLOPs and memory per stage (cluster, gpus, plan optional)."""
    return _json("explain", model=model, **options)


def estimate(model, cluster, gpus, plan=None, **options):
    """``clustersim estimate``: closed-form step time, throughput, MFU and breakdown."""
    return _json("estimate", model=model, cluster=cluster, gpus=gpus, plan=plan, **options)


def simulate(model, cluster, gpus, plan=None, **options):
    """``clustersim simulate``: SimGrid replay of one iteration (scenario, seed, full...)."""
    return _json("simulate", model=model, cluster=cluster, gpus=gpus, plan=plan, **options)


def search(model, cluster, gpus, global_batch_size, seq_length, **options):
    """``clustersim search``: the best valid plans that fit, ranked by estimate."""
    return _json("search", model=model, cluster=cluster, gpus=gpus, global_batch_size=global_batch_size,
                 seq_length=seq_length, **options)


def serve(model, cluster, deployment, workload, **options):
    """``clustersim serve``: request-level serving simulation (rate, slo_ttft, slo_tpot, goodput...)."""
    return _json("serve", model=model, cluster=cluster, deployment=deployment, workload=workload, **options)


def validate(cases, **options):
    """``clustersim validate``: predicted vs measured; returned also when cases are out of tolerance
    (where the CLI exits 1)."""
    return _json("validate", [cases], accept_exit_codes=(0, 1), **options)


def sweep(spec, output, jobs=1, csv=None, shard=None):
    """``clustersim sweep``: runs (or resumes) a sweep into ``output`` and returns its rows.

    ``spec`` is a sweep file or a dict; a dict is written to a temporary file in the working
    directory, so relative paths in it are taken from there.
    """
    if isinstance(spec, dict):
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=".", delete=False) as f:
            json.dump(spec, f)
            spec_path = f.name
    else:
        spec_path = str(spec)
    try:
        run(command_line("sweep", [spec_path], output=str(output), jobs=jobs, csv=csv, shard=shard))
    finally:
        if isinstance(spec, dict):
            os.unlink(spec_path)
    return read_rows(output)


def read_rows(path):
    """The rows of a sweep's JSON Lines file, as dicts."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
