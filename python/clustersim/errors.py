"""Errors the clustersim functions raise: bad input (with file and JSON pointer) and failures."""


class InputError(ValueError):
    """Bad input, as the CLI reports it with exit code 2.

    ``errors`` lists every problem found, each a dict with ``file``, ``pointer`` (an RFC 6901 JSON
    pointer, "" for the whole document), ``message`` and ``hint``; ``file`` and ``pointer`` are
    those of the first.
    """

    def __init__(self, errors, stderr=""):
        self.errors = [dict(file=f, pointer=p, message=m, hint=h) for f, p, m, h in errors]
        self.stderr = stderr
        first = self.errors[0] if self.errors else dict(file="", pointer="", message=stderr.strip(), hint="")
        self.file = first["file"]
        self.pointer = first["pointer"]
        super().__init__("\n".join(_line(e) for e in self.errors) or stderr.strip())


class CommandError(RuntimeError):
    """A command that failed for another reason than its input (the CLI's exit code 1)."""

    def __init__(self, exit_code, stderr):
        self.exit_code = exit_code
        self.stderr = stderr
        super().__init__(f"clustersim exited with code {exit_code}: {stderr.strip()}")


def _line(e):
    text = f"{e['file']}:{e['pointer']}: {e['message']}"
    return f"{text} ({e['hint']})" if e["hint"] else text
