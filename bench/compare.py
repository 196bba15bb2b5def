#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compare two saved benchmark runs, row by row.

A change that must cost no speed (a refactor) is measured twice on the same
machine: `python3 bench/run.py --json before.json` on the old tree, the same
with after.json on the new one, then

    python3 bench/compare.py before.json after.json [--threshold 5]

For every row in both runs it prints the two medians and, where the row has
a baseline measured in the same run (a raw floor, Python), the two ratios to
it, which load on the machine moves much less than the raw numbers. A row is
flagged when its ratio (or, without a baseline, its median) got worse by
more than the threshold, in percent. The exit status is 1 when a row is
flagged, so that the comparison can gate a script.
"""
import argparse
import json
import sys

# Units where a larger number is better; every other unit is a time or a cost.
HIGHER_IS_BETTER = ('/s', 'items/s', 'msg/s', 'GB/s', 'MB/s', '%')


def load(path):
    with open(path) as f:
        run = json.load(f)
    return {m['key']: m for m in run['measurements']}, run.get('meta', {})


def higher_is_better(unit):
    return any(unit.endswith(u) for u in HIGHER_IS_BETTER)


def worse_by(before, after, unit):
    """How much worse after is than before, in percent (negative: better)."""
    if not before or not after:
        return None
    if higher_is_better(unit):
        return (before / after - 1.0) * 100.0
    return (after / before - 1.0) * 100.0


def relative(m):
    """The row's median over its baseline's in the same run (run.py's ratio)."""
    r = m.get('ratio')
    return r if isinstance(r, (int, float)) and r > 0 else None


def pct(worse):
    """A change for the table: + is better."""
    return '-' if worse is None else '%+.1f%%' % (0.0 - worse)


def judged(key):
    """skproc's own rows; the floors and the Python baselines are context."""
    return 'skproc' in key or key.startswith(('pool.batch', 'pool.workers', 'pool.cpu',
                                              'pool.map.first', 'sup.'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('before')
    ap.add_argument('after')
    ap.add_argument('--threshold', type=float, default=5.0,
                    help='percent worse that flags a row (default 5)')
    args = ap.parse_args()
    before, meta_b = load(args.before)
    after, meta_a = load(args.after)
    print('before: %s   after: %s' % (meta_b.get('git', '?'), meta_a.get('git', '?')))
    print('%-62s %12s %12s %8s %10s %10s %8s  %s' % (
        'row', 'before', 'after', 'change', 'ratio bef', 'ratio aft', 'change', ''))
    flagged = 0
    for key, b in before.items():
        a = after.get(key)
        if a is None:
            continue
        unit = b.get('unit', '')
        raw = worse_by(b['median'], a['median'], unit)
        rb, ra = relative(b), relative(a)
        # The ratio is this row over its floor, in the row's own unit, so it
        # moves the same way as the median does.
        rel = worse_by(rb, ra, unit) if rb is not None and ra is not None else None
        change = rel if rel is not None else raw
        bad = judged(key) and change is not None and change > args.threshold
        flagged += bad
        name = (b.get('area', '') + ': ' + b.get('name', key))[:62]
        print('%-62s %12.4g %12.4g %8s %10s %10s %8s  %s' % (
            name, b['median'], a['median'], pct(raw), '%.3g' % rb if rb is not None else '-',
            '%.3g' % ra if ra is not None else '-', pct(rel), 'WORSE' if bad else ('' if judged(key) else '(context)')))
    print('%d row(s) worse by more than %.0f%% (change: + is better)' % (flagged, args.threshold))
    return 1 if flagged else 0


if __name__ == '__main__':
    sys.exit(main())
