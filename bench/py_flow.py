#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python baseline for "flows": three multiprocessing stages joined by Queues.

    parent -> q0 -> stage 1 -> q1 -> stage 2 -> q2 -> stage 3 -> q3 -> parent

Each stage is a multiprocessing.Process (the interpreter's default start
method) that takes a task from its input Queue, adds 1 to it and puts it on
its output Queue, until it gets the sentinel None, which it passes on before
it ends.

A task is a one-key dict, {'value': i}: the small object per task a Python
user would write (pickled, it is ~30 bytes, against the 64-byte records of
raw_flow.c and bench_flow.c; a 64-byte bytes object would cost the stages a
copy and a rebuild per task for no gain in fairness).

    flow.tput.python   200,000 tasks (quick 30,000): the parent put()s every
                       task (Queue.put only appends to the queue's buffer;
                       its feeder thread pickles and writes in the
                       background), then get()s them all; tasks/s from the
                       first put to the last get
    flow.lat.python    one task at a time through the 3 stages: put, get;
                       median microseconds of 2,000 round trips (quick 300)
                       after 100 untimed

Both run through the same three stages, after 1,000 untimed tasks. Every
task is checked when it comes back (value + 3, none lost, in order: one
producer and one consumer per Queue keep FIFO order). --ops N sets the count
of both measurements.

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

AREA = 'flows'
STAGES = 3


def stage(q_in, q_out):
    while True:
        task = q_in.get()
        if task is None:
            q_out.put(None)
            break
        task['value'] += 1
        q_out.put(task)


def through(q_first, q_last, n, start):
    """n tasks in, n back (value + STAGES, in order); seconds taken."""
    t0 = time.perf_counter()
    for i in range(start, start + n):
        q_first.put({'value': i})
    for i in range(start, start + n):
        task = q_last.get()
        if task['value'] != i + STAGES:
            sys.exit('py_flow: task %d came back as %r' % (i, task))
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='fewer tasks')
    ap.add_argument('--ops', type=int, default=0, help='override the task counts')
    args = ap.parse_args()
    n = args.ops if args.ops > 0 else (30_000 if args.quick else 200_000)
    nl = args.ops if args.ops > 0 else (300 if args.quick else 2_000)

    method = mp.get_start_method()
    ctx = mp.get_context(method)
    print(json.dumps({'type': 'info', 'program': 'py_flow', 'python': platform.python_version(),
                      'implementation': platform.python_implementation(),
                      'start_method': method}), flush=True)

    queues = [ctx.Queue() for _ in range(STAGES + 1)]
    procs = [ctx.Process(target=stage, args=(queues[s], queues[s + 1])) for s in range(STAGES)]
    for p in procs:
        p.start()
    q_first, q_last = queues[0], queues[-1]

    through(q_first, q_last, 1000, 0)  # warm up: every stage started and imported
    took = through(q_first, q_last, n, 0)

    now = time.perf_counter_ns
    us = []
    for i in range(-100, nl):
        t0 = now()
        q_first.put({'value': i})
        task = q_last.get()
        t1 = now()
        if task['value'] != i + STAGES:
            sys.exit('py_flow: a round trip came back as %r' % (task,))
        if i >= 0:
            us.append((t1 - t0) / 1e3)

    q_first.put(None)
    if q_last.get() is not None:
        sys.exit('py_flow: no sentinel at the end')
    for p in procs:
        p.join()
        if p.exitcode != 0:
            sys.exit('py_flow: a stage exited with %r' % p.exitcode)

    print(json.dumps({'area': AREA, 'key': 'flow.tput.python',
                      'name': 'Python multiprocessing, 3 Process stages joined by Queues, '
                              'a dict per task',
                      'short': 'Python Queues', 'baseline': 'flow.tput.skproc',
                      'unit': 'tasks/s', 'value': n / took, 'tasks': n, 'seconds': took,
                      'stages': STAGES, 'start_method': method,
                      'python': platform.python_version()}), flush=True)
    us.sort()
    med = statistics.median(us)
    print(json.dumps({'area': AREA, 'key': 'flow.lat.python',
                      'name': 'Python multiprocessing, one dict through 3 Queue stages',
                      'short': 'Python Queues', 'baseline': 'flow.lat.skproc', 'unit': 'us',
                      'value': med, 'median': med, 'min': us[0], 'max': us[-1],
                      'mean': statistics.fmean(us), 'n': len(us), 'start_method': method,
                      'python': platform.python_version()}), flush=True)


if __name__ == '__main__':
    main()
