"""Shared loader for the StragglerAnalysis traces (python3 stdlib only).

Usage from the fit_*.py scripts: rows = load(dir, 'AR') -> list of tuples
(dp_rank, stage, rank, step, optype, start_ts, duration, seq_id, mc, mb_id, gmc).
Dataset: https://github.com/ByteDance-Seed/StragglerAnalysis (commit 8efcd7f, data/),
converted to CSV in ../shared/reference/straggler-traces (see its README).
"""
import csv, gzip, math, os, sys

TRACES = ('AR', 'ST', 'SE')
DATASET_URL = 'https://github.com/ByteDance-Seed/StragglerAnalysis/tree/8efcd7f37f158af26ac64d0b6fbf1f22d28a6e83/data'


def trace_dir():
    # Default: the published traces beside the repository (../shared/reference, next to the checkout).
    here = os.path.dirname(os.path.abspath(__file__))
    return sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, '..', '..', '..', 'shared', 'reference', 'straggler-traces')


def load(d, name):
    p = os.path.join(d, 'trace-%s.csv' % name)
    f = gzip.open(p + '.gz', 'rt', newline='') if os.path.exists(p + '.gz') else open(p, newline='')
    with f:
        r = csv.reader(f)
        hdr = next(r)
        ix = {h: i for i, h in enumerate(hdr)}
        out = []
        for row in r:
            if not row:
                continue
            out.append((int(row[ix['dp_rank']]), int(row[ix['stage']]), int(row[ix['rank']]),
                        int(row[ix['step']]), row[ix['optype']], float(row[ix['start_ts']]),
                        float(row[ix['duration']]), int(row[ix['seq_id']]), int(row[ix['mc']]),
                        int(row[ix['mb_id']]), int(row[ix['gmc']])))
    return out


def meta(d, name):
    m = {}
    for line in open(os.path.join(d, 'meta-%s.yaml' % name)):
        line = line.split('#')[0].strip()
        if ':' in line:
            k, v = line.split(':', 1)
            v = v.strip()
            m[k.strip()] = int(v) if v.lstrip('-').isdigit() else v
    return m


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def mean(v):
    return sum(v) / len(v)


def sd(v):
    m = mean(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def mad_sd(v):
    """robust SD: 1.4826 * median absolute deviation from the median"""
    m = median(v)
    return 1.4826 * median([abs(x - m) for x in v])


def quantile(v, q):
    v = sorted(v)
    if not v:
        return float('nan')
    i = q * (len(v) - 1)
    lo = int(math.floor(i))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)


if __name__ == '__main__':
    # sanity check of the loader: row counts (README: AR 117,216, SE 107,328, ST 6,784)
    for _n in TRACES:
        print(_n, len(load(trace_dir(), _n)), 'rows', meta(trace_dir(), _n))
