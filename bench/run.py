#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run skproc's benchmarks and their baselines, and write the report.

    python3 bench/run.py --build-dir build/default [--quick]
    scons bench [quick=1]                      (the same, after building)

Every program in BENCHES runs R times (R = 5, quick: 2), interleaved so that
a slow moment of the machine does not hit one program only. Each run prints
JSON lines (bench/README.md); the "value" of a measurement in one run is one
repetition. The report gives, per measurement, the median of the
repetitions with their min and max, the ratio to its baseline measured in
this same run, and whether its target is met.

Writes bench/results/latest.json (machine-readable) and the Markdown report:
docs/performance.md after a full run, bench/results/performance.md after a
quick one (rough numbers should not replace the published ones). Exit
status: 0 when every program ran (a target missed is a finding, not a
failure), 1 when a program failed, 2 on bad usage.

Standard library only: CI may have nothing but Debian's python3.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ------------------------------------------------------------------ registry
#
# One entry per program run. To add a benchmark, write bench/<name>.c (SCons
# builds it into BUILD/bench/<name>) or bench/<name>.py, and append an entry:
#
#   name     label in the output, unique
#   c / py   the program: a C benchmark's name in BUILD/bench, or a Python
#            script in bench/ (run with the interpreter running this script)
#   args     extra arguments (--quick is added in quick mode)
#   env      extra environment variables
#   suffix   appended to every key the program prints (and to the baselines
#            it names), so that one program can run twice under different
#            conditions
#   label    appended to every row name (with suffix)
#   timeout  seconds per run, normal and quick
#   rows     per measurement key: the baseline and the target.
#              baseline    the key of the row this one is compared with (a
#                          program may also name it in its JSON: "baseline")
#              max_ratio   met when value / baseline <  max_ratio
#              min_ratio   met when value / baseline >= min_ratio
#              max_value   met when value < max_value (in the row's unit)
#              min_value   met when value >= min_value (in the row's unit: a
#                          floor for higher-is-better rows, e.g. tasks/s)
#              target      the target as shown in the report
#            A row may carry several of max_ratio..min_value; its target is
#            met when all of them hold.
#
BENCHES = [
    {
        'name': 'bench_start',
        'c': 'bench_start',
        'timeout': (900, 120),
        'rows': {
            'start.raw2': {'baseline': 'start.raw'},
            'start.skproc': {'baseline': 'start.raw', 'max_ratio': 3.0,
                             'target': '< 3x raw fork'},
        },
    },
    {
        'name': 'py_start',
        'py': 'py_start.py',
        'timeout': (900, 120),
        'rows': {
            'start.python': {'baseline': 'start.skproc', 'min_ratio': 10.0,
                             'target': '>= 10x skproc (skproc 10x faster)'},
        },
    },
    {
        'name': 'bench_start (LD_BIND_NOW=1)',
        'c': 'bench_start',
        'args': ['--plain-only'],
        'env': {'LD_BIND_NOW': '1'},
        'suffix': '@bindnow',
        'label': ' [LD_BIND_NOW=1]',  # appended to names and short names
        'timeout': (300, 60),
        'rows': {
            'start.raw2@bindnow': {'baseline': 'start.raw@bindnow'},
            'start.skproc@bindnow': {'baseline': 'start.raw@bindnow'},
        },
    },
    {
        'name': 'bench_loop',
        'c': 'bench_loop',
        'timeout': (600, 60),
        'rows': {
            'loop.skproc': {'baseline': 'loop.raw', 'max_value': 250.0, 'target': '< 250 ns'},
        },
    },
    # Pools (docs/pool.md): three floors of a map, then skproc's pool
    # (bench_pool.c) and py_pool.py's multiprocessing.Pool.map. raw_pool.c:
    # forked workers fed batches over pipes; raw_pool_floors.c: forked workers
    # over a shared mapping fed index ranges, the caller's private arrays
    # copied in and out (raw copying floor) or already in the mapping (raw
    # zero-copy floor). A row has one baseline, so bench_pool.c prints its
    # map's throughput three times (pool.map.skproc, .skproc_vs_copy,
    # .skproc_vs_zero), one row per floor. The floors' workers run a loop
    # over each range, so the targets (issue 12 items 2 and 3) sit on the
    # rows of the range form (sk_pool_job.range), over private arrays
    # (pool.map.skproc_range, 0.5x the copying floor) and over zero-copy
    # arrays (pool.map.skproc_zero_range, 0.5x the zero-copy floor); the
    # rows of the function form, a call per item, are shown against the
    # same floors for information. Items per second
    # are higher-is-better, so Python's row carries the 10x target as a
    # ratio below 0.1.
    {
        'name': 'raw_pool',
        'c': 'raw_pool',
        'timeout': (300, 60),
    },
    {
        'name': 'raw_pool_floors',
        'c': 'raw_pool_floors',
        'timeout': (300, 60),
    },
    {
        'name': 'bench_pool',
        'c': 'bench_pool',
        'timeout': (600, 60),
        'rows': {
            'pool.map.skproc': {'baseline': 'pool.map.raw', 'min_ratio': 0.5,
                                'target': '>= 0.5x raw batched pipe pool'},
            'pool.map.skproc_vs_copy': {'baseline': 'pool.map.raw_copy',
                                        'target': 'none: information (a call per item; the '
                                                  '0.5x is for the range form)'},
            'pool.map.skproc_vs_zero': {'baseline': 'pool.map.raw_zero',
                                        'target': 'none: information (0.5x is for zero-copy '
                                                  'arrays, range form)'},
            'pool.map.skproc_range': {'baseline': 'pool.map.raw_copy', 'min_ratio': 0.5,
                                      'target': '>= 0.5x raw copying floor'},
            'pool.map.skproc_zero': {'baseline': 'pool.map.raw_zero',
                                     'target': 'none: information (a call per item; the 0.5x '
                                               'is for the range form)'},
            'pool.map.skproc_zero_range': {'baseline': 'pool.map.raw_zero', 'min_ratio': 0.5,
                                           'target': '>= 0.5x raw zero-copy floor'},
            'pool.one.skproc': {'baseline': 'pool.one.raw', 'max_value': 50.0,
                                'target': '< 50 us'},
            'pool.cpu.wall': {'baseline': 'pool.cpu.ideal', 'max_ratio': 1 / 0.9,
                              'target': 'efficiency >= 90% (< 1.11x ideal)'},
        },
    },
    {
        'name': 'py_pool',
        'py': 'py_pool.py',
        'timeout': (600, 60),
        'rows': {
            'pool.map.python': {'baseline': 'pool.map.skproc', 'max_ratio': 0.1,
                                'target': '< 0.1x skproc (skproc 10x Python)'},
        },
    },
    # skproc-mpi (docs/mpi.md), built only when MPI is found (else skipped):
    # raw_mpi.c is the floor, a hand-written MPI master-worker map (ranks
    # compute in the rank itself, Isend/Irecv straight from and into the
    # arrays); bench_mpi.c maps over 2 server ranks of 1 worker each against
    # rank 0's local pool of 2 workers. Both run under `mpirun -n 3` over
    # TCP on loopback (MPIRUN below).
    {
        'name': 'raw_mpi',
        'c': 'raw_mpi',
        'mpirun': True,
        'timeout': (300, 120),
    },
    {
        'name': 'bench_mpi',
        'c': 'bench_mpi',
        'mpirun': True,
        'timeout': (600, 180),
        'rows': {
            'mpi.map.skproc_range': {'baseline': 'mpi.map.raw', 'min_ratio': 0.8,
                                     'target': '>= 0.8x raw MPI master-worker'},
            'mpi.map.skproc': {'baseline': 'mpi.map.raw',
                               'target': 'none: information (a call per item)'},
            'mpi.map.local': {'baseline': 'mpi.map.skproc_range',
                              'target': 'none: information (the local pool, same workers)'},
            'mpi.cpu.wall': {'baseline': 'mpi.cpu.ideal', 'max_ratio': 1 / 0.8,
                             'target': 'efficiency >= 80% (< 1.25x ideal)'},
        },
    },
    # Messaging (docs/messaging.md): raw_pingpong.c holds the floors (a raw
    # pipe and a raw futex ping-pong, a raw pipe stream), bench_messaging.c
    # skproc's sk_tell/sk_listen, py_pipe.py multiprocessing.Pipe. The
    # throughput targets are lower bounds, so they sit on the rows that give
    # the same measurement as time per message / per byte.
    {
        'name': 'raw_pingpong',
        'c': 'raw_pingpong',
        'timeout': (300, 60),
        'rows': {
            'msg.rt.futex': {'baseline': 'msg.rt.pipe'},
            'msg.rt.futex.p99': {'baseline': 'msg.rt.pipe.p99'},
        },
    },
    {
        'name': 'bench_messaging',
        'c': 'bench_messaging',
        'timeout': (300, 60),
        'rows': {
            'msg.rt.skproc': {'baseline': 'msg.rt.pipe', 'max_ratio': 0.5,
                              'target': '< 0.5x raw pipe ping-pong (two CPUs)'},
            'msg.rt.skproc.cpu1': {'baseline': 'msg.rt.pipe.cpu1', 'max_ratio': 1.5,
                                   'target': '< 1.5x raw pipe ping-pong (one CPU)'},
            'msg.idle.skproc': {'baseline': 'msg.idle.nospin', 'max_value': 10.0,
                                'target': 'spin adds < 1% of a CPU (10 ms per idle second)'},
            'msg.rt.skproc.p99': {'baseline': 'msg.rt.pipe.p99'},
            'msg.tput64.skproc': {'baseline': 'msg.tput64.pipe'},
            'msg.tput64.skproc.ns': {'max_value': 1000.0,
                                     'target': '>= 1 million/s (< 1,000 ns per message)'},
            'msg.tput64b.skproc': {'baseline': 'msg.tput64.pipe'},
            'msg.tput1m.skproc': {'baseline': 'msg.tput1m.pipe'},
            'msg.tput1m.skproc.nsb': {'max_value': 0.5, 'target': '>= 2 GB/s (< 0.5 ns/B)'},
        },
    },
    {
        'name': 'py_pipe',
        'py': 'py_pipe.py',
        'timeout': (300, 60),
        'rows': {
            'msg.rt.python': {'baseline': 'msg.rt.skproc', 'min_ratio': 5.0,
                              'target': '>= 5x skproc (skproc 5x faster)'},
            'msg.rt.python.p99': {'baseline': 'msg.rt.skproc.p99'},
        },
    },
    # Flows (include/skproc/flow.h): a pipeline of 3 steps, one process each,
    # each adding 1 to a 64-byte task. raw_flow.c holds the floors, a chain
    # of 3 forked processes joined by pipes (parent -> s1 -> s2 -> s3 ->
    # parent): batched (reads of up to 64 records, one write per batch), one
    # record per read/write, and one record's round trip; bench_flow.c is
    # skproc's flow (batches of 64, of 1, sk_flow_call, and a 1 ms handler in
    # 1 and 2 processes); py_flow.py is multiprocessing (3 Processes joined by
    # Queues, a dict per task). The throughput target has two parts, a ratio
    # and an absolute floor, on one row (min_ratio and min_value). Tasks per
    # second are higher-is-better, so Python's row carries "skproc 100x
    # Python" as a ratio below 0.01, as py_pool's does. The parallel
    # efficiency (2 processes over 1, in %) is a row of its own: its target
    # is a min_value; skproc2 / skproc1 is shown for information. The payload
    # rows (flow.payload.*) move 1 MiB payloads that each step touches in
    # place (bench_touch_payload in common.h: every 8-byte word read, one word
    # per 4 KiB page written); the floor is 3 raw stages doing the same touches
    # on the same shared buffers, passing only offsets. Both rows of a side
    # come from one timed run: payload GB/s and payloads/s. No target: they
    # show what a payload costs over the floor, for information.
    {
        'name': 'raw_flow',
        'c': 'raw_flow',
        'timeout': (300, 60),
    },
    {
        'name': 'bench_flow',
        'c': 'bench_flow',
        'timeout': (600, 120),
        'rows': {
            'flow.tput.skproc': {'baseline': 'flow.tput.raw', 'min_ratio': 0.5,
                                 'min_value': 1e6,
                                 'target': '>= 0.5x raw batched pipes, and >= 1M tasks/s'},
            'flow.tput.skproc_unbatched': {'baseline': 'flow.tput.raw_unbatched',
                                           'target': 'none: information'},
            'flow.lat.skproc': {'baseline': 'flow.lat.raw', 'max_ratio': 1.5,
                                'target': '< 1.5x raw 3-stage pipe chain'},
            'flow.scale.skproc2': {'baseline': 'flow.scale.skproc1',
                                   'target': 'none: information (2x is ideal; the target is '
                                             'on the efficiency row)'},
            'flow.scale.efficiency': {'min_value': 85.0, 'target': 'efficiency >= 85%'},
            'flow.payload.skproc': {'baseline': 'flow.payload.raw',
                                    'target': 'none: information (0 copies per step, as the floor)'},
            'flow.payload.skproc_tasks': {'baseline': 'flow.payload.raw_tasks',
                                          'target': 'none: information'},
        },
    },
    {
        'name': 'py_flow',
        'py': 'py_flow.py',
        'timeout': (600, 120),
        'rows': {
            'flow.tput.python': {'baseline': 'flow.tput.skproc', 'max_ratio': 0.01,
                                 'target': '< 0.01x skproc (skproc 100x Python)'},
            'flow.lat.python': {'baseline': 'flow.lat.skproc'},
        },
    },
    # Spawned programs (include/skproc/spawn.h, docs/spawn.md): /bin/true from
    # the request to its reap. bench_spawn.c interleaves the floor
    # (posix_spawn + waitpid) with skproc's fast path, op by op; py_spawn.py
    # is subprocess.run(['/bin/true']).
    {
        'name': 'bench_spawn',
        'c': 'bench_spawn',
        'timeout': (600, 60),
        'rows': {
            'spawn.skproc': {'baseline': 'spawn.raw', 'max_ratio': 1.2,
                             'target': '< 1.2x posix_spawn + waitpid'},
            'spawn.skproc_pipe': {'baseline': 'spawn.raw', 'target': 'none: information'},
        },
    },
    {
        'name': 'py_spawn',
        'py': 'py_spawn.py',
        'timeout': (600, 60),
        'rows': {
            'spawn.python': {'baseline': 'spawn.skproc', 'min_ratio': 5.0,
                             'target': '>= 5x skproc (skproc 5x faster)'},
        },
    },
    # Supervision (docs/supervision.md): timeout precision and the cost of a
    # restart after a crash. raw_timeout.c holds the floors of timeout
    # lateness: timerfd + SIGKILL + waitid by the parent itself (raw) and by a
    # middle process the parent waits for (raw2, skproc's shape: parent,
    # supervisor, worker), measured as sup.timeout.* is.
    {
        'name': 'raw_timeout',
        'c': 'raw_timeout',
        'timeout': (300, 60),
        'rows': {
            'sup.timeout.raw2.median': {'baseline': 'sup.timeout.raw.median'},
            'sup.timeout.raw2.p99': {'baseline': 'sup.timeout.raw.p99'},
            'sup.timeout.raw2.max': {'baseline': 'sup.timeout.raw.max'},
        },
    },
    {
        'name': 'bench_supervision',
        'c': 'bench_supervision',
        'timeout': (300, 60),
        'rows': {
            'sup.timeout.median': {'baseline': 'sup.timeout.raw2.median', 'max_ratio': 1.5,
                                   'target': '<= 1.5x raw timerfd+SIGKILL+waitid floor'},
            'sup.timeout.p99': {'baseline': 'sup.timeout.raw2.p99'},
            'sup.timeout.max': {'baseline': 'sup.timeout.raw2.max', 'max_value': 10.0,
                                'target': '< 10 ms'},
            'sup.restart.crash': {'baseline': 'sup.restart.plain'},
        },
    },
    # Groups (include/skproc/group.h, docs/groups.md): a group of 100 idle
    # children (config.ready = SK_READY_ON_NOTIFY, sk_ready at the end of
    # prerun, the run hook asleep in sk_listen). bench_group.c interleaves,
    # op by op, skproc with raw floors written with plain syscalls: a start
    # of all 100 in order, each once the one before is ready, and their stop
    # in reverse (a raw double fork per child: a supervisor forking a worker
    # that writes its pid on a readiness pipe; no_supervisor against a raw
    # single fork, for information), and the restart of a SIGKILLed worker to
    # its replacement's readiness. The restart has two floors: a raw
    # supervisor that respawns its worker (the cheapest restart there is) and
    # a raw tree respawn (the supervisor exits, the parent forks a new
    # supervisor + worker), which is what a group restart does; the target,
    # 2x, is on the row against the latter, the row against the former is
    # information. Start and stop have no target: information.
    {
        'name': 'bench_group',
        'c': 'bench_group',
        'timeout': (300, 60),
        'rows': {
            'group.start_ready': {'baseline': 'group.start_ready.raw',
                                  'target': 'none: information'},
            'group.start_ready.nosup': {'baseline': 'group.start_ready.raw1',
                                        'target': 'none: information'},
            'group.stop_all': {'baseline': 'group.stop_all.raw', 'target': 'none: information'},
            'group.stop_all.nosup': {'baseline': 'group.stop_all.raw1',
                                     'target': 'none: information'},
            'group.restart_latency.raw_tree': {'baseline': 'group.restart_latency.raw'},
            'group.restart_latency': {'baseline': 'group.restart_latency.raw',
                                      'target': 'none: information (a group restart replaces '
                                                'supervisor and worker; this floor respawns the '
                                                'worker only)'},
            'group.restart_latency.vs_tree': {'baseline': 'group.restart_latency.raw_tree',
                                              'max_ratio': 2.0,
                                              'target': '< 2x the raw tree respawn (the same '
                                                        'shape)'},
        },
    },
    # Scheduling (include/skproc/sched.h, docs/scheduling.md): bench_sched.c.
    # Lateness of time-triggered starts (due instant to the task's code
    # beginning, CLOCK_REALTIME) for tasks run in the session's thread, a
    # thread and a process, each against its raw floor measured in the same
    # program (a timerfd wake, then nothing / pthread_create / fork); the
    # issue's targets: a median within 2 ms for every mode, and for process
    # tasks within 1.3x the raw fork (process tasks are forked ahead of a
    # start due at a known time, sk_sched_config.prefork: also shown against
    # a raw prefork, and with prefork off against sk_start). Then the
    # session's own cost with
    # 10,000 tasks whose conditions are false: CPU per cycle (against
    # evaluating every condition each cycle) and CPU per second while
    # nothing is due (against epoll_wait on a timerfd).
    {
        'name': 'bench_sched',
        'c': 'bench_sched',
        'timeout': (300, 60),
        'rows': {
            'sched.late.raw_thread': {'baseline': 'sched.late.raw_main'},
            'sched.late.raw_fork': {'baseline': 'sched.late.raw_main'},
            'sched.late.main': {'baseline': 'sched.late.raw_main', 'max_value': 2000.0,
                                'target': 'median < 2 ms'},
            'sched.late.thread': {'baseline': 'sched.late.raw_thread', 'max_value': 2000.0,
                                  'target': 'median < 2 ms'},
            'sched.late.process': {'baseline': 'sched.late.raw_fork', 'max_ratio': 1.3,
                                   'max_value': 2000.0,
                                   'target': 'median < 2 ms, and < 1.3x the raw fork'},
            'sched.late.raw_fork2': {'baseline': 'sched.late.raw_fork'},
            'sched.late.sk_start': {'baseline': 'sched.late.raw_fork2',
                                    'target': 'none: information (what a process task starts)'},
            'sched.late.sk_start_plain': {'baseline': 'sched.late.raw_fork',
                                          'target': 'none: information'},
            'sched.late.raw_prefork': {'baseline': 'sched.late.raw_fork',
                                       'target': 'none: information (a fork made ahead)'},
            'sched.late.process.vs_prefork': {'baseline': 'sched.late.raw_prefork',
                                              'target': 'none: information (the same design '
                                                        'by hand)'},
            'sched.late.process_cold': {'baseline': 'sched.late.sk_start',
                                        'target': 'none: information (prefork off: the '
                                                  'session\'s share over sk_start)'},
            'sched.late.main.p99': {'baseline': 'sched.late.raw_main.p99'},
            'sched.late.thread.p99': {'baseline': 'sched.late.raw_thread.p99'},
            'sched.late.process.p99': {'baseline': 'sched.late.raw_fork.p99'},
            'sched.late.raw_fork2.p99': {'baseline': 'sched.late.raw_fork.p99'},
            'sched.late.sk_start.p99': {'baseline': 'sched.late.raw_fork2.p99'},
            'sched.late.raw_prefork.p99': {'baseline': 'sched.late.raw_fork.p99'},
            'sched.late.process_cold.p99': {'baseline': 'sched.late.sk_start.p99'},
            'sched.cycle.skproc': {'baseline': 'sched.cycle.naive',
                                   'target': 'none: information'},
            'sched.idle.skproc': {'max_value': 10.0,
                                  'target': 'close to zero: < 10 ms CPU per s (1%)'},
            'sched.idle.wakeups': {'target': 'none: information'},
        },
    },
    # The scheduler's run log (docs/scheduling.md): runs logged per second, a
    # start and an end each, through skproc's stores against floors in the same
    # program (bench_sched_log.c): raw sqlite3 with the same pragmas and table,
    # raw write(2) of the same CSV lines. Runs/s are higher-is-better: the
    # target is a min_ratio.
    {
        'name': 'bench_sched_log',
        'c': 'bench_sched_log',
        'timeout': (300, 60),
        'rows': {
            'sched_log.sqlite': {'baseline': 'sched_log.sqlite.raw', 'min_ratio': 0.8,
                                 'target': '>= 0.8x raw sqlite3 (same pragmas and table)'},
            'sched_log.csv': {'baseline': 'sched_log.csv.raw', 'target': 'none: information'},
            'sched_log.memory': {'target': 'none: information'},
        },
    },
]

REPS = (5, 2)  # normal, quick

# Prose the report prints under an area's heading, keyed by area.
AREA_NOTES = {
    'mpi': (
        '`mpirun -n 3` over TCP on loopback (`--mca btl self,tcp`, so the ranks share no '
        'memory), oversubscribed on this machine\'s CPUs: rank 0 maps, ranks 1 and 2 serve '
        'with one worker each. **Throughput**: a map of 10M `int32` items (quick 2M) to `int32` '
        'results, f(x) = x * 3 + 1, median of 5 maps (quick 3); the floor (`raw_mpi.c`) is a '
        'hand-written master-worker program over the same ranks, computing in the ranks '
        'themselves, batches of n / 32 items sent and received straight from and into the '
        'arrays. `mpi.map.local` is rank 0\'s local pool of 2 workers (shared memory). '
        '**1 ms items**: 600 items (quick 200) of 1 ms of CPU each; the ideal is 600 ms / 2 '
        'workers. Loopback says what the software costs (copies, hops, polling), not what a '
        'network costs: on real hosts add the wire\'s latency per window of batches and its '
        'bandwidth per byte of items and results (docs/mpi.md, "Tuning").'),
    'process start': (
        'One op starts a process and gets one 64-bit value back from it: for skproc, '
        '`sk_init` + `sk_start` + `sk_result(p, "I", &v)` + `sk_release` of a class whose run '
        'hook runs once (`runs = 1`) and whose result hook `sk_return`s an `int64_t`. The '
        'raw floor is `pipe2` + `fork`, the child `write`s 8 bytes and `_exit`s, the parent '
        '`read`s and `waitpid`s. A process that needs a supervisor (for timeouts, restarts, '
        '`join_in` or an error hook) is a supervisor that forks the worker: the *supervised* '
        'row is the same class with `lives = 2`, and the *raw double fork* row (the same raw '
        'op with the write done by a grandchild) is its floor. Python: `multiprocessing.Queue()` + '
        '`Process(target=put one int).start()` + `q.get()` + `join()`, with the default start '
        'method. Each repetition times every op on its own and keeps the median op; '
        '"faults/op" is minor page faults per op, parent and reaped descendants together.'),
    'run loop': (
        'Per-iteration cost of an empty timed loop. skproc: a class with only `run` '
        '(returns 0) and `runs` = N; the wall time from `sk_start` to `sk_wait`\'s return, '
        'minus the start-to-reaped time of a `runs = 1` process (measured separately, '
        'median), divided by N. The raw floor does the same in a forked child: '
        '`clock_gettime(CLOCK_MONOTONIC)`, an empty function through a function pointer, '
        '`clock_gettime`. The run timer row is skproc\'s own `sk_timer_mean(SK_RUN)`: the '
        'time inside the hook as skproc measures it.'),
    'pool': (
        '**Throughput**: a map of 10M `int32` items (quick 1M) to `int32` results, f(x) = x * 3 + 1, one '
        'worker per CPU, on warm pools (forking the workers and a warm-up map are not timed); '
        'a row is the median of 5 maps (quick 3). skproc\'s `sk_pool_map` (private caller '
        'arrays) is compared with three floors measured in the same run. The *raw batched '
        'pipe pool* (`raw_pool.c`) sends the items themselves down a pipe to each worker, '
        '16,384 at a time, and reads the results back. The *raw copying floor* '
        '(`raw_pool_floors.c`) is what a pool over shared memory with the caller\'s private '
        'arrays cannot beat: forked workers share a `MAP_SHARED` mapping made before the '
        'fork and get index ranges over pipes (4 per worker); the parent copies the items '
        'into the mapping and the results back out into the caller\'s array, overlapping '
        'the workers\' work, timed from the first copy to the last. The *raw zero-copy '
        'floor* is the same with items and results already in the mapping, nothing copied. '
        'Both warm up with a full-size map, so the mapping\'s pages are faulted in, as in a '
        'persistent pool. skproc runs the same map twice over: with the function form '
        '(`sk_pool_job.fn`, a call per item) and with the range form (`sk_pool_job.range`, a '
        'call per run of items, a loop the compiler vectorises, as the floors\' workers run '
        'it); each over the caller\'s private arrays and over zero-copy arrays '
        '(`sk_pool_alloc`). The targets are on the range form: 0.5x the copying floor over '
        'private arrays, 0.5x the zero-copy floor over zero-copy arrays; the function form\'s '
        'rows are information.'),
    'messaging': (
        'Between a parent and one child that already runs (starting it is not timed). '
        '**Round trip**: the parent `sk_tell`s an 8-byte `"I"`, the child\'s '
        '`sk_listen(self, -1, ...)` gets it and `sk_tell`s it back, the parent\'s '
        '`sk_listen(p, -1, ...)` gets it; each round trip is timed on its own, 20,000 per '
        'repetition (quick 2,000), and the row is the median one. Round trips are pinned: '
        'the parent on one CPU and the child on another in the main table, both on one CPU '
        'in the last round-trip table. (Left to the scheduler, a ping-pong pair lands on one '
        'CPU in some runs and on two in others, and the medians jump between the two cases: '
        'on one CPU a round trip is two context switches, on two CPUs two wake-ups of a '
        'sleeping CPU, dearer on a virtual machine.) The floors '
        '(`raw_pingpong.c`): two pipes with blocking 8-byte `write`/`read` each way, and a '
        'shared page with one word per direction, `FUTEX_WAIT`/`FUTEX_WAKE` and no spinning '
        '(as skproc waits). Python: a duplex `multiprocessing.Pipe()` to a `Process` (default '
        'start method) that sends a small int back. Each line of `latest.json` also holds the '
        'latency distribution (`pct`: p50, p90, p99, p99.9; `cdf`: every percentile); the '
        'second table gives the 99th percentile. **Throughput**, child to parent (not '
        'pinned): the child tells as fast as it can (on `SK_EFULL` it calls `sched_yield()` '
        'and tells again) and the parent listens; rounds of 1,000,000 64-byte messages (quick 200,000), each a '
        '`"c#"` of 64 chars unpacked into the parent\'s own `char[64]` (and, for comparison, '
        'a `"B"` of 64 bytes, received as a `malloc`\'ed copy), with the default 1 MiB '
        'capacity; and rounds of 1,000 1 MiB messages (quick 200), each a `"B"`, with '
        '`config.capacity` = 64 MiB so that the writer is not throttled by the default 1 MiB; '
        'the row is the median of 5 rounds (quick 3). GB = 10^9 bytes of payload. The floor: '
        'a pipe enlarged to 1 MiB (`F_SETPIPE_SZ`), one `write()` per 64-byte record or 1 MiB '
        'block, the reader `read()`ing 64 KiB (1 MiB) at a time. Targets here are upper '
        'bounds, so the throughput targets sit on the *time per message* and *time per byte* '
        'rows: >= 1 million messages/s is < 1,000 ns per message, >= 2 GB/s is < 0.5 ns per '
        'byte.'),
    'spawned programs': (
        'From asking for `/bin/true` to having reaped it, 3,000 times (quick 300), the three '
        'C rows interleaved op by op in one program (`bench_spawn.c`) and each the median op. '
        'The floor: `posix_spawn` + `waitpid` (glibc\'s `posix_spawn` is '
        '`clone(CLONE_VM | CLONE_VFORK)`). skproc: `sk_spawn_init` + `sk_start` + `sk_wait` + '
        '`sk_release`, stdio inherited, no supervisor (the fast path); and the same with '
        'stdout a pipe read to its end with `sk_spawn_communicate` (information). Python '
        '(`py_spawn.py`): `subprocess.run([\'/bin/true\'])`.'),
    'flows': (
        'A flow of 3 steps, one process each, every step adding 1 to each 64-byte task (a '
        '`uint64_t` and padding); `sk_flow_start` (every process ready) is not timed. '
        '**Throughput**: '
        '2M tasks (quick 200,000) in batches of 64 (`batch_size = 64`, `queue_size = 8192`), '
        'a thread `sk_flow_submit`s while the main thread `sk_flow_collect`s, timed from the '
        'first submit to the end of the stream; again with batches of 1 (200,000 tasks, '
        'quick 20,000). The floor (`raw_flow.c`): 3 forked processes in a chain of pipes, '
        'parent -> s1 -> s2 -> s3 -> parent, with default-sized pipes; batched, the parent\'s '
        'writer thread writes 64 records (4 KiB) per `write`, each stage `read`s what is '
        'there (up to 4 KiB), adds 1 and writes the whole records on with one `write`, the '
        'parent\'s main thread reads them back; unbatched, one record per `read` and per '
        '`write` everywhere. **Latency**: one task through the 3 steps at a time '
        '(`sk_flow_call`, batches of 1), median of 20,000 (quick 2,000); the floor writes one '
        'record into the chain and reads it back. Every task is checked when it comes out '
        '(value + 3, none lost). **Scaling**: one step whose handler spins 1 ms per task, '
        'with 1 and then 2 processes, 2,000 tasks (quick 400); the efficiency is the 2-process '
        'rate / (2 x the 1-process rate). Python (`py_flow.py`): 3 `multiprocessing.Process` '
        'stages joined by `multiprocessing.Queue`s, a one-key dict per task, `None` as the '
        'end; 200,000 tasks (quick 30,000) all `put` then all `get`, and one task at a time '
        'for the latency (2,000, quick 300). **Payloads**: 1 MiB payloads through the same 3 '
        'steps (batches of 1), each step touching the payload in place: it reads every 8-byte '
        'word (their sum goes into the task\'s record, and the parent checks it) and adds 1 to '
        'the first word of every 4 KiB page, so every byte is read and every page written '
        '(`bench_touch_payload` in `bench/common.h`, the same code on both sides). 16 payloads '
        'in `config.payload_area`, allocated with `sk_flow_payload_alloc` and filled before '
        '`sk_flow_start`, go round: the parent `sk_flow_collect_many`s what is out, checks the '
        '3 sums and `sk_flow_submit_many`s those records again, until 10,000 payloads (quick '
        '2,000) went through, after one untimed round. Only the 48-byte record crosses the '
        'rings: **copies per step = 0**; at the end (untimed) the parent\'s view of every '
        'payload must hold exactly what the 3 x passes touches leave there. GB/s counts each '
        'payload once (10^9 bytes), not once per step; the second row is payloads/s from the '
        'same run. The floor (`raw_flow.c`): the same 16 payloads in one `MAP_SHARED` mapping '
        'made before forking 3 stages in a chain of pipes that carry only 8-byte offsets; a '
        'stage reads up to 64 offsets, touches each payload and writes its offset on at once, '
        'storing its sum in a table in the mapping; the parent writes every offset that comes '
        'back (sums checked) into the chain again, in one `write`. (A shared-memory queue of '
        'offsets with futex wake-ups was tried instead of the pipes and was no faster: a touch '
        'of 1 MiB takes tens of microseconds, a hand-off a few.)'),
    'groups': (
        'A group (`include/skproc/group.h`) of 100 children, one for one, each the same idle '
        'process: `config.ready = SK_READY_ON_NOTIFY`, a prerun that calls `sk_ready(self)`, a '
        'run hook asleep in `sk_listen(self, -1, ...)` until the process is asked to stop; every '
        'child has a supervisor (the group\'s default) unless the row says `no_supervisor`. All '
        'rows come from one program (`bench_group.c`), skproc and its floors interleaved op by '
        'op, the order turning; each row is the median op. **Start**: from `sk_group_start` to '
        'its return, all 100 started in order, each once the one before is ready (creating the '
        'group and `sk_group_add` are not timed); 10 ops per repetition (quick 3). The floor, '
        'written with plain syscalls: for each child in turn the parent forks a supervisor that '
        'forks a worker, the worker writes its pid (4 bytes) on a readiness pipe, and the parent '
        'reads it before it forks the next; the `no_supervisor` row (the group forks each worker '
        'itself) is compared with the same done by a single fork (information). **Stop**: '
        '`sk_group_stop` of those 100, in reverse order, each ending cleanly (its `sk_listen` '
        'says `SK_ECLOSED`, the run hook returns, the worker exits 0 and is reaped); the floor '
        'sends SIGTERM to each raw supervisor in reverse order and `waitpid`s it, the supervisor '
        'forwarding the TERM to its worker (which `sigwait`s for it and exits 0) and reaping it. '
        '**Restart**: in a running group of 100, `SIGKILL` one child\'s worker (the pid from '
        '`sk_group_state_read`), timed from just before the kill to the group\'s '
        '`SK_GROUP_CHILD_READY` event for the new incarnation (stamped in `on_event`, in the '
        'group\'s thread); the children are killed in turn, 600 restarts per repetition (quick '
        '100), each row the median. The worker dies with `lives = 1`, so its supervisor ends the '
        'process and the group starts a new supervisor and worker. Two floors, each a tree of '
        '100 raw children running beside the group: a raw supervisor blocked in `waitpid` on its '
        'worker that forks a new one when it dies, the new one writing its pid on the readiness '
        'pipe, timed from the kill to the parent\'s `read` (the cheapest restart: the worker '
        'only); and a *raw tree respawn*, what a group restart does: the raw supervisor exits '
        'when its worker dies, the parent `waitpid`s it and forks a new supervisor that forks a '
        'new worker, then reads the pid. The skproc samples are shown against both; the target, '
        '< 2x, is on the row against the tree respawn.'),
    'scheduling': (
        'A session (`include/skproc/sched.h`), all rows from one program (`bench_sched.c`). '
        '**Lateness**: from the instant a time-triggered task was due to the instant its code '
        'began, both `CLOCK_REALTIME`. 100 tasks `every 1 seconds` of one mode, their first '
        'runs made 10 ms apart (`sk_sched_add` then `sk_sched_step`, one at a time), then '
        '`sk_sched_run` on the real clock for 5 s (quick 1 s): each task is due exactly 1 s '
        'after its last run started (the start `on_run` reports), so one task is due every '
        '10 ms; the code writes the time into a page mapped `MAP_SHARED` before the session '
        'was made (process tasks run in forks). The floors wake on a `timerfd` '
        '(`CLOCK_REALTIME`, `TFD_TIMER_ABSTIME`) at due instants 10 ms apart, 300 of each '
        '(quick 60), and then take the time (main), `pthread_create` a thread that takes it '
        '(joined), or `fork` a child that takes it and `_exit`s (`waitpid`ed); the raw double '
        'fork has a middle process fork that child, the shape of an skproc process with a '
        'supervisor. `sk_start` rows: the same wake, then `sk_start` of an skproc process '
        '(`runs = 1`) whose run hook takes the time, supervised (as a process task is) and '
        'not. Each row is the median sample (its 99th percentile in the second table); the '
        'third splits skproc\'s lateness into the wake (due instant to the clock reading of '
        'the cycle that starts the run) and the launch (from there to the code). **Cost of '
        'the session**: 10,000 tasks run in the session\'s thread, false for hours (`daily '
        'between` windows and `cron` hours 2 to 9 hours ahead, `time of day ... & every 10 '
        'seconds`, `after task` of a task that never runs), TZ=UTC. Per cycle: CPU '
        '(`CLOCK_PROCESS_CPUTIME_ID`) of `sk_sched_step` on a fake clock one second later at '
        'each cycle, 2,000 cycles (quick 300), 10 of the tasks `every 10 seconds` and run; '
        'against the naive way, every condition `sk_cond_eval`ed at every cycle. Idle: CPU '
        '(`getrusage`) per wall second of `sk_sched_run` on the real clock with nothing due, '
        '3 s (quick 1 s), after an untimed first cycle, against `epoll_wait` on a timerfd as '
        'long; and the session thread\'s voluntary context switches per second.'),
    'scheduler': (
        'The run log of a scheduling session, written through its internal interface '
        '(`skproc/sched/runlog.h`) with no session around it: one run is '
        '`sk_runlog_begin` + `sk_runlog_end` (success, an 8-byte value, one of 16 task '
        'names), each its own commit, so a run is logged before it starts and a kill loses '
        'nothing logged. **SQLite**: the store in WAL mode with `synchronous = NORMAL`, '
        '10,000 runs per round (quick 2,000), against raw `sqlite3` in the same program: the '
        'same pragmas, the same table and indexes, a prepared `INSERT` at the start and a '
        'prepared `UPDATE` at the end of each run. **CSV**: 100,000 runs per round (quick '
        '20,000), a line per start and per end, against the same lines from `snprintf` '
        'written with one `write(2)` each to an `O_APPEND` file. **Memory**: the bounded ring '
        '(10,000 runs kept), 1,000,000 runs per round (quick 200,000), information. Every '
        'round logs into a fresh file in a fresh directory under `$TMPDIR` (or `/tmp`); the '
        'kinds take turns round by round, 5 rounds (quick 3), and a row is the median round. '
        'SQLite\'s rate is set by the file system: each commit writes its pages to the WAL '
        'file, and a checkpoint (every 1,000 pages) syncs it.'),
    'supervision': (
        '**Timeout precision**: a process with `timeouts.run = 0.02` whose run hook writes '
        '`clock_gettime(CLOCK_MONOTONIC)` into a page mapped `MAP_SHARED` before `sk_start`, '
        'blocks every signal and spins until the supervisor ends it (SIGKILL). The lateness is '
        'the time from the hook\'s start + 20 ms to the return of `sk_wait(p, -1)` in the '
        'parent; 200 trials per repetition (quick 40), a fresh process each. The rows are each '
        'repetition\'s median, 99th percentile and largest trial, so the *max* column of the '
        'largest-trial row is the worst trial of the whole run; every trial is in '
        '`latest.json` (`samples`, `cdf`). The floors (`raw_timeout.c`) are measured the '
        'same way with no library: a forked child writes its start time into a `MAP_SHARED` '
        'page, blocks every signal and spins; a `timerfd` (absolute `CLOCK_MONOTONIC`) armed '
        'for start + 20 ms expires, `poll` sees it, `kill(SIGKILL)` ends the child and '
        '`waitid(WEXITED)` sees it die. In the *raw* rows the parent does that itself; in the '
        '*raw2* rows a middle process does it and exits, and the lateness runs to the return '
        'of the parent\'s `waitid` on it: skproc\'s shape (parent, supervisor, worker), and '
        'the baseline of skproc\'s rows. Neither floor pays for what skproc adds: the '
        'supervisor\'s bookkeeping, the exit of a supervisor that is a fork of the parent with '
        'the status page and rings mapped, and the parent\'s own teardown in `sk_wait`. '
        '**Restart after a crash**: (a) `sk_init` + '
        '`sk_start` + `sk_result("I")` + `sk_release` of a trivial process with `lives = 2` '
        '(so it has a supervisor) and `runs = 1`; (b) the same process whose run hook '
        '`raise(SIGSEGV)`s on its first attempt (a flag in a `MAP_SHARED` page; the worker '
        'makes itself non-dumpable first, so no core is written) and succeeds in the worker '
        'the supervisor forks next. (a) and (b) alternate, 1,000 ops each (quick 150); the '
        'rows are the median op, (b)\'s ratio is (b) / (a), and the restart cost is (b) - '
        '(a).'),
}


def note_sched_process(rows, info):
    """A process task's lateness against the raw fork: where the time goes."""
    get = rows.get
    late, fork, fork2 = get('sched.late.process'), get('sched.late.raw_fork'), \
        get('sched.late.raw_fork2')
    prefork, cold, start = get('sched.late.raw_prefork'), get('sched.late.process_cold'), \
        get('sched.late.sk_start')
    wake, launch = get('sched.late.process.wake'), get('sched.late.process.launch')
    if not (late and fork and fork2 and prefork and cold and start and wake and launch):
        return None
    return ('1.3x the raw fork is %s us; a process task started %s us after it was due: %s us '
            'to wake up and reach the cycle that starts it, %s us from the start of the run to '
            'its code. Its process and supervisor were forked `prefork` seconds ahead and '
            'released at the start; the same design by hand (a child forked ahead, blocked in '
            '`read`, woken by a byte) took %s us. With prefork off, every start forks its '
            'supervisor and worker then: %s us, against `sk_start` of a supervised process '
            'alone %s us and the raw double fork %s us.'
            % (fmt_num(1.3 * fork.median), fmt_num(late.median), fmt_num(wake.median),
               fmt_num(launch.median), fmt_num(prefork.median), fmt_num(cold.median),
               fmt_num(start.median), fmt_num(fork2.median)))


def note_start_skproc(rows, info):
    raw, sk = rows.get('start.raw'), rows.get('start.skproc')
    if not (raw and sk):
        return None
    budget = 3 * raw.median
    return ('3x the raw fork is %s us; skproc took %s us, %s us more. See *Where skproc\'s '
            'start-up time goes*.' % (fmt_num(budget), fmt_num(sk.median),
                                      fmt_num(sk.median - budget)))


def note_start_python(rows, info):
    py, raw, sk = rows.get('start.python'), rows.get('start.raw'), rows.get('start.skproc')
    if not (py and raw and sk):
        return None
    need = py.median / py.spec.get('min_ratio', 10.0)
    split = info.get('start.skproc.faults') or {}
    floor = rows.get('start.raw2') if split.get('forks') == 2 else raw
    if floor is None:
        return None
    what = 'a raw double fork' if floor is not raw else 'a raw fork'
    if need <= floor.median:
        verdict = ('below the %s us of %s, the floor of how skproc started this process: '
                   'trimming skproc cannot reach it on this machine' % (fmt_num(floor.median),
                                                                       what))
    else:
        verdict = ('%s us above the %s us of %s, the floor of how skproc started this process, '
                   'while skproc spent %s us above it'
                   % (fmt_num(need - floor.median), fmt_num(floor.median), what,
                      fmt_num(sk.median - floor.median)))
    return 'For 10x, skproc would have to start in %s us: %s.' % (fmt_num(need), verdict)


# Extra explanation under *Short of target*, per key, when that row misses.
def note_rt_python(rows, info):
    """Python's Pipe against skproc's round trip: what 5x would need, next to
    the raw floors measured in the same run."""
    py, sk = rows.get('msg.rt.python'), rows.get('msg.rt.skproc')
    pipe, futex = rows.get('msg.rt.pipe'), rows.get('msg.rt.futex')
    if not (py and sk and pipe and futex):
        return None
    need = py.median / 5.0
    floor = min(pipe.median, futex.median)
    return ('5x would need a round trip of %s us; the raw pipe and futex ping-pongs '
            'between the same two CPUs took %s and %s us in this run, so even they are only '
            '%.2fx faster than Python here. skproc is at %.2fx the pipe: no design that sleeps '
            'while it waits can reach the target on this machine (only busy-polling could).'
            % (fmt_num(need), fmt_num(pipe.median), fmt_num(futex.median),
               py.median / floor, sk.median / pipe.median))


SHORT_NOTES = {
    'sched.late.process': note_sched_process,
    'start.skproc': note_start_skproc,
    'start.python': note_start_python,
    'msg.rt.python': note_rt_python,
}

# ------------------------------------------------------------------- helpers

def log(msg):
    sys.stderr.write(msg + '\n')
    sys.stderr.flush()


def read_text(path, default=''):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def command_output(cmd, cwd=ROOT):
    try:
        return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def machine_info():
    cpuinfo = read_text('/proc/cpuinfo')
    m = re.search(r'^model name\s*:\s*(.+)$', cpuinfo, re.M)
    cpu = m.group(1).strip() if m else platform.processor() or 'unknown'
    flags = re.search(r'^flags\s*:\s*(.+)$', cpuinfo, re.M)
    virtual = bool(flags and ' hypervisor' in ' ' + flags.group(1) + ' ')
    mem = re.search(r'^MemTotal:\s*(\d+) kB', read_text('/proc/meminfo'), re.M)
    thp = re.search(r'\[(\w+)\]', read_text('/sys/kernel/mm/transparent_hugepage/enabled'))
    clock = read_text('/sys/devices/system/clocksource/clocksource0/current_clocksource').strip()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    rev = command_output(['git', 'rev-parse', '--short', 'HEAD'])
    dirty = bool(command_output(['git', 'status', '--porcelain', '--untracked-files=no']))
    return {
        'cpu': cpu,
        'cores': os.cpu_count(),
        'cores_usable': usable,
        'virtual_machine': virtual,
        'memory_gb': round(int(mem.group(1)) / 1048576, 1) if mem else None,
        'kernel': '%s %s %s' % (platform.system(), platform.release(), platform.machine()),
        'transparent_hugepages': thp.group(1) if thp else 'unknown',
        'clocksource': clock or 'unknown',
        'cc_env': os.environ.get('CC', ''),
        'run_py_python': platform.python_version(),
        'git': (rev + (' (with uncommitted changes)' if dirty else '')) if rev else 'unknown',
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
    }


def shown(path):
    """path relative to the repository when inside it."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def loadavg():
    try:
        return ' '.join('%.2f' % x for x in os.getloadavg())
    except OSError:
        return 'unknown'


def fmt_num(v):
    if v is None:
        return '-'
    a = abs(v)
    if a >= 1000:
        return '{:,.0f}'.format(v)
    if a >= 10:
        return '%.1f' % v
    return '%.2f' % v


# MPI programs ('mpirun': True) run as `mpirun <flags> -n 3 PROGRAM`, with the flags
# the tests use (site_scons/skproc_build/mpi.py: root, oversubscribed, TCP on
# loopback, yielding when idle).
sys.path.insert(0, os.path.join(ROOT, 'site_scons'))
try:
    from skproc_build.mpi import OPENMPI_RUN_FLAGS as MPIRUN_FLAGS
except ImportError:
    MPIRUN_FLAGS = []


def bench_command(bench, build_dir, quick):
    if 'c' in bench and bench.get('mpirun'):
        cmd = ['mpirun'] + MPIRUN_FLAGS + ['-n', '3', os.path.join(build_dir, 'bench', bench['c'])]
    elif 'c' in bench:
        cmd = [os.path.join(build_dir, 'bench', bench['c'])]
    else:
        cmd = [sys.executable, os.path.join(ROOT, 'bench', bench['py'])]
    cmd += list(bench.get('args', []))
    if quick:
        cmd.append('--quick')
    return cmd


# ------------------------------------------------------------------- running

class Row:
    """One measurement key across the repetitions."""

    def __init__(self, key, first):
        self.key = key
        self.area = first['area']
        self.name = first['name']
        self.short = first.get('short') or first['name']
        self.unit = first['unit']
        self.table = first.get('table', '')
        self.baseline = first.get('baseline')
        self.reps = []     # the value of each repetition
        self.details = []  # each repetition's whole JSON object
        self.spec = {}
        self.ratio = None
        self.met = None

    def add(self, obj):
        self.reps.append(float(obj['value']))
        self.details.append(obj)

    @property
    def median(self):
        return statistics.median(self.reps) if self.reps else None

    def detail_median(self, field):
        vals = [float(d[field]) for d in self.details if d.get(field) is not None]
        return statistics.median(vals) if vals else None


class Interrupted(Exception):
    """SIGTERM or SIGINT: stop, keep what was measured, write no report."""


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def kill_group(proc):
    """Kills the program and everything it started (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def snapshot(proc, name, rep):
    """Before killing a hung program: where each of its processes sleeps,
    saved next to latest.json for whoever debugs the hang."""
    text = command_output(['ps', '-s', str(proc.pid), '-o', 'pid,ppid,stat,wchan:32,etime,args'])
    path = os.path.join(ROOT, 'bench', 'results', 'hang-%s-%d.txt'
                        % (re.sub(r'[^A-Za-z0-9_.-]+', '_', name), rep))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text + '\n')
    except OSError:
        return None
    return path


def run_program(cmd, env, timeout, name, rep):
    """Runs cmd in a session of its own, so that a timeout or an interrupt
    kills its children too (a hung pool's workers, say). Returns
    (exit status or None on a timeout, stdout, stderr, hang snapshot)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, None
    except subprocess.TimeoutExpired:
        where = snapshot(proc, name, rep)
        kill_group(proc)
        out, err = proc.communicate()
        return None, out, err, where
    except BaseException:
        kill_group(proc)
        proc.communicate()
        raise


def run_once(bench, cmd, timeout, rows, order, infos, failures, rep):
    env = dict(os.environ)
    env.update(bench.get('env', {}))
    suffix = bench.get('suffix', '')
    label = bench.get('label', '')
    t0 = time.monotonic()
    try:
        status, stdout, stderr, where = run_program(cmd, env, timeout, bench['name'], rep)
    except OSError as e:
        failures.append('%s (repetition %d): cannot run %s: %s'
                        % (bench['name'], rep, shlex.join(cmd), e))
        log('  %-28s cannot run: %s' % (bench['name'], e))
        return
    took = time.monotonic() - t0
    if status is None:
        # What it printed before hanging is kept: those lines are complete.
        failures.append('%s (repetition %d): timed out after %ds%s'
                        % (bench['name'], rep, timeout,
                           (' (processes at that moment: %s)' % shown(where)) if where else ''))
        log('  %-28s TIMEOUT after %ds%s' % (bench['name'], timeout,
                                            (', see ' + shown(where)) if where else ''))
    got = 0
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            failures.append('%s: not a JSON line: %r' % (bench['name'], line[:200]))
            continue
        if obj.get('type') == 'info':
            # Keyed info (a detail to report, not a row) or the program's own.
            infos.setdefault(obj['key'] + suffix if obj.get('key') else bench['name'], obj)
            continue
        if not all(k in obj for k in ('area', 'key', 'name', 'unit')) or (
                'value' not in obj and 'median' not in obj and 'samples' not in obj):
            failures.append('%s: a measurement without area/key/name/unit/value: %r'
                            % (bench['name'], line[:200]))
            continue
        if 'value' not in obj:
            obj['value'] = obj['median'] if 'median' in obj else statistics.median(obj['samples'])
        obj['key'] += suffix
        obj['name'] += label
        if obj.get('short'):
            obj['short'] += label
        if obj.get('baseline'):
            obj['baseline'] += suffix
        row = rows.get(obj['key'])
        if row is None:
            row = rows[obj['key']] = Row(obj['key'], obj)
            row.spec = dict(bench.get('rows', {}).get(obj['key'], {}))
            if row.spec.get('baseline'):
                row.baseline = row.spec['baseline']
            order.append(obj['key'])
        row.add(obj)
        got += 1
    if status is None:
        return
    if status != 0:
        err = stderr.strip().splitlines()[-3:]
        failures.append('%s (repetition %d): exit status %d%s'
                        % (bench['name'], rep, status, (': ' + ' / '.join(err)) if err else ''))
        log('  %-28s FAILED (exit %d) %s' % (bench['name'], status, ' / '.join(err)))
    else:
        log('  %-28s %2d measurements in %5.1fs' % (bench['name'], got, took))


def paired_ratio(row, base):
    """row / base: the median of the per-repetition ratios when both have
    every repetition (a busy moment of the machine then cancels out), else
    the ratio of the medians."""
    if not row.reps or not base.reps:
        return None
    if len(base.reps) == len(row.reps) and all(base.reps):
        return statistics.median(v / b for v, b in zip(row.reps, base.reps))
    return row.median / base.median if base.median else None


def evaluate(rows):
    for row in rows.values():
        base = rows.get(row.baseline) if row.baseline else None
        if base is not None:
            row.ratio = paired_ratio(row, base)
        spec = row.spec
        checks = []
        if 'max_ratio' in spec:
            checks.append(row.ratio is not None and row.ratio < spec['max_ratio'])
        if 'min_ratio' in spec:
            checks.append(row.ratio is not None and row.ratio >= spec['min_ratio'])
        if 'max_value' in spec:
            checks.append(row.median is not None and row.median < spec['max_value'])
        if 'min_value' in spec:
            checks.append(row.median is not None and row.median >= spec['min_value'])
        row.met = all(checks) if checks else None


# ------------------------------------------------------------------- report

def fmt_ratio(r):
    """Two decimals; two significant digits below 0.1 (0.0043x, not 0.00x)."""
    return ('%.2g' % r if 0 < abs(r) < 0.1 else '%.2f' % r) + 'x'


def ratio_text(row, rows):
    if row.ratio is None:
        return '-'
    return '%s %s' % (fmt_ratio(row.ratio), rows[row.baseline].short)


def target_text(row):
    spec = row.spec
    if 'target' in spec:
        return spec['target']
    parts = []
    if 'max_ratio' in spec:
        parts.append('< %gx baseline' % spec['max_ratio'])
    if 'min_ratio' in spec:
        parts.append('>= %gx baseline' % spec['min_ratio'])
    if 'max_value' in spec:
        parts.append('< %g %s' % (spec['max_value'], row.unit))
    if 'min_value' in spec:
        parts.append('>= %g %s' % (spec['min_value'], row.unit))
    return ', '.join(parts) or '-'


def met_text(row):
    return '-' if row.met is None else ('yes' if row.met else '**no**')


def md_table(rows, keys):
    has_faults = any(rows[k].detail_median('minflt') is not None for k in keys)
    head = ['measurement', 'median', 'min', 'max', 'unit', 'ratio vs baseline', 'target', 'met?']
    if has_faults:
        head.append('faults/op')
    out = ['| ' + ' | '.join(head) + ' |',
           '|' + '|'.join(['---', '--:', '--:', '--:', '---', '---', '---', '---']
                          + (['--:'] if has_faults else [])) + '|']
    for k in keys:
        r = rows[k]
        cells = [r.name, fmt_num(r.median), fmt_num(min(r.reps)), fmt_num(max(r.reps)), r.unit,
                 ratio_text(r, rows), target_text(r), met_text(r)]
        if has_faults:
            cells.append(fmt_num(r.detail_median('minflt')))
        out.append('| ' + ' | '.join(cells) + ' |')
    return out


def memory_section(rows, order):
    """What the parent-memory sweep shows, and what to do about it."""
    plain = []
    for k in order:
        r = rows[k]
        d = r.details[0] if r.details else {}
        if 'mem_mb' in d and not d.get('huge_pages') and not k.endswith('@bindnow'):
            plain.append(int(d['mem_mb']))
    sizes = sorted(set(plain))
    points = [(mb, rows['start.mem%d.raw' % mb], rows['start.mem%d.skproc' % mb],
               rows.get('start.mem%d.skproc.sup' % mb)) for mb in sizes
              if 'start.mem%d.raw' % mb in rows and 'start.mem%d.skproc' % mb in rows]
    out = []
    if len(points) >= 2:
        (mb0, raw0, sk0, sup0), (mb1, raw1, sk1, sup1) = points[0], points[-1]

        def per_gb(r0, r1):
            return (r1.median - r0.median) / (mb1 - mb0) * 1024 / 1000

        text = ('In this run every GB the parent had touched added about %.1f ms to a raw fork '
                'and %.1f ms to an skproc start' % (per_gb(raw0, raw1), per_gb(sk0, sk1)))
        if sup0 and sup1:
            text += ', %.1f ms to a supervised one' % per_gb(sup0, sup1)
        text += (' (%d MB: %s us, %s us%s). fork() copies the parent\'s page tables and the '
                 'child tears its copy down when it exits, so the cost grows with the parent\'s '
                 'resident memory, not with what the child does.'
                 % (mb1, fmt_num(raw1.median), fmt_num(sk1.median),
                    (', %s us' % fmt_num(sup1.median)) if sup1 else ''))
        if sup1:
            text += (' A supervised process pays it twice, %.2fx the raw fork at %d MB against '
                     '%.2fx for the plain one: its supervisor is a fork of the parent and the '
                     'worker a fork of the supervisor.'
                     % (sup1.ratio or paired_ratio(sup1, raw1), mb1,
                        sk1.ratio or paired_ratio(sk1, raw1)))
        out.append(text)
        out.append('')
        huge = [rows.get('start.mem%dh.%s' % (mb1, k)) for k in ('raw', 'skproc', 'skproc.sup')]
        if huge[0] and huge[1]:
            huge_mb = huge[1].details[0].get('anon_huge_mb', -1)
            out.append(
                'The same %d MB in transparent huge pages (`madvise(MADV_HUGEPAGE)`; the kernel '
                'backed %s MB of the parent with them) cost %s us to a raw fork and %s us to an '
                'skproc start%s: one page-table entry per 2 MB instead of one per 4 kB.'
                % (mb1, huge_mb if huge_mb >= 0 else '?', fmt_num(huge[0].median),
                   fmt_num(huge[1].median),
                   (' (%s us supervised)' % fmt_num(huge[2].median)) if huge[2] else ''))
            out.append('')
    out.append('What a user can do about it:')
    out.append('')
    out.append('- **Start processes early**, before the parent allocates its big buffers: a '
               'process started while the parent is small stays cheap to start, whatever the '
               'parent allocates afterwards.')
    out.append('- **Keep the parent small**: let the children allocate and load their own '
               'data in `prerun` or the first `run` instead of inheriting it, and free big '
               'parent buffers before starting more processes.')
    out.append('- **Reuse processes** for many short jobs instead of starting one per job: a '
               'long-running process fed with messages pays the start once, and the worker '
               'pool (`sk_pool`, docs/pool.md) does this for you.')
    out.append('- **Use huge pages for big buffers**: where transparent huge pages are enabled '
               '(`always` or `madvise` in /sys/kernel/mm/transparent_hugepage/enabled; this '
               'machine: `{thp}`), `madvise(buf, len, MADV_HUGEPAGE)` on a large buffer before '
               'touching it makes every later fork far cheaper, as measured above.')
    return out


def where_time_goes(rows, info):
    raw, raw2, sk = rows.get('start.raw'), rows.get('start.raw2'), rows.get('start.skproc')
    if not (raw and raw2 and sk):
        return []
    out = ['## Where skproc\'s start-up time goes', '']
    f_raw, f_raw2, f_sk = (r.detail_median('minflt') for r in (raw, raw2, sk))
    sup = rows.get('start.skproc.sup')
    split, split_sup = info.get('start.skproc.faults'), info.get('start.skproc.sup.faults')
    forks = split.get('forks') if split else None
    how = {1: 'the parent forked the worker itself (one fork)',
           2: 'a supervisor forked the worker (two forks)'}
    text = '- **Forks.** '
    if forks in how:
        text += 'For the plain process %s. ' % how[forks]
    text += ('skproc\'s start+result took %s us, %.2fx the raw fork and %.2fx a raw double '
             'fork (%s us).' % (fmt_num(sk.median), paired_ratio(sk, raw), paired_ratio(sk, raw2),
                                fmt_num(raw2.median)))
    if sup:
        text += (' Supervised, it took %s us: %.2fx the raw double fork, the floor of a worker '
                 'forked by a supervisor.' % (fmt_num(sup.median), paired_ratio(sup, raw2)))
    out.append(text)
    if f_raw and f_raw2 and f_sk:
        out.append(
            '- **Page faults.** A fresh process shares the parent\'s memory copy-on-write and '
            'faults in, page by page, every page it writes and the code and library pages it '
            'runs; on a virtual machine faults are much of a fork\'s cost. Per op: %s minor '
            'faults for a raw fork, %s for the double fork, %s for skproc%s. Each page skproc '
            'touches in a child (its status page, the worker\'s and supervisor\'s stacks and '
            'heap, code not yet run in the parent) is one more.'
            % (fmt_num(f_raw), fmt_num(f_raw2), fmt_num(f_sk),
               (', %s supervised' % fmt_num(sup.detail_median('minflt')))
               if sup and sup.detail_median('minflt') is not None else ''))
        for label, sp in (('plain', split), ('supervised', split_sup)):
            if not sp:
                continue
            bn = info.get(('start.skproc.faults' if sp is split else 'start.skproc.sup.faults')
                          + '@bindnow')
            out.append(
                '  Split by process, %s (an instrumented start, not timed): the parent %s (%s of '
                'them in `sk_start`), the worker up to its result hook %s, the rest (%sthe '
                'worker\'s result hook and exit) %s%s.'
                % (label, fmt_num(sp['parent']), fmt_num(sp['parent_start']),
                   fmt_num(sp['worker_to_result_hook']),
                   'the supervisor, ' if sp.get('forks') == 2 else '', fmt_num(sp['rest']),
                   (' (with `LD_BIND_NOW=1`: worker %s, rest %s)'
                    % (fmt_num(bn['worker_to_result_hook']), fmt_num(bn['rest']))) if bn else ''))
    bn_raw, bn_sk = rows.get('start.raw@bindnow'), rows.get('start.skproc@bindnow')
    if bn_raw and bn_sk:
        out.append(
            '- **Lazy binding.** A dynamically linked program resolves a library function on '
            'its first call, and a fresh process again for every function its parent had not '
            'called yet: symbol lookups plus a copy-on-write fault on the GOT, paid in every '
            'worker and supervisor. With `LD_BIND_NOW=1` (the same as linking with '
            '`-Wl,-z,now`: everything resolved at load) skproc\'s start took %s us instead of '
            '%s (%+.0f%%, paired by repetition) and the raw fork %s us instead of %s; skproc / '
            'raw was %.2fx.'
            % (fmt_num(bn_sk.median), fmt_num(sk.median), (paired_ratio(bn_sk, sk) - 1) * 100,
               fmt_num(bn_raw.median), fmt_num(raw.median), paired_ratio(bn_sk, bn_raw)))
    out.append('')
    return out


def markdown(meta, rows, order, failures):
    info = meta['programs']
    compilers = sorted({i['compiler'].strip() for i in info.values() if i.get('compiler')})
    py = info.get('py_start', {})
    m = meta['machine']
    cores = '%s' % m['cores']
    if m.get('cores_usable') and m['cores_usable'] != m['cores']:
        cores += ' (%s usable by this run)' % m['cores_usable']
    mode = ('full: %d repetitions' % meta['reps'] if not meta['quick']
            else 'quick: %d repetitions, fewer ops (rough numbers)' % meta['reps'])
    L = ['# skproc performance', '',
         '<!-- Generated by bench/run.py from a real run. Do not edit by hand: run '
         '`scons bench` to regenerate it. -->', '',
         'Measured on %s. Numbers from another machine will differ; the ratios to the baselines '
         'measured in the same run are what carries over.' % m['date'], '',
         '## Machine', '',
         '| | |', '|---|---|',
         '| CPU | %s, %s cores%s |' % (m['cpu'], cores,
                                     ' (virtual machine)' if m['virtual_machine'] else ''),
         '| Memory | %s GB |' % m['memory_gb'],
         '| Kernel | %s |' % m['kernel'],
         '| Compiler | %s%s, `-O2`, programs linked with the static `libskproc.a` |'
         % (', '.join(compilers) or 'unknown', (' (CC=%s)' % m['cc_env']) if m['cc_env'] else ''),
         '| Python | %s %s, multiprocessing start method `%s` |'
         % (py.get('implementation', 'CPython'), py.get('python', m['run_py_python']),
            py.get('start_method', '?')),
         '| Transparent huge pages | %s |' % m['transparent_hugepages'],
         '| Clock source | %s |' % m['clocksource'],
         '| skproc | git %s |' % m['git'],
         '| Run | %s, %s |' % (mode, m['date']),
         '',
         '## How to reproduce', '',
         '```sh',
         'scons bench            # build, run everything (a few minutes), rewrite this file',
         'scons bench quick=1    # under a minute; writes bench/results/performance.md instead',
         'python3 bench/run.py --build-dir build/default [--quick]   # the same, already built',
         '```', '',
         'Raw results: `bench/results/latest.json`. How it works and how to add a benchmark: '
         '`bench/README.md`.', '',
         '## Method', '',
         'Every benchmark program runs %d times (repetitions), the programs interleaved. A '
         'row\'s *median*, *min* and *max* are over the repetitions\' values; a repetition\'s '
         'value is itself the median of its many ops where the row times ops one by one. '
         '*Ratio vs baseline* is the median over the repetitions of this row\'s value divided '
         'by the baseline\'s value in the same repetition (the C benchmarks also alternate '
         'their kinds of op, raw, skproc, raw, ..., so that the machine\'s load hits both '
         'alike). A target missed is listed under *Short of target*, not hidden. Load average '
         'when the run started: %s (1, 5, 15 minutes; the run itself then keeps one or two '
         'cores busy). A busy machine makes every number worse; the ratios suffer less.'
         % (meta['reps'], meta.get('loadavg_start', 'unknown')),
         '']
    areas = []
    for k in order:
        if rows[k].area not in areas:
            areas.append(rows[k].area)
    for area in areas:
        L += ['## ' + area[0].upper() + area[1:], '']
        if area in AREA_NOTES:
            L += [AREA_NOTES[area], '']
        tables = []
        for k in order:
            r = rows[k]
            if r.area == area and r.table not in tables:
                tables.append(r.table)
        for table in tables:
            keys = [k for k in order if rows[k].area == area and rows[k].table == table]
            if table:
                L += ['### %s: %s' % (area[0].upper() + area[1:], table), '']
            if table == 'parent memory':
                L += ['Start-up time while the parent has touched (malloc + memset) that much '
                      'heap, then the largest size again in huge pages; the ratio is to the raw '
                      'fork in the same conditions. Fewer ops per repetition here (a time budget '
                      'per size).', '']
            L += md_table(rows, keys)
            if table == 'parent memory':
                L.append('')
                L += [line.replace('{thp}', m['transparent_hugepages'])
                      for line in memory_section(rows, order)]
            L.append('')
        if area == 'process start':
            L += where_time_goes(rows, meta.get('programs', {}))

    L += ['## Short of target', '']
    short = [rows[k] for k in order if rows[k].met is False]
    for r in short:
        L.append('- **%s**: %s %s, %s; target %s.'
                 % (r.name, fmt_num(r.median), r.unit, ratio_text(r, rows), target_text(r)))
        note = SHORT_NOTES.get(r.key, lambda rows, info: None)(rows, meta.get('programs', {}))
        if note:
            L.append('  ' + note)
    for f in failures:
        L.append('- **Failed**: %s' % f)
    if not short and not failures:
        L.append('None: every target was met in this run.')
    L.append('')
    return '\n'.join(L)


def text_summary(rows, order):
    out = []
    for k in order:
        r = rows[k]
        out.append('%-58s %10s %-3s  %-34s %s'
                   % (r.name[:58], fmt_num(r.median), r.unit,
                      ('%s %s' % (fmt_ratio(r.ratio), r.baseline)) if r.ratio is not None else '',
                      '' if r.met is None else ('target met' if r.met else 'SHORT OF TARGET')))
    return '\n'.join(out)


# ---------------------------------------------------------------------- main

def rows_from_json(result):
    """Rebuilds the rows of a saved run (for --from-json)."""
    rows, order = {}, []
    for m in result['measurements']:
        first = dict(m['details'][0]) if m.get('details') else {}
        first.update({'area': m['area'], 'name': m['name'], 'unit': m['unit'],
                      'table': m.get('table', ''), 'baseline': m.get('baseline')})
        first.setdefault('short', m.get('short') or m['name'])
        row = Row(m['key'], first)
        spec = m.get('spec')
        if spec is None:  # saved before specs were saved: take the registry's
            spec = next((b['rows'][m['key']] for b in BENCHES
                         if m['key'] in b.get('rows', {})), {})
        row.spec = dict(spec)
        if row.spec.get('baseline'):
            row.baseline = row.spec['baseline']
        row.reps = list(m['reps'])
        row.details = list(m.get('details') or [])
        rows[m['key']] = row
        order.append(m['key'])
    return rows, order


def default_doc(quick):
    """Quick numbers are rough: they never replace the published report."""
    if quick:
        return os.path.join(ROOT, 'bench', 'results', 'performance.md')
    return os.path.join(ROOT, 'docs', 'performance.md')


PLOT_CAPTIONS = {
    'start_vs_parent_memory.png': 'Process start against the memory the parent has touched',
    'pool_vs_batch.png': 'Pool throughput against the batch size',
    'pool_vs_workers.png': 'Pool throughput against the number of workers',
    'latency_rtt.png': 'Round trip of an 8-byte message: the distribution',
    'timeout_lateness.png': 'How late a timeout reaches the parent: the distribution',
    'flow_throughput.png': 'A 3-step flow against the raw pipe floor and Python multiprocessing',
}


def draw_plots(results_json, out_dir):
    """PNGs next to the report (bench/plots.py, gnuplot); [] when it cannot."""
    try:
        proc = subprocess.run([sys.executable, os.path.join(ROOT, 'bench', 'plots.py'),
                               '--results', results_json, '--out', out_dir],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        log('run.py: no plots: %s' % e)
        return []
    if proc.returncode != 0:
        log('run.py: no plots: %s' % proc.stderr.strip()[-300:])
        return []
    if proc.stderr.strip():
        log(proc.stderr.strip())
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def plots_section(images):
    if not images:
        return ''
    L = ['## Plots', '', 'Drawn by `bench/plots.py` (gnuplot) from the same run.', '']
    for name in images:
        caption = PLOT_CAPTIONS.get(name, name)
        L += ['### %s' % caption, '', '![%s](img/%s)' % (caption, name), '']
    return '\n'.join(L)


def write_doc(doc, meta, rows, order, failures, results_json=None):
    os.makedirs(os.path.dirname(os.path.abspath(doc)), exist_ok=True)
    images = []
    if results_json:
        images = draw_plots(results_json, os.path.join(os.path.dirname(os.path.abspath(doc)),
                                                       'img'))
    with open(doc, 'w') as f:
        f.write(markdown(meta, rows, order, failures))
        section = plots_section(images)
        if section:
            f.write('\n' + section)


def main():
    ap = argparse.ArgumentParser(description='Run the skproc benchmarks and write the report.')
    ap.add_argument('--build-dir', default='build/default',
                    help='the SCons variant holding bench/<name> (default: build/default)')
    ap.add_argument('--quick', action='store_true',
                    help='2 repetitions and fewer ops: well under a minute')
    ap.add_argument('--reps', type=int, default=0, help='repetitions (default 5, quick 2)')
    ap.add_argument('--only', default='',
                    help='comma list of registry names to run (no Markdown unless --doc)')
    ap.add_argument('--doc', default=None,
                    help='where to write the Markdown report (default: docs/performance.md, '
                         'quick: bench/results/performance.md)')
    ap.add_argument('--json', default=os.path.join(ROOT, 'bench', 'results', 'latest.json'),
                    help='where to write the JSON results')
    ap.add_argument('--from-json', metavar='PATH',
                    help='run nothing: write the Markdown report (--doc, default '
                         'docs/performance.md) again from a saved results file')
    ap.add_argument('--list', action='store_true', help='list the registry and exit')
    args = ap.parse_args()

    if args.list:
        for b in BENCHES:
            print('%-30s %s' % (b['name'], shlex.join(bench_command(b, args.build_dir, False))))
        return 0

    if args.from_json:
        try:
            with open(args.from_json) as f:
                saved = json.load(f)
            rows, order = rows_from_json(saved)
        except (OSError, ValueError, KeyError, IndexError) as e:
            log('run.py: cannot read %s: %s' % (args.from_json, e))
            return 2
        evaluate(rows)
        meta = saved['meta']
        doc = args.doc or default_doc(meta.get('quick'))
        write_doc(doc, meta, rows, order, saved.get('failures', []), args.from_json)
        log('wrote %s from %s' % (shown(doc), shown(args.from_json)))
        return 0

    build_dir = args.build_dir
    if not os.path.isabs(build_dir) and not os.path.isdir(build_dir):
        build_dir = os.path.join(ROOT, build_dir)
    build_dir = os.path.abspath(build_dir)

    only = [n.strip() for n in args.only.split(',') if n.strip()]
    benches = [b for b in BENCHES if not only or b['name'] in only]
    unknown = set(only) - {b['name'] for b in BENCHES}
    if unknown:
        log('run.py: unknown benchmark(s): %s (see --list)' % ', '.join(sorted(unknown)))
        return 2
    # MPI benches exist only when MPI was found: without them, they are skipped.
    skipped = [b for b in benches if b.get('mpirun')
               and not os.access(os.path.join(build_dir, 'bench', b['c']), os.X_OK)]
    if skipped:
        log('run.py: %s skipped: built only when MPI is found' % ', '.join(b['name'] for b in skipped))
        benches = [b for b in benches if b not in skipped]
    missing = [b for b in benches if 'c' in b
               and not os.access(os.path.join(build_dir, 'bench', b['c']), os.X_OK)]
    if missing:
        log('run.py: %s not built in %s: run `scons benches` (or `scons bench`) first'
            % (', '.join(sorted({b['c'] for b in missing})), build_dir))
        return 2

    quick = args.quick
    reps = args.reps if args.reps > 0 else REPS[1 if quick else 0]
    log('skproc benchmarks: %s mode, %d repetitions, programs from %s'
        % ('quick' if quick else 'full', reps, build_dir))
    machine = machine_info()
    loadavg_start = loadavg()
    rows, order, infos, failures = {}, [], {}, []
    t0 = time.monotonic()
    interrupted, rep = None, 0
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for rep in range(1, reps + 1):
            log('repetition %d/%d' % (rep, reps))
            for b in benches:
                cmd = bench_command(b, build_dir, quick)
                timeout = b.get('timeout', (600, 120))[1 if quick else 0]
                run_once(b, cmd, timeout, rows, order, infos, failures, rep)
    except Interrupted as e:
        interrupted = str(e)
        failures.append('interrupted by %s during repetition %d: no report written' % (e, rep))
        log('run.py: interrupted by %s: saving what was measured, no report' % e)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    elapsed = time.monotonic() - t0
    evaluate(rows)

    meta = {'machine': machine, 'quick': quick, 'loadavg_start': loadavg_start,
            'reps': reps, 'elapsed_s': round(elapsed, 1),
            'programs': infos, 'build_dir': build_dir,
            'commands': {b['name']: shlex.join(bench_command(b, build_dir, quick))
                         for b in benches}}
    result = {
        'meta': meta,
        'measurements': [{
            'key': k, 'area': rows[k].area, 'table': rows[k].table, 'name': rows[k].name,
            'short': rows[k].short, 'unit': rows[k].unit, 'median': rows[k].median,
            'min': min(rows[k].reps), 'max': max(rows[k].reps), 'reps': rows[k].reps,
            'baseline': rows[k].baseline, 'ratio': rows[k].ratio,
            'target': target_text(rows[k]) if rows[k].spec else None, 'spec': rows[k].spec,
            'met': rows[k].met, 'details': rows[k].details} for k in order],
        'short_of_target': [k for k in order if rows[k].met is False],
        'failures': failures,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
        json.dump(result, f, indent=1)
        f.write('\n')

    print(text_summary(rows, order))
    doc = args.doc
    if doc is None and not only:
        doc = default_doc(quick)
    if interrupted:
        doc = None
    if doc:
        write_doc(doc, meta, rows, order, failures, args.json)
    log('done in %.1fs: %s%s' % (elapsed, shown(args.json), (', ' + shown(doc)) if doc else ''))
    short = result['short_of_target']
    if short:
        log('short of target: %s' % ', '.join(short))
    for f in failures:
        log('FAILED: %s' % f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
