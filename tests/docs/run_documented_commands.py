#!/usr/bin/env python3
"""Runs the commands one document shows (documented_commands.py) as a user would from the
repository root, in order, and checks each one's exit code and its expected output line
(docs/testing.md, "Documented commands").

  run_documented_commands.py --source-dir DIR --build-dir DIR [--needs shared|none]
                             [--except help:WORD]... SOURCE...

SOURCE is README.md or docs/x.md (relative to the source dir), help:WORD (the examples of
`clustersim WORD ... --help`) or help:* (every command's, but those --except names). The sources'
commands run in the given order in one workspace, so a later one may read what an earlier wrote.

The commands run in a temporary copy of the repository root made of links (the source's entries,
`build` -> the build under test, `../shared` -> the source's `../shared` when it exists), so
whatever they write lands there; it is removed at the end. Exit 0 when every command passed,
1 when one failed (each failure named file:line and command), 77 (ctest SKIP) when every selected
command was skipped for a missing requirement."""

import argparse
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import documented_commands as dc  # noqa: E402

SKIP = 77
TIMEOUT_S = 600
SHARED = re.compile(r"(?:^|[\s=])\.\./shared/(\S+)")
SCRIPT_DIR = pathlib.Path(__file__).resolve().parent


def needs_shared(command):
    return bool(SHARED.search(command.command))


def make_workspace(root, source_dir, build_dir, shared):
    """root/repo: links to the source's entries and `build`; root/shared: the shared directory."""
    repo = root / "repo"
    repo.mkdir()
    for entry in sorted(source_dir.iterdir()):
        if entry.name in (".git", "build") or entry.name.startswith("build-"):
            continue
        (repo / entry.name).symlink_to(entry)
    (repo / "build").symlink_to(build_dir)
    if shared.is_dir():
        (root / "shared").symlink_to(shared)
    return repo


def missing_requirement(command, repo, build_dir):
    """Why the command cannot run on this machine and build, or None."""
    for m in SHARED.finditer(command.command):
        if not (repo / ".." / "shared" / m.group(1)).exists():
            return f"needs ../shared/{m.group(1)}, absent"
    words = command.command.split()
    if "mpirun" in words and (shutil.which("mpirun") is None or not (build_dir / "tools" / "libclustersim_mpi.so").exists()):
        return "needs mpirun and clustersim built with MPI"
    if "python3" in command.command and "clustersim" in command.command:
        if not any((build_dir / "python").glob("_clustersim*.so")):
            return "needs the Python module (python3-dev, pybind11-dev)"
        if "clustersim.report" in command.command and subprocess.run(
                [sys.executable, "-c", "import matplotlib"], capture_output=True, check=False).returncode:
            return "needs matplotlib (python3-matplotlib)"
    return None


def environment(root, build_dir):
    """`clustersim` is the build's binary; `python3` the Python running this script, the one the
    build found and built the module for (not another python3 earlier on PATH, e.g. pyenv's)."""
    python_dir = root / "python-bin"
    python_dir.mkdir()
    (python_dir / "python3").symlink_to(sys.executable)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(build_dir / "tools"), str(python_dir), env.get("PATH", "")])
    # As docs/sweep.md says for mpirun as root in a container and with fewer cores than ranks.
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    return env


def run_in_shell(command, repo, env):
    """(exit code, stdout, stderr, environment after it): `export` and `cd` carry to the next."""
    env_file = repo.parent / "env.after"
    script = f"{command}\n__rc=$?\nenv -0 > {env_file}\nexit $__rc\n"
    done = subprocess.run(["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    after = dict(env)
    if env_file.exists():
        after = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
        env_file.unlink()
    return done.returncode, done.stdout, done.stderr, after


def check(command, code, out, err):
    """What is wrong with the run, or None."""
    want = command.expectation
    problems = []
    if code not in want.exit_codes:
        problems.append(f"exit code {code}, documented {' or '.join(map(str, want.exit_codes))}")
    if want.no_output and out.strip():
        problems.append("documented without output, printed: " + out.strip().split("\n")[0])
    lines = [line.rstrip() for line in (out + err).split("\n")]
    if want.substring and not any(want.lines[0] in line for line in lines):
        problems.append(f"no line contains the expected \"{want.lines[0]}\"")
    if not want.substring and want.lines:
        at = 0
        for shown in want.lines:
            while at < len(lines) and lines[at] != shown.rstrip():
                at += 1
            if at == len(lines):
                problems.append(f"the documented output line is not printed (in order): \"{shown}\"")
                break
            at += 1
    if problems:
        tail = "\n".join(f"    | {line}" for line in (out + err).strip().split("\n")[-12:])
        return "; ".join(problems) + "\n  output (last lines):\n" + tail
    return None


def help_commands(binary, words_wanted, words_excepted):
    """The --help examples of the commands whose first word is wanted (all when wanted is empty)
    and not excepted, each with its expectation from help_examples.expect."""
    expectations = dc.read_help_expectations(SCRIPT_DIR / "help_examples.expect")
    commands, used, selected_words = [], set(), set()
    for words, text in dc.help_texts(binary):
        if not words or (words_wanted and words[0] not in words_wanted) or words[0] in words_excepted:
            continue
        selected_words.add(words[0])
        for c in dc.read_help(words, text):
            commands.append(c)
            if c.synopsis:
                continue
            key = dc.normalise(c.command)
            if key not in expectations:
                c.error = "the example has no expected line in tests/docs/help_examples.expect (docs/testing.md)"
                continue
            used.add(key)
            c.expectation = expectations[key][1]
    for key, (line, _) in expectations.items():
        if key not in used and len(key.split()) > 1 and key.split()[1] in selected_words and \
                not any(dc.normalise(c.command) == key for c in commands):
            stale = dc.DocumentedCommand("tests/docs/help_examples.expect", line, key)
            stale.error = "no --help shows this example any more: remove its expectation"
            commands.append(stale)
    return commands


def select(sources, excepted, source_dir, build_dir):
    """The documented commands of the sources in order: Markdown files relative to the source
    dir, `help:WORD` (the examples of `clustersim WORD ... --help`), `help:*` (all but `excepted`)."""
    commands, wanted = [], []
    for source in sources:
        if source.startswith("help:"):
            wanted.append(source[len("help:"):])
        else:
            commands.extend(dc.read_markdown(source_dir / source, source))
    if wanted:
        words = set() if "*" in wanted else set(wanted)
        commands.extend(help_commands(str(build_dir / "tools" / "clustersim"), words,
                                      {e[len("help:"):] for e in excepted}))
    return commands


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-dir", type=pathlib.Path, required=True)
    parser.add_argument("--build-dir", type=pathlib.Path, required=True)
    parser.add_argument("--except", dest="excepted", action="append", default=[],
                        help="with help:*, a help:WORD another entry runs")
    parser.add_argument("--shared-dir", type=pathlib.Path,
                        help="what ../shared of the repository root is (default: the source dir's ../shared)")
    parser.add_argument("--needs", choices=["shared", "none"],
                        help="only the commands that need ../shared, or only those that do not")
    parser.add_argument("sources", nargs="+", help="README.md, docs/x.md, help:WORD or help:*, run in this order")
    args = parser.parse_args()
    # ctest's timeout terminates the test: leave through the workspace's cleanup.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    source_dir, build_dir = args.source_dir.resolve(), args.build_dir.resolve()
    commands = select(args.sources, args.excepted, source_dir, build_dir)
    if args.needs:
        commands = [c for c in commands if c.error or needs_shared(c) == (args.needs == "shared")]

    failures, ran, skipped = 0, 0, 0
    with tempfile.TemporaryDirectory(prefix="clustersim-docs-") as tmp:
        shared = (args.shared_dir or source_dir.parent / "shared").resolve()
        repo = make_workspace(pathlib.Path(tmp), source_dir, build_dir, shared)
        env = environment(pathlib.Path(tmp), build_dir)
        for c in commands:
            if c.error:
                failures += 1
                print(f"FAIL      {c.where()}: {c.command}\n  {c.error}")
                continue
            if c.synopsis:
                print(f"synopsis  {c.where()}: {c.command}  ({c.synopsis})")
                continue
            if c.expectation.not_run:
                print(f"not run   {c.where()}: {c.command}  ({c.expectation.not_run})")
                continue
            why = missing_requirement(c, repo, build_dir)
            if why:
                skipped += 1
                print(f"skipped   {c.where()}: {c.command}  ({why})")
                continue
            ran += 1
            start = time.monotonic()
            try:
                code, out, err, env = run_in_shell(c.command, repo, env)
                problem = check(c, code, out, err)
            except subprocess.TimeoutExpired:
                problem = f"did not finish in {TIMEOUT_S} s"
            took = time.monotonic() - start
            if problem:
                failures += 1
                print(f"FAIL      {c.where()}: {c.command}\n  {problem}")
            else:
                print(f"ok        {c.where()}: {c.command}  ({took:.1f} s)")
    print(f"{ran} run, {failures} failed, {skipped} skipped, "
          f"{sum(1 for c in commands if c.synopsis)} synopses, "
          f"{sum(1 for c in commands if c.expectation and c.expectation.not_run and not c.synopsis)} not run")
    if failures:
        return 1
    if skipped and not ran:
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
