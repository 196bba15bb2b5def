#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python baseline for "pool": multiprocessing.Pool.map over many small items.

    pool.map.python   Pool(os.cpu_count()).map(f, range(N)), f(x) = x * 3 + 1,
                      the default chunksize, N = 10M (quick: 1M), items/s

The same work as bench_pool's pool.map.skproc and raw_pool's pool.map.raw:
a trivial function over 4-byte integers on every CPU. The pool is created
and warmed up (one small map) before the timed map, as the C benchmarks
time a map on pools whose workers already run. One timed map per
repetition (a 10M-item map takes seconds). The start method is the
interpreter's default.

Prints JSON lines like the C benchmarks (see bench/README.md). Standard
library only.
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time

AREA = 'pool'


def f(x):
    return x * 3 + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='1M items instead of 10M')
    ap.add_argument('--ops', type=int, default=0, help='override the item count')
    args = ap.parse_args()
    n = args.ops if args.ops > 0 else (1_000_000 if args.quick else 10_000_000)

    method = mp.get_start_method()
    workers = os.cpu_count() or 1
    print(json.dumps({'type': 'info', 'program': 'py_pool', 'python': platform.python_version(),
                      'implementation': platform.python_implementation(),
                      'start_method': method}), flush=True)

    items = range(n)
    with mp.Pool(workers) as pool:
        pool.map(f, range(10_000))  # warm up: every worker started and imported
        t0 = time.perf_counter()
        out = pool.map(f, items)
        took = time.perf_counter() - t0
    if len(out) != n or out[0] != 1 or out[-1] != f(n - 1):
        sys.exit('py_pool: wrong results')
    # The default chunksize, as Pool.map computes it (Lib/multiprocessing/pool.py).
    chunksize, extra = divmod(n, workers * 4)
    if extra:
        chunksize += 1
    rate = n / took
    print(json.dumps({'area': AREA, 'key': 'pool.map.python',
                      'name': 'Python multiprocessing Pool.map, default chunksize',
                      'short': 'Python', 'unit': 'items/s', 'value': rate,
                      'items': n, 'workers': workers, 'chunksize': chunksize,
                      'seconds': took, 'start_method': method,
                      'python': platform.python_version()}), flush=True)


if __name__ == '__main__':
    main()
