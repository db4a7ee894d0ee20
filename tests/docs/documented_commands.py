"""The commands the documentation shows, read from the documents themselves (docs/testing.md,
"Documented commands"): fenced code blocks of README.md and docs/*.md, and the "Example:" /
"Examples:" sections of every `clustersim` command's --help. Nothing here runs a command."""

import dataclasses
import pathlib
import re
import subprocess

# A line of a code block that is a command although the block is not tagged as shell.
COMMAND_START = re.compile(r"(clustersim |build/tools/clustersim |mpirun |python3 |/usr/bin/python3 |"
                           r"PYTHONPATH=|export |scripts/)")
SHELL_TAGS = {"sh", "bash", "shell", "console"}
NOT_COMMANDS = {"json", "jsonl", "python", "yaml", "cpp", "csv", "markdown", "md"}
EXPECT = re.compile(r"<!--\s*(expect(?: exit ([\d|]+))?:(.*?)|expect no output|not run:(.*?))\s*-->")
SYNOPSIS = re.compile(r"#\s*synopsis\b(.*)$")


@dataclasses.dataclass
class Expectation:
    exit_codes: tuple = (0,)  # any of them
    lines: list = dataclasses.field(default_factory=list)  # shown in order (a transcript) or one substring
    substring: bool = False  # one line of the output contains lines[0]
    no_output: bool = False  # stdout is empty
    not_run: str = ""  # runnable, but not by the documentation test (the reason)


@dataclasses.dataclass
class DocumentedCommand:
    source: str  # "README.md", "docs/x.md" or "clustersim sweep --help"
    line: int  # 1-based line in that source
    command: str  # as a shell runs it: continuation lines joined
    synopsis: str = ""  # why it is not runnable verbatim ("" when it is)
    expectation: Expectation = None
    error: str = ""  # what is wrong with how the documentation marks it ("" when nothing)

    def where(self):
        return f"{self.source}:{self.line}"


def _strip_comment(command):
    """The command without a trailing shell comment (a '#' after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(command):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip(), command[i:]
    return command.rstrip(), ""


def _join_continuations(lines, start):
    """(command text, trailing comment, index after it) of the command beginning at lines[start]."""
    parts, i = [], start
    while True:
        text = lines[i]
        i += 1
        if text.rstrip().endswith("\\") and i < len(lines):
            parts.append(text.rstrip()[:-1].strip())
            continue
        body, comment = _strip_comment(text.strip())
        parts.append(body)
        return " ".join(p for p in parts if p), comment, i


def _commands_of_block(source, first_line, tag, lines):
    """DocumentedCommands of one fenced block (lines without the fences)."""
    shell = tag.split()[0] in SHELL_TAGS if tag else False
    block_synopsis = ""
    commands, i = [], 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        transcript = stripped.startswith("$ ")
        if transcript:
            stripped = stripped[2:]
        if not stripped or (stripped.startswith("#") and not transcript):
            m = SYNOPSIS.match(stripped)
            if m and not commands:
                block_synopsis = m.group(1).lstrip(":").strip() or "marked synopsis"
            i += 1
            continue
        if not (transcript or (shell and not stripped.startswith("#")) or COMMAND_START.match(stripped)):
            i += 1
            continue
        start = i
        lines[i] = stripped
        command, comment, i = _join_continuations(lines, i)
        m = SYNOPSIS.search(comment)
        synopsis = (m.group(1).lstrip(":").strip() or "marked synopsis") if m else block_synopsis
        doc = DocumentedCommand(source, first_line + start, command, synopsis)
        if transcript:
            shown = []
            while i < len(lines) and not lines[i].strip().startswith("$ "):
                if lines[i].strip() and lines[i].strip() != "...":
                    shown.append(lines[i].rstrip())
                i += 1
            is_error = bool(shown) and shown[0].startswith("error:")
            doc.expectation = Expectation(exit_codes=(2,) if is_error else (0,), lines=shown, no_output=not shown)
        commands.append(doc)
    return commands


def _parse_expectation(match):
    if match.group(0).replace(" ", "").startswith("<!--expectnooutput"):
        return Expectation(no_output=True)
    if match.group(4) is not None:
        return Expectation(not_run=match.group(4).strip())
    return Expectation(exit_codes=_exit_codes(match.group(2)), lines=[match.group(3).strip()], substring=True)


def _exit_codes(text):
    """(0,) for None, else the codes of "1" or "0|1"."""
    return tuple(int(code) for code in text.split("|")) if text else (0,)


def read_markdown(path, source):
    """DocumentedCommands of one Markdown file; `source` names it in messages. A command whose
    block's expectation comments do not match its runnable commands carries an `error`."""
    text = pathlib.Path(path).read_text(encoding="utf-8").split("\n")
    commands, i = [], 0
    while i < len(text):
        fence = re.match(r"^(\s*)(```+|~~~+)(.*)$", text[i])
        if not fence:
            i += 1
            continue
        marker, tag = fence.group(2), fence.group(3).strip()
        end = i + 1
        while end < len(text) and not text[end].strip().startswith(marker):
            end += 1
        block = [] if tag.split()[:1] and tag.split()[0] in NOT_COMMANDS \
            else _commands_of_block(source, i + 2, tag, text[i + 1:end])
        # Expectation comments after the closing fence, one per command without a transcript.
        j, comments = end + 1, []
        while j < len(text):
            line = text[j].strip()
            m = EXPECT.fullmatch(line)
            if m:
                comments.append((j + 1, _parse_expectation(m)))
            elif line:
                break
            j += 1
        waiting = [c for c in block if c.expectation is None and not c.synopsis]
        if len(comments) == len(waiting):
            for c, (_, expectation) in zip(waiting, comments):
                c.expectation = expectation
        else:
            for c in waiting or block[:1]:
                c.error = (f"the block at line {i + 1} has {len(waiting)} runnable command(s) without a transcript "
                           f"but {len(comments)} expectation comment(s) after it: mark synopses and give each "
                           f"runnable command an expected line (docs/testing.md, \"Documented commands\")")
        commands.extend(block)
        i = end + 1
    return commands


def markdown_sources(source_dir):
    """(path, name) of README.md and docs/*.md, in a fixed order."""
    root = pathlib.Path(source_dir)
    paths = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    return [(p, p.relative_to(root).as_posix()) for p in paths]


def _help(binary, words):
    run = subprocess.run([binary, *words, "--help"], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise ValueError(f"`clustersim {' '.join(words)} --help` exited {run.returncode}: {run.stderr.strip()}")
    return run.stdout


def _subcommands(help_text):
    names, inside = [], False
    for line in help_text.split("\n"):
        if re.match(r"^(Subcommands|SUBCOMMANDS):", line):
            inside = True
        elif inside and re.match(r"^  \S", line):
            names.append(line.split()[0])
        elif inside and line and not line.startswith(" "):
            inside = False
    return names


def help_texts(binary, words=()):
    """(command words, --help text) of clustersim and every subcommand below it, depth first."""
    text = _help(binary, list(words))
    found = [(tuple(words), text)]
    for name in _subcommands(text):
        found.extend(help_texts(binary, (*words, name)))
    return found


def read_help(words, text):
    """DocumentedCommands of the Example(s) section of one --help text (no expectations yet)."""
    source = " ".join(("clustersim", *words, "--help"))
    lines = text.split("\n")
    commands, i = [], 0
    while i < len(lines):
        if not re.match(r"^Examples?:\s*$", lines[i]):
            i += 1
            continue
        i += 1
        body = []
        while i < len(lines) and lines[i].startswith("  "):
            body.append(lines[i])
            i += 1
        start = i - len(body) + 1
        commands.extend(_commands_of_block(source, start, "sh", body))
    return commands


def normalise(command):
    """The command with runs of whitespace as one space, to key expectations by."""
    return " ".join(command.split())


def read_help_expectations(path):
    """{normalised command: (line, Expectation)} of the tesh-like file of --help expectations:
    `$ command` lines (continued with a trailing backslash), each followed by one `> text` line
    (a line of the output contains text), `> exit N: text`, `> no output` or `> not run: reason`."""
    lines = pathlib.Path(path).read_text(encoding="utf-8").split("\n")
    found, i, name = {}, 0, pathlib.Path(path).name
    while i < len(lines):
        if not lines[i].startswith("$ "):
            if lines[i].strip() and not lines[i].startswith("#"):
                raise ValueError(f"{name}:{i + 1}: expected a `$ command` line, got: {lines[i]}")
            i += 1
            continue
        first = i
        lines[i] = lines[i][2:]
        command, _, i = _join_continuations(lines, i)
        if i >= len(lines) or not lines[i].startswith("> "):
            raise ValueError(f"{name}:{first + 1}: `$ {command}` has no `> expected line` after it")
        want = lines[i][2:].strip()
        i += 1
        m = re.match(r"^exit ([\d|]+):(.*)$", want)
        if want == "no output":
            expectation = Expectation(no_output=True)
        elif want.startswith("not run:"):
            expectation = Expectation(not_run=want[len("not run:"):].strip())
        elif m:
            expectation = Expectation(exit_codes=_exit_codes(m.group(1)), lines=[m.group(2).strip()], substring=True)
        else:
            expectation = Expectation(lines=[want], substring=True)
        found[normalise(command)] = (first + 1, expectation)
    return found
