#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python baseline for spawned programs: subprocess.run(['/bin/true']).

One op: subprocess.run(['/bin/true']) to its return (the child reaped), the
call a Python user makes for what bench_spawn.c times as spawn.skproc.

Prints JSON lines like the C benchmarks (see bench/README.md). Standard
library only.
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

AREA = 'spawned programs'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='fewer operations')
    ap.add_argument('--ops', type=int, default=0, help='override the operation count')
    args = ap.parse_args()
    ops = args.ops if args.ops > 0 else (300 if args.quick else 3000)
    print(json.dumps({'type': 'info', 'program': 'py_spawn', 'python': platform.python_version(),
                      'implementation': platform.python_implementation()}), flush=True)
    for _ in range(20):  # warm up
        subprocess.run(['/bin/true'], check=True)
    us = []
    for _ in range(ops):
        t0 = time.perf_counter_ns()
        r = subprocess.run(['/bin/true'])
        us.append((time.perf_counter_ns() - t0) / 1e3)
        if r.returncode != 0:
            sys.exit('py_spawn: /bin/true exited %r' % r.returncode)
    med = statistics.median(us)
    print(json.dumps({'area': AREA, 'key': 'spawn.python',
                      'name': "Python subprocess.run(['/bin/true'])",
                      'short': 'Python', 'baseline': 'spawn.skproc',
                      'unit': 'us', 'value': med, 'median': med, 'min': min(us), 'max': max(us),
                      'mean': statistics.fmean(us), 'n': len(us),
                      'python': platform.python_version()}), flush=True)


if __name__ == '__main__':
    main()
