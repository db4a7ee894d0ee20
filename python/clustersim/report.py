"""python3 -m clustersim.report RESULTS.jsonl [MORE...] -o report.html

One self-contained HTML page (figures as inline SVG, drawn with matplotlib) from a sweep's rows
or from estimate/simulate/serve --format json outputs: MFU and tokens/s per GPU against GPU count
per plan family, stacked step-time breakdowns, the Pareto front, the spread over straggler
scenarios, serving attainment and latency percentiles against rate, and the top plans with their
command lines. docs/python.md.
"""
import argparse
import os
import sys

from clustersim.report_data import load_rows


def make_report(paths, title="clustersim report"):
    """The report page (HTML text) for result files."""
    from clustersim.report_figures import FIGURES  # matplotlib only when a report is made
    from clustersim.report_page import page

    rows = load_rows(paths)
    figures = [(fid, caption, draw(rows)) for fid, caption, draw in FIGURES]
    return page(title, rows, figures, [os.path.basename(str(p)) for p in paths])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m clustersim.report", description=__doc__.split("\n\n")[1],
                                     epilog="example: python3 -m clustersim.report results.jsonl -o report.html")
    parser.add_argument("results", nargs="+", help="sweep rows (JSON Lines) or --format json outputs")
    parser.add_argument("-o", "--output", required=True, help="the HTML file to write")
    parser.add_argument("--title", default="clustersim report")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("error: the report needs matplotlib (Debian: apt-get install python3-matplotlib; scripts/setup.sh does)",
              file=sys.stderr)
        return 2
    try:
        text = make_report(args.results, args.title)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tmp = args.output + ".partial"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.output)
    print(f"report: {args.output} ({len(text) // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
