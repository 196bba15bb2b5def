#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Draws the benchmark plots (PNG, with gnuplot) from bench/results/latest.json.

    python3 bench/plots.py [--results bench/results/latest.json] [--out docs/img]

run.py calls it after every run. Each plot is drawn only when its data is in
the results; a missing gnuplot is reported and skipped, never an error of the
benchmark run. Returns the list of PNGs written (relative to --out) on stdout,
one per line.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def measurements(results, prefix):
    return [m for m in results['measurements'] if m['key'].startswith(prefix)]


def detail(m, field):
    """A field of a measurement's per-repetition details (the first that has it)."""
    for d in m.get('details', []):
        if field in d:
            return d[field]
    return None


def gnuplot(script, data_files, out_png):
    """Runs a gnuplot script; data_files maps a name used in the script to rows."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in data_files.items():
            with open(os.path.join(tmp, name), 'w') as f:
                for row in rows:
                    f.write(' '.join(str(v) for v in row) + '\n')
        header = ('set terminal pngcairo size 900,540 font "sans,11"\n'
                  'set output "%s"\nset grid\nset key top left\n' % out_png)
        subprocess.run(['gnuplot'], input=header + script, text=True, cwd=tmp, check=True,
                       capture_output=True)


def plot_start_vs_memory(results, out):
    """Start-up time against the parent's resident memory (fork copies page tables)."""
    series = {'raw': [], 'skproc': [], 'skproc.sup': []}
    huge = {}
    for m in measurements(results, 'start.mem'):
        rest = m['key'][len('start.mem'):]  # "256.raw", "256h.skproc.sup", ...
        size, _, kind = rest.partition('.')
        if size.endswith('h'):
            huge[kind] = (int(size[:-1]), m['median'] / 1000.0)
            continue
        if kind in series:
            series[kind].append((int(size), m['median'] / 1000.0))
    if not any(series.values()):
        return None
    for rows in series.values():
        rows.sort()
    name = 'start_vs_parent_memory.png'
    script = ('set title "Process start against the parent\'s resident memory"\n'
              'set xlabel "memory the parent has touched (MB)"\n'
              'set ylabel "start + result (ms)"\n'
              'plot "raw" using 1:2 with linespoints lw 2 title "raw fork + waitpid + pipe", '
              '"skproc" using 1:2 with linespoints lw 2 title "skproc (no supervisor)", '
              '"sup" using 1:2 with linespoints lw 2 title "skproc with a supervisor (two forks)"')
    data = {'raw': series['raw'], 'skproc': series['skproc'], 'sup': series['skproc.sup']}
    if huge:
        data['huge'] = [(v[0], v[1], k) for k, v in sorted(huge.items())]
        script += (', "huge" using 1:2 with points pt 7 ps 1.5 '
                   'title "the same with the parent\'s memory in huge pages"')
    gnuplot(script + '\n', data, os.path.join(out, name))
    return name


def plot_pool_batch(results, out):
    rows = []
    for m in measurements(results, 'pool.batch.'):
        b = detail(m, 'batch')
        if m['key'].endswith('.auto') or b is None:
            continue
        rows.append((int(b), m['median'] / 1e6))
    if not rows:
        return None
    rows.sort()
    auto = [m for m in measurements(results, 'pool.batch.auto')]
    raw = [m for m in measurements(results, 'pool.map.raw')]
    name = 'pool_vs_batch.png'
    script = ('set title "sk\\\\_pool\\\\_map of 4-byte items against the batch size"\n'
              'set logscale x 2\nset xlabel "items per batch (config.batch)"\n'
              'set ylabel "million items per second"\nset yrange [0:*]\n')
    plots = ['"batch" using 1:2 with linespoints lw 2 title "skproc, fixed batch"']
    if auto:
        script += 'auto = %f\n' % (auto[0]['median'] / 1e6)
        plots.append('auto with lines dt 2 lw 2 title "skproc, automatic batch"')
    if raw:
        script += 'raw = %f\n' % (raw[0]['median'] / 1e6)
        plots.append('raw with lines dt 3 lw 2 title "raw batched pipe pool"')
    gnuplot(script + 'plot ' + ', '.join(plots) + '\n', {'batch': rows}, os.path.join(out, name))
    return name


def plot_pool_workers(results, out):
    rows = []
    for m in measurements(results, 'pool.workers.'):
        w = detail(m, 'workers')
        if w is not None:
            rows.append((int(w), m['median'] / 1e6))
    if not rows:
        return None
    rows.sort()
    name = 'pool_vs_workers.png'
    script = ('set title "sk\\\\_pool\\\\_map of 4-byte items against the number of workers"\n'
              'set xlabel "workers"\nset xtics 1\nset ylabel "million items per second"\n'
              'set yrange [0:*]\nset boxwidth 0.5\nset style fill solid 0.6\n'
              'plot "workers" using 1:2 with boxes title "skproc"\n')
    gnuplot(script, {'workers': rows}, os.path.join(out, name))
    return name


def plot_flow_throughput(results, out):
    """Tasks per second through a 3-step flow: skproc, the raw pipe floor
    and Python's multiprocessing, batched and one task at a time."""
    bars = [('skproc\\nbatches of 64', 'flow.tput.skproc'),
            ('raw pipes\\nbatches of 64', 'flow.tput.raw'),
            ('skproc\\nbatches of 1', 'flow.tput.skproc_unbatched'),
            ('raw pipes\\nbatches of 1', 'flow.tput.raw_unbatched'),
            ('Python\\nmultiprocessing', 'flow.tput.python')]
    medians = {m['key']: m['median'] for m in measurements(results, 'flow.tput.')}
    rows = [(i, medians[key], label) for i, (label, key) in enumerate(bars) if key in medians]
    if not rows:
        return None
    name = 'flow_throughput.png'
    script = ('set title "3-step flow of 64-byte tasks (each step adds 1): tasks per second"\n'
              'set logscale y\nset ylabel "tasks per second (log scale)"\nset yrange [1000:*]\n'
              'set boxwidth 0.6\nset style fill solid 0.6\nset key off\nset bmargin 4\n'
              'set xtics (%s)\n' % ', '.join('"%s" %d' % (label, i) for i, _, label in rows) +
              'plot "tput" using 1:2 with boxes, "tput" using 1:2:(sprintf("%.3gM", $2/1e6)) '
              'with labels offset 0,1\n')
    gnuplot(script, {'tput': [(i, v) for i, v, _ in rows]}, os.path.join(out, name))
    return name


def percentile_rows(m):
    """(percentile, value) pairs from a measurement's details: 'cdf' (the
    0th..100th percentiles) or 'samples' (every trial), whichever it has."""
    cdf = detail(m, 'cdf')  # the 0th, 1st, ..., 100th percentiles
    if isinstance(cdf, list) and len(cdf) > 1:
        step = 100.0 / (len(cdf) - 1)
        return [(i * step, float(v)) for i, v in enumerate(cdf)]
    samples = detail(m, 'samples')
    if isinstance(samples, list) and samples:
        s = sorted(float(x) for x in samples)
        n = len(s)
        return [(100.0 * (i + 0.5) / n, v) for i, v in enumerate(s)]
    return []


def plot_latency(results, out, prefix, title, name, unit_label):
    """A distribution plot (value against percentile) of every measurement
    under prefix that carries percentiles or samples."""
    curves = [(m['name'], percentile_rows(m)) for m in measurements(results, prefix)
              if not m['key'].endswith(('.p99', '.cpu1'))]
    curves = [(n, rows) for n, rows in curves if rows]
    if not curves:
        return None
    data, plots = {}, []
    for i, (label, rows) in enumerate(curves):
        data['c%d' % i] = rows
        plots.append('"c%d" using 1:2 with lines lw 2 title "%s"' % (i, label.replace('"', "'")))
    script = ('set title "%s"\nset xlabel "percentile"\nset ylabel "%s"\n'
              'set logscale y\nset key top left\nset xrange [0:100]\n' % (title, unit_label))
    gnuplot(script + 'plot ' + ', '.join(plots) + '\n', data, os.path.join(out, name))
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--results', default='bench/results/latest.json')
    ap.add_argument('--out', default='docs/img')
    args = ap.parse_args()
    if shutil.which('gnuplot') is None:
        print('plots: gnuplot is not installed, so no plots are drawn; to draw them, install it '
              '(on Debian: apt-get install gnuplot-nox) and run the benchmarks again',
              file=sys.stderr)
        return 0
    with open(args.results) as f:
        results = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    drawn = []
    for draw in (plot_start_vs_memory, plot_pool_batch, plot_pool_workers, plot_flow_throughput):
        name = draw(results, args.out)
        if name:
            drawn.append(name)
    for prefix, title, name, unit in (
            ('msg.rt.', 'Round trip of an 8-byte message (2 CPUs): distribution',
             'latency_rtt.png', 'round trip (us)'),
            ('sup.timeout.median', 'Timeout lateness after the deadline: distribution',
             'timeout_lateness.png', 'lateness (ms)')):
        name = plot_latency(results, args.out, prefix, title, name, unit)
        if name:
            drawn.append(name)
    for name in drawn:
        print(name)
    return 0


if __name__ == '__main__':
    sys.exit(main())
