#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python baseline for "messaging": a multiprocessing.Pipe round trip.

One op: the parent conn.send()s a small int (the round trip's index) on a
duplex multiprocessing.Pipe(), the child (a multiprocessing.Process with the
interpreter's default start method) conn.recv()s it and conn.send()s it
back, the parent conn.recv()s it. That is the Python equivalent of
bench_messaging.c's sk_tell / sk_listen round trip of an "I". Every round
trip is timed on its own (time.perf_counter_ns), 20000 (quick 2000) after
200 untimed; the value is the median in microseconds, and the line carries
the distribution as the C programs do ("pct": p50, p90, p99, p99.9; "cdf":
the 0th..100th percentiles). As in the C programs, the round trips are
measured pinned (os.sched_setaffinity): the parent on the first usable CPU
and the child on the second (the main rows, with a row of the 99th
percentile), then both on the first ("msg.rt.python.cpu1").

Prints JSON lines like the C benchmarks (see bench/README.md). Standard
library only.
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time

AREA = 'messaging'


def echo(conn, cpu):
    os.sched_setaffinity(0, {cpu})
    while True:
        v = conn.recv()
        if v is None:  # the end (the child holds a copy of the parent's end: no EOF)
            break
        conn.send(v)


def percentile(v, p):
    """The p-th percentile (0..100) of sorted v, interpolated between ranks
    (as the C programs compute it)."""
    rank = p / 100 * (len(v) - 1)
    lo = int(rank)
    if lo >= len(v) - 1:
        return v[-1]
    return v[lo] + (rank - lo) * (v[lo + 1] - v[lo])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='fewer operations')
    ap.add_argument('--ops', type=int, default=0, help='override the operation count')
    args = ap.parse_args()
    ops = args.ops if args.ops > 0 else (2000 if args.quick else 20000)

    method = mp.get_start_method()
    ctx = mp.get_context(method)
    print(json.dumps({'type': 'info', 'program': 'py_pipe', 'python': platform.python_version(),
                      'implementation': platform.python_implementation(),
                      'start_method': method}), flush=True)

    usable = sorted(os.sched_getaffinity(0))
    if len(usable) >= 2:
        placements = [('', 'two CPUs', None, usable[0], usable[1], True),
                      ('.cpu1', 'one CPU', 'round trip, both on one CPU', usable[0], usable[0],
                       False)]
    else:
        placements = [('', 'one CPU: no second one usable', None, usable[0], usable[0], True)]
    for suffix, label, table, parent_cpu, child_cpu, main_rows in placements:
        os.sched_setaffinity(0, {parent_cpu})
        us = round_trips(ctx, child_cpu, ops)
        os.sched_setaffinity(0, usable)
        emit(us, suffix, label, table, main_rows, method)


def round_trips(ctx, child_cpu, ops):
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=echo, args=(child, child_cpu))
    proc.start()
    child.close()
    now = time.perf_counter_ns
    us = []
    for i in range(200 + ops):
        t0 = now()
        parent.send(i)
        back = parent.recv()
        t1 = now()
        if back != i:
            sys.exit('py_pipe: sent %r, got %r back' % (i, back))
        if i >= 200:
            us.append((t1 - t0) / 1e3)
    parent.send(None)
    proc.join()
    parent.close()
    if proc.exitcode != 0:
        sys.exit('py_pipe: the child exited with %r' % proc.exitcode)
    return us


def emit(us, suffix, label, table, main_rows, method):
    us.sort()
    med = statistics.median(us)
    pct = {'p50': percentile(us, 50), 'p90': percentile(us, 90), 'p99': percentile(us, 99),
           'p99.9': percentile(us, 99.9)}
    name = 'Python multiprocessing.Pipe round trip, small int (%s; start method %s)' % (label,
                                                                                       method)
    row = {'area': AREA, 'key': 'msg.rt.python' + suffix, 'name': name,
           'short': 'Python Pipe' + ('' if main_rows else ' (one CPU)'),
           'baseline': 'msg.rt.skproc' + suffix, 'unit': 'us',
           'value': med, 'median': med, 'min': us[0], 'max': us[-1],
           'mean': statistics.fmean(us), 'n': len(us), 'start_method': method,
           'python': platform.python_version(),
           'pct': {k: round(v, 3) for k, v in pct.items()},
           'cdf': [round(percentile(us, p), 3) for p in range(101)]}
    if table:
        row['table'] = table
    print(json.dumps(row), flush=True)
    if main_rows:
        print(json.dumps({'area': AREA, 'key': 'msg.rt.python.p99',
                          'name': name + ', 99th percentile', 'short': 'Python Pipe p99',
                          'baseline': 'msg.rt.skproc.p99', 'unit': 'us', 'value': pct['p99'],
                          'table': 'round trip, 99th percentile'}), flush=True)


if __name__ == '__main__':
    main()
