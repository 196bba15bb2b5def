# SPDX-License-Identifier: MIT
"""The layer check: the library's folders under skproc/ are layers, each using only
the layers below it, with no cycle between files.

It fails when
  - a file under skproc/<layer>/ includes a private header of a higher layer;
  - an object of a lower layer references a symbol defined in a higher layer's
    object (`nm` on the built objects: the "calls upward" rule);
  - files form a cycle, in the graph "A's object references a symbol that B's
    object defines" plus the include edges between the library's .c/.h files;
  - skproc/ holds a folder (or a file) that is not a known layer.

`scons layers` and `scons test` run it on the variant they built. Alone:

    python3 site_scons/skproc_build/layers.py [--build-dir build/default] [-v]

(after `scons lib`; -v names the symbols and include lines behind each arrow).
It imports nothing from SCons, so that both ways run the same code.
"""

import argparse
import os
import re
import subprocess
import sys

# The library's layers, bottom to top. This list is the one place the order lives:
# skproc/SConscript builds libskproc from these folders and nothing else.
LAYERS = ['os', 'codec', 'ipc', 'core', 'pool', 'flow', 'group', 'sched']

# Layers built as separate libraries, each sitting directly above one layer of
# LAYERS: it may use that layer and everything below it, and no layer of LAYERS
# may use it.
SIDE_LAYERS = {'mpi': 'pool'}

SCRIPT = 'site_scons/skproc_build/layers.py'  # this file, from the top of the tree
OBJ_SUFFIX = '.os'  # the shared (-fPIC) objects libskproc.a and libskproc.so are made of
SOURCE_SUFFIXES = ('.c', '.h')

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def may_use(user, used):
    """True when a file in layer `user` may include from / call into layer `used`."""
    if user == used:
        return True
    if user in SIDE_LAYERS:
        if used in SIDE_LAYERS:
            return False
        return LAYERS.index(used) <= LAYERS.index(SIDE_LAYERS[user])
    if used in SIDE_LAYERS:
        return False
    return LAYERS.index(used) < LAYERS.index(user)


def known_layers():
    return LAYERS + sorted(SIDE_LAYERS)


class Report:
    """Violations, one line each, and a count per kind for the summary."""

    def __init__(self):
        self.lines = []
        self.counts = {'unknown': 0, 'include': 0, 'call': 0, 'cycle': 0}

    def add(self, kind, line):
        self.counts[kind] += 1
        self.lines.append(line)


def library_files(src_dir, report):
    """{'core/process.c': 'core', ...} for every .c/.h under skproc/<layer>/."""
    files = {}
    for entry in sorted(os.listdir(src_dir)):
        path = os.path.join(src_dir, entry)
        if entry.startswith('.') or entry == 'SConscript':
            continue
        if not os.path.isdir(path):
            if entry.endswith(SOURCE_SUFFIXES):
                report.add('unknown', 'unknown layer: skproc/%s is outside every layer folder '
                           '(move it into one of: %s)' % (entry, ', '.join(known_layers())))
            continue
        if entry not in LAYERS and entry not in SIDE_LAYERS:
            report.add('unknown', 'unknown layer: skproc/%s/ is not a known layer (known, bottom '
                       'to top: %s; separate libraries: %s); add it to LAYERS in %s'
                       % (entry, ', '.join(LAYERS),
                          ', '.join('%s above %s' % kv for kv in sorted(SIDE_LAYERS.items())),
                          SCRIPT))
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith(SOURCE_SUFFIXES) and os.path.isfile(os.path.join(path, name)):
                files['%s/%s' % (entry, name)] = entry
    return files


def resolve_include(rel, quote, target, src_dir, files):
    """The library file an include names ('core/runtime.h'), or None when it names a
    public or system header. Quoted names are looked up next to the including file
    first, as the compiler does; then under skproc/ (the -Iskproc path)."""
    candidates = []
    if quote == '"':
        candidates.append(os.path.normpath(os.path.join(os.path.dirname(rel), target)))
    candidates.append(os.path.normpath(target))
    for cand in candidates:
        if cand in files:
            return cand
    return None


def include_edges(src_dir, files, report):
    """[(from, to, line number, include text)] between library files, and the
    upward-include violations."""
    edges = []
    for rel, layer in sorted(files.items()):
        with open(os.path.join(src_dir, rel), errors='replace') as f:
            text = f.read()
        for m in INCLUDE_RE.finditer(text):
            quote, target = m.group(1), m.group(2)
            dep = resolve_include(rel, quote, target, src_dir, files)
            if dep is None:
                continue
            lineno = text.count('\n', 0, m.start()) + 1
            spelled = '%s%s%s' % (quote, target, '"' if quote == '"' else '>')
            edges.append((rel, dep, lineno, spelled))
            if not may_use(layer, files[dep]):
                report.add('include', 'includes upward: skproc/%s:%d (%s) includes %s, a private '
                           'header of %s' % (rel, lineno, layer, spelled, files[dep]))
    return edges


def object_symbols(build_dir, sources):
    """{source: (defined names, undefined names)} from one `nm` run over the objects
    built from sources ('core/process.c'); the missing objects, listed."""
    objs = {}
    missing = []
    for src in sources:
        obj = os.path.join(build_dir, 'skproc', os.path.splitext(src)[0] + OBJ_SUFFIX)
        if os.path.isfile(obj):
            objs[obj] = src
        else:
            missing.append(obj)
    table = {src: (set(), set()) for src in objs.values()}
    if not objs:
        return table, missing
    res = subprocess.run(['nm', '-A', '-P'] + sorted(objs), capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError('nm failed: %s' % res.stderr.strip())
    for line in res.stdout.splitlines():
        # POSIX format with -A: "path/to/file.os: name type [value size]"
        head, sep, rest = line.partition(': ')
        if not sep or head not in objs:
            continue
        fields = rest.split()
        if len(fields) < 2:
            continue
        name, kind = fields[0], fields[1]
        defined, undefined = table[objs[head]]
        if kind in ('U', 'w', 'v'):
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return table, missing


def symbol_edges(files, table, report):
    """[(from, to, symbols)] where from's object uses symbols to's object defines,
    and the upward-call violations."""
    owner = {}
    for src in sorted(table):
        for name in table[src][0]:
            owner.setdefault(name, src)
    uses = {}
    for src in sorted(table):
        for name in table[src][1]:
            dep = owner.get(name)
            if dep is not None and dep != src:
                uses.setdefault((src, dep), []).append(name)
    edges = []
    for (src, dep), names in sorted(uses.items()):
        names.sort()
        edges.append((src, dep, names))
        if not may_use(files[src], files[dep]):
            report.add('call', 'calls upward: skproc/%s (%s) uses %s from skproc/%s (%s)'
                       % (src, files[src], ', '.join(names), dep, files[dep]))
    return edges


def strongly_connected(graph):
    """Tarjan's algorithm, iterative: the components with more than one node, or with
    a node that reaches itself, each sorted, in a stable order."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    comp.append(n)
                    if n == node:
                        break
                if len(comp) > 1 or node in graph.get(node, ()):
                    comps.append(sorted(comp))
    return sorted(comps)


def shortest_cycle_through(start, graph, members):
    """The shortest cycle start -> ... -> start inside members (breadth first)."""
    prev = {start: None}
    queue = [start]
    for node in queue:
        for nxt in sorted(graph.get(node, ())):
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return None


def cycles(graph):
    """A few cycles per knot (strongly connected component): shortest first, until
    every file of the knot is on one of them."""
    found = []
    for comp in strongly_connected(graph):
        members = set(comp)
        covered = set()
        while covered != members:
            best = None
            for start in sorted(members - covered):
                cyc = shortest_cycle_through(start, graph, members)
                if cyc and (best is None or len(cyc) < len(best)):
                    best = cyc
            if best is None:
                break
            found.append(best)
            covered.update(best)
    return found


def check(top, build_dir, verbose=False, out=print):
    """Run every rule; print one line per violation and a summary; 0 when clean."""
    src_dir = os.path.join(top, 'skproc')
    if not os.path.isabs(build_dir):
        build_dir = os.path.join(top, build_dir)
    report = Report()
    if not os.path.isdir(src_dir):
        out('layers: %s is missing' % src_dir)
        return 2
    files = library_files(src_dir, report)
    sources = [f for f in files if f.endswith('.c')]
    try:
        table, missing = object_symbols(build_dir, sources)
    except (OSError, RuntimeError) as e:
        out('layers: %s' % e)
        return 2
    # A side layer is built only when what it needs is found (MPI): one with
    # none of its objects in this build is left out of the check, and said.
    for side in sorted(SIDE_LAYERS):
        side_objs = [os.path.join(build_dir, 'skproc', os.path.splitext(f)[0] + OBJ_SUFFIX)
                     for f in sources if files[f] == side]
        if side_objs and all(o in missing for o in side_objs):
            out('layers: %s is not built under %s: left out' % (side, os.path.relpath(build_dir, top)))
            files = {f: layer for f, layer in files.items() if layer != side}
            sources = [f for f in sources if files.get(f) is not None]
            missing = [o for o in missing if o not in side_objs]
    incs = include_edges(src_dir, files, report)
    if missing:
        out('layers: %d object(s) missing under %s, e.g. %s: build them first (`scons lib`)'
            % (len(missing), os.path.relpath(build_dir, top), os.path.relpath(missing[0], top)))
        return 2
    syms = symbol_edges(files, table, report)

    graph = {f: set() for f in files}
    why = {}
    for a, b, lineno, spelled in incs:
        graph[a].add(b)
        why.setdefault((a, b), 'includes %s (line %d)' % (spelled, lineno))
    for a, b, names in syms:
        graph[a].add(b)
        why.setdefault((a, b), 'uses %s' % ', '.join(names))
    for cyc in cycles(graph):
        report.add('cycle', 'cycle: ' + ' -> '.join(cyc))
        if verbose:
            for a, b in zip(cyc, cyc[1:]):
                report.lines.append('    %s -> %s: %s' % (a, b, why[(a, b)]))

    for line in report.lines:
        out(line)
    c = report.counts
    layers_seen = sorted(set(files.values()), key=known_layers().index)
    out('layers: %d files in %d layers (%s): %d unknown, %d upward includes, %d upward calls, '
        '%d cycles' % (len(files), len(layers_seen), ' < '.join(layers_seen), c['unknown'],
                       c['include'], c['call'], c['cycle']))
    if c['cycle'] and not verbose:
        out('layers: `python3 %s -v` names the symbols and includes behind each arrow' % SCRIPT)
    return 1 if any(c.values()) else 0


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description='Check the layers of the skproc library.')
    ap.add_argument('--top', default=os.path.dirname(os.path.dirname(here)),
                    help='the source tree (default: the one holding this script)')
    ap.add_argument('--build-dir', default='build/default',
                    help='the SCons variant holding skproc/<layer>/*%s (default: build/default)'
                    % OBJ_SUFFIX)
    ap.add_argument('-v', '--verbose', action='store_true',
                    help='name the symbols and include lines behind each arrow of a cycle')
    args = ap.parse_args(argv)
    return check(os.path.abspath(args.top), args.build_dir, args.verbose)


if __name__ == '__main__':
    sys.exit(main())
