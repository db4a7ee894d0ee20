"""The report in a real browser: headless Chromium renders the page; every figure is there with
its drawing, and a screenshot is saved (the picture in docs/ is made the same way)."""
import os
import re
import shutil
import subprocess

import pytest

pytest.importorskip("matplotlib", reason="the report needs matplotlib (python3-matplotlib)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (Debian: chromium)")

from clustersim.report import main  # noqa: E402
from clustersim.report_figures import FIGURES  # noqa: E402


def chromium(*args, cwd):
    # Root in CI containers: no sandbox; no GPU; a profile of its own so runs do not share state.
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={cwd / 'chromium-profile'}"]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=120, cwd=cwd)


def test_every_figure_renders(small_sweep, tmp_path):
    page = tmp_path / "report.html"
    assert main([str(small_sweep), "-o", str(page)]) == 0
    dom = chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr
    for fid, caption, _ in FIGURES:
        figure = re.search(rf'<figure id="{fid}">(.*?)</figure>', dom.stdout, re.S)
        assert figure, f"figure {fid} ({caption}) is not in the rendered page"
        assert re.search(r"<svg[^>]*\bwidth=", figure.group(1)), f"figure {fid} has no drawing"
        assert figure.group(1).count("<path") > 5, f"figure {fid} draws nothing"
    shot = tmp_path / "report.png"
    r = chromium(f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20000  # a page of plots, not a blank one
    build = os.environ.get("CLUSTERSIM_BUILD_DIR")
    if build:
        shutil.copy(shot, os.path.join(build, "report-screenshot.png"))
