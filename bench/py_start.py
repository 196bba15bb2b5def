#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python baseline for "process start": multiprocessing.Process + Queue.

One op: make a Queue, start a Process whose target puts one int on it, get
the int in the parent, join the process. That is the Python equivalent of
skproc's start + result of a trivial process (a fresh channel per process,
a value back, the child reaped). The start method is the interpreter's
default, reported in the output ('fork' on Linux up to Python 3.13,
'forkserver' from 3.14).

Prints JSON lines like the C benchmarks (see bench/README.md). Standard
library only.
"""

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import sys
import time

AREA = 'process start'


def child(q):
    q.put(1)


def op(ctx):
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    v = q.get()
    p.join()
    q.close()
    q.join_thread()
    if v != 1 or p.exitcode != 0:
        sys.exit('py_start: bad result %r / exit code %r' % (v, p.exitcode))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='fewer operations')
    ap.add_argument('--ops', type=int, default=0, help='override the operation count')
    args = ap.parse_args()
    ops = args.ops if args.ops > 0 else (300 if args.quick else 2000)

    method = mp.get_start_method()
    ctx = mp.get_context(method)
    print(json.dumps({'type': 'info', 'program': 'py_start', 'python': platform.python_version(),
                      'implementation': platform.python_implementation(),
                      'start_method': method}), flush=True)

    for _ in range(5):  # warm up: imports, the forkserver if any
        op(ctx)
    us = []
    for _ in range(ops):
        t0 = time.perf_counter_ns()
        op(ctx)
        us.append((time.perf_counter_ns() - t0) / 1e3)
    med = statistics.median(us)
    print(json.dumps({'area': AREA, 'key': 'start.python',
                      'name': 'Python multiprocessing Process+Queue (%s)' % method,
                      'short': 'Python', 'baseline': 'start.skproc',
                      'unit': 'us', 'value': med, 'median': med, 'min': min(us), 'max': max(us),
                      'mean': statistics.fmean(us), 'n': len(us), 'start_method': method,
                      'python': platform.python_version()}), flush=True)


if __name__ == '__main__':
    main()
