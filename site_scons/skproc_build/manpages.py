# SPDX-License-Identifier: MIT
"""Section 3 man pages for the public calls, made from include/skproc.h,
include/skproc/pool.h, include/skproc/flow.h, include/skproc/spawn.h, include/skproc/group.h and
include/skproc/sched.h: each page shows the prototypes and types it covers, and as
its text the comment written right above each of them in the header (the header
reads like documentation, so the pages say what it says). man/*.3 are committed;
`scons man` writes them again, and `scons test` fails when they differ from what
the headers would give (or when a public call is on no page).

Alone: python3 site_scons/skproc_build/manpages.py [--check] [--top DIR]
It imports nothing from SCons, so that both ways run the same code.
"""

import argparse
import os
import re
import sys

HEADERS = ['include/skproc.h', 'include/skproc/pool.h', 'include/skproc/flow.h',
           'include/skproc/spawn.h', 'include/skproc/group.h', 'include/skproc/sched.h',
           'include/skproc/mpi.h']
MAN_DIR = 'man'

# (page, one-line summary, functions, types, overview). The first function of a page
# is the page; the others get a one-line page of their own (.so) pointing at it.
# types are typedef names (or 'codes' for the anonymous enum of return codes);
# overview names a header whose opening comment starts the page's text.
PAGES = [
    ('skproc', 'object-oriented multi-process programming for C', [], [], 'include/skproc.h'),
    ('sk_init', 'prepare a process handle for a class', ['sk_init'],
     ['sk_process', 'sk_hook', 'sk_class', 'sk_timeouts', 'sk_config'], None),
    ('sk_start', 'start a process, and what is known of it while it runs',
     ['sk_start', 'sk_alive', 'sk_current_run', 'sk_pid'], [], None),
    ('sk_wait', 'wait until a process is finished for good', ['sk_wait'], [], None),
    ('sk_wait_ready', 'wait until a process is ready, and declare it ready from a hook',
     ['sk_wait_ready', 'sk_ready'], ['sk_ready_mode'], None),
    ('sk_stop', 'ask a process to end its loop', ['sk_stop'], [], None),
    ('sk_kill', 'end a process at once', ['sk_kill'], [], None),
    ('sk_release', 'free what a process handle holds', ['sk_release'], [], None),
    ('sk_result', "read a process's result", ['sk_result'], [], None),
    ('sk_return', 'publish a result from a hook', ['sk_return'], [], None),
    ('sk_fail', 'record why a hook fails', ['sk_fail'], [], None),
    ('sk_tell', 'send a message to the other side', ['sk_tell', 'sk_tell_wait', 'sk_tell_image'],
     [], None),
    ('sk_listen', 'receive a message from the other side',
     ['sk_listen', 'sk_listen_message', 'sk_message_format', 'sk_message_unpack',
      'sk_message_image', 'sk_message_free', 'sk_image_pack', 'sk_image_unpack'],
     ['sk_message'], None),
    ('sk_fd', 'a file descriptor for poll loops over processes', ['sk_fd'], [], None),
    ('sk_error_of', 'the typed error that ended a process',
     ['sk_error_of', 'sk_error_is', 'sk_error_name', 'sk_error_format', 'sk_section_name'],
     ['sk_section', 'sk_error_kind', 'sk_error'], None),
    ('sk_attempts', 'what recovering from failures cost a process',
     ['sk_attempts', 'sk_restarts', 'sk_spent_error_count', 'sk_spent_errors_dropped',
      'sk_spent_error'], [], None),
    ('sk_event_name', 'events of processes and pool workers, for logs and metrics',
     ['sk_event_name'], ['sk_event_kind', 'sk_event#struct', 'sk_event_fn'], None),
    ('sk_strerror', 'the name of a return code', ['sk_strerror'], ['codes'], None),
    ('sk_last_error_message', 'why the last refused call refused',
     ['sk_last_error_message'], [], None),
    ('sk_timer_of', 'section timers of a process',
     ['sk_timer_of', 'sk_timer_count', 'sk_timer_total', 'sk_timer_mean', 'sk_timer_median',
      'sk_timer_min', 'sk_timer_max', 'sk_timer_stdev', 'sk_timer_variance', 'sk_timer_last',
      'sk_timer_percentile'], ['sk_timer'], None),
    ('sk_pool_create', 'create, close, join and terminate a pool of workers',
     ['sk_pool_create', 'sk_pool_close', 'sk_pool_join', 'sk_pool_terminate',
      'sk_pool_counters_of'], ['sk_pool', 'sk_pool_config', 'sk_pool_counters'],
     'include/skproc/pool.h'),
    ('sk_pool_map', 'apply a job to many items with a pool',
     ['sk_pool_map', 'sk_pool_async_map', 'sk_pool_imap', 'sk_pool_unordered_imap',
      'sk_pool_imap_stream', 'sk_pool_next', 'sk_pool_ready', 'sk_pool_wait', 'sk_pool_get',
      'sk_pool_error', 'sk_pool_item_error', 'sk_pool_retried', 'sk_pool_call_free'],
     ['sk_pool_call', 'sk_pool_fn', 'sk_pool_star_fn', 'sk_pool_range_fn', 'sk_pool_job',
      'sk_pool_producer'],
     None),
    ('sk_pool_submit', 'run one item as a call, cancel a call, stop or kill a class item',
     ['sk_pool_submit', 'sk_pool_cancel', 'sk_pool_stop_item', 'sk_pool_kill_item'], [], None),
    ('sk_pool_fd', 'wait on a pool or a call from an event loop',
     ['sk_pool_fd', 'sk_pool_call_fd'], [], None),
    ('sk_pool_alloc', 'zero-copy arrays shared with the workers of a pool',
     ['sk_pool_alloc', 'sk_pool_free'], [], None),
    ('sk_pool_release', 'free a pool', ['sk_pool_release'], [], None),
    ('sk_flow_create', 'create, start, end and release a flow of process groups',
     ['sk_flow_create', 'sk_flow_add', 'sk_flow_start', 'sk_flow_close', 'sk_flow_wait',
      'sk_flow_stop', 'sk_flow_release', 'sk_flow_error', 'sk_flow_session_dir'],
     ['sk_flow', 'sk_flow_config', 'sk_flow_result'], 'include/skproc/flow.h'),
    ('sk_step_init', 'define a step of a flow, and the calls its hooks make',
     ['sk_step_init', 'sk_step_fail', 'sk_task_fail', 'sk_step_finish', 'sk_step_error',
      'sk_step_process', 'sk_step_index', 'sk_step_session_dir'],
     ['sk_step', 'sk_task', 'sk_step_class', 'sk_step_timeouts', 'sk_step_config',
      'sk_step#struct'], None),
    ('sk_flow_submit', 'put tasks into a flow and take them out',
     ['sk_flow_submit', 'sk_flow_submit_many', 'sk_flow_collect', 'sk_flow_collect_many',
      'sk_flow_call', 'sk_flow_fd'], [], None),
    ('sk_flow_payload_alloc', 'payloads that every step of a flow reaches in place',
     ['sk_flow_payload_alloc', 'sk_flow_payload', 'sk_flow_payload_free', 'sk_step_payload'],
     ['sk_payload'], None),
    ('sk_flow_metrics_read', "a snapshot of a flow's metrics",
     ['sk_flow_metrics_read', 'sk_flow_metrics_free'],
     ['sk_flow_step_metrics', 'sk_flow_metrics'], None),
    ('sk_flow_metrics_prometheus', "export a flow's metrics to Prometheus or StatsD",
     ['sk_flow_metrics_prometheus', 'sk_statsd_open', 'sk_statsd_send', 'sk_statsd_close'],
     ['sk_statsd'], None),
    ('sk_spawn_init', 'a process that runs an external program',
     ['sk_spawn_init', 'sk_spawn_status'],
     ['sk_stdio_mode', 'sk_stdio', 'sk_env_mode', 'sk_spawn_rlimit', 'sk_spawn_config'],
     'include/skproc/spawn.h'),
    ('sk_spawn_read', "read and write a spawned program's pipes",
     ['sk_spawn_read', 'sk_spawn_read_line', 'sk_spawn_write', 'sk_spawn_close_stdin',
      'sk_spawn_communicate', 'sk_spawn_fd'], [], None),
    ('sk_group_create', 'a supervision tree: children restarted by a strategy',
     ['sk_group_create', 'sk_group_add', 'sk_group_remove', 'sk_group_start', 'sk_group_stop',
      'sk_group_wait', 'sk_group_release'],
     ['sk_group_strategy', 'sk_restart_type', 'sk_group_child', 'sk_group_config'],
     'include/skproc/group.h'),
    ('sk_group_state_read', "read a group's state, failures and events",
     ['sk_group_state_read', 'sk_group_state_free', 'sk_group_pid', 'sk_group_fd',
      'sk_group_error_of', 'sk_group_event_name'],
     ['sk_group_child_state', 'sk_group_child_info', 'sk_group_run_state', 'sk_group_state',
      'sk_group_failure', 'sk_group_error', 'sk_group_event_kind', 'sk_group_event',
      'sk_group_event_fn'], None),
    ('sk_mpi_start', "the pool's map calls on the workers of MPI ranks (skproc-mpi)",
     ['sk_mpi_start', 'sk_mpi_stop', 'sk_mpi_register_job', 'sk_mpi_rank', 'sk_mpi_size',
      'sk_mpi_resumed'], ['sk_mpi_config'], 'include/skproc/mpi.h'),
    ('sk_cond_parse', 'start conditions as text: parse, write, compare, free',
     ['sk_cond_parse', 'sk_cond_format', 'sk_cond_equal', 'sk_cond_free'],
     ['sk_cond', 'sk_cond_parse_error'], 'include/skproc/sched.h'),
    ('sk_cond_true', 'build start conditions from C',
     ['sk_cond_true', 'sk_cond_false', 'sk_cond_every', 'sk_cond_periodic', 'sk_cond_time_of',
      'sk_cond_time_of_day', 'sk_cond_time_of_week', 'sk_cond_after_task', 'sk_cond_after_all',
      'sk_cond_after_any', 'sk_cond_cron', 'sk_cond_user', 'sk_cond_and', 'sk_cond_or',
      'sk_cond_not'],
     ['sk_cond_unit', 'sk_weekday', 'sk_cond_span', 'sk_cond_point', 'sk_cond_window',
      'sk_cond_outcome'], None),
    ('sk_cond_eval', "evaluate a start condition, and find when its value next changes",
     ['sk_cond_eval', 'sk_cond_next_change', 'sk_cond_now'],
     ['sk_cond_log_fn', 'sk_cond_user_fn', 'sk_cond_user_def', 'sk_cond_ctx'], None),
    ('sk_sched_create', 'a scheduling session: tasks started when their conditions hold',
     ['sk_sched_create', 'sk_sched_release', 'sk_sched_add', 'sk_sched_remove',
      'sk_sched_run_task', 'sk_sched_condition', 'sk_sched_log'],
     ['sk_sched', 'sk_task_mode', 'sk_overlap', 'sk_missed', 'sk_task_fn', 'sk_sched_task',
      'sk_on_exists', 'sk_log_kind', 'sk_clock_fn', 'sk_sched_config'], None),
    ('sk_sched_run', 'run a session: cycles, waiting, an event loop, shutting down',
     ['sk_sched_run', 'sk_sched_step', 'sk_sched_fd', 'sk_sched_next_wake', 'sk_sched_join',
      'sk_sched_shutdown'], [], None),
    ('sk_sched_param', "parameters of a session's tasks, and reading them in a task",
     ['sk_sched_param', 'sk_sched_param_fn', 'sk_task_param', 'sk_task_param_image'],
     ['sk_param_kind', 'sk_param', 'sk_param_fn'], None),
    ('sk_task_return', "what a task's code calls: its return value, stopping, its run",
     ['sk_task_return', 'sk_task_return_image', 'sk_task_stopping', 'sk_task_run_name',
      'sk_task_run_of'], ['sk_task_run'], None),
    ('sk_run_log_open', "read a scheduler's run log: runs of a task, the latest, counts",
     ['sk_run_log_open', 'sk_run_log_close', 'sk_run_log_runs', 'sk_run_log_last',
      'sk_run_log_count'],
     ['sk_run_log', 'sk_run_record', 'sk_run_fn', 'sk_run_outcome'], None),
    ('sk_sched_load', 'load tasks from shared objects', ['sk_sched_load'],
     ['sk_sched_register_fn'], None),
    ('sk_version', 'the version of the library at run time',
     ['sk_version', 'sk_version_number'], [], None),
]


class Item:
    def __init__(self, kind, text, first, last, name=None):
        self.kind, self.text, self.first, self.last, self.name = kind, text, first, last, name
        self.doc = []  # comments: the one right above, then trailing ones


def _strip_attributes(text):
    while '__attribute__' in text:
        i = text.index('__attribute__')
        j = text.index('(', i)
        depth = 0
        for k in range(j, len(text)):
            depth += {'(': 1, ')': -1}.get(text[k], 0)
            if depth == 0:
                break
        text = text[:i] + text[k + 1:]
    return text


def _decl_name(text):
    flat = ' '.join(text.split())
    if flat.startswith('enum {'):
        return 'codes', 'type'
    m = re.match(r'typedef [^(]*\(\s*\*\s*(\w+)\s*\)', flat)
    if m:
        return m.group(1), 'type'
    if flat.startswith('typedef') or flat.startswith('struct'):
        body = re.sub(r'\{.*\}', '{}', flat)
        if flat.startswith('struct') and '{' in flat:
            return re.match(r'struct (\w+)', flat).group(1) + '#struct', 'type'
        return re.findall(r'\w+', body)[-1], 'type'
    m = re.search(r'(\w+)\s*\(', flat)
    return (m.group(1), 'function') if m else (None, 'other')


def parse(text):
    """[Item] for the comments and the declarations of a header, in order."""
    lines = []
    cont = False
    for line in text.split('\n'):
        skip = cont or line.lstrip().startswith('#') or line.strip() in ('extern "C" {', '}')
        cont = skip and line.rstrip().endswith('\\')
        lines.append('' if skip else line)
    src = '\n'.join(lines)
    items, i, depth, start = [], 0, 0, None
    buf = []
    line_of = lambda pos: src.count('\n', 0, pos) + 1
    while i < len(src):
        if src.startswith('/*', i):
            j = src.index('*/', i) + 2
            if depth or buf and ''.join(buf).strip():
                buf.append(src[i:j])
            else:
                items.append(Item('comment', src[i:j], line_of(i), line_of(j)))
            i = j
            continue
        c = src[i]
        if not buf or not ''.join(buf).strip():
            if not c.isspace():
                start = i
                buf = []
        buf.append(c)
        if c == '{':
            depth += 1
        elif c == '}':
            depth -= 1
        elif c == ';' and depth == 0:
            text_ = _strip_attributes(''.join(buf).strip())
            name, kind = _decl_name(text_)
            items.append(Item(kind, text_, line_of(start), line_of(i), name))
            buf = []
        i += 1
    # Attach comments: the block ending on the line right above, and one starting
    # on the line the declaration ends.
    for n, it in enumerate(items):
        if it.kind == 'comment':
            continue
        if n > 0 and items[n - 1].kind == 'comment' and items[n - 1].last == it.first - 1:
            it.doc.append(items[n - 1].text)
        if n + 1 < len(items) and items[n + 1].kind == 'comment' and \
                items[n + 1].first == it.last:
            it.doc.append(items[n + 1].text)
    return items


def comment_lines(comment):
    body = comment[2:-2]
    out = []
    for line in body.split('\n'):
        line = re.sub(r'^\s*\* ?', '', line) if line.strip().startswith('*') else line.strip()
        out.append(line.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def esc(text):
    text = text.replace('\\', '\\e')
    if text.startswith(('.', "'")):
        text = '\\&' + text
    return text


def code(text):
    return esc(text).replace('-', '\\-')


def roff_text(lines):
    """Comment lines as roff: indented lines (code, tables) kept as they are."""
    out, pre = [], False
    for line in lines:
        indented = line.startswith('  ')
        if not line.strip():
            if pre:
                out += ['.fi', '.RE']
                pre = False
            out.append('.PP')
            continue
        if indented and not pre:
            out += ['.RS 4', '.nf']
            pre = True
        elif not indented and pre:
            out += ['.fi', '.RE']
            pre = False
        out.append(code(line) if pre else esc(line))
    if pre:
        out += ['.fi', '.RE']
    return out


def as_comment(lines):
    """Comment lines as one C block comment, as in the header."""
    lines = [l for l in lines]
    if not lines:
        return []
    if len(lines) == 1:
        return ['/* %s */' % lines[0]]
    body = ['/* ' + lines[0]] + [' * ' + l if l else ' *' for l in lines[1:]]
    return body[:-1] + [body[-1] + ' */']


def wrap(proto, width=78):
    """A prototype on lines of at most width, continued under its opening parenthesis."""
    if len(proto) <= width or '(' not in proto:
        return [proto]
    indent = ' ' * (proto.index('(') + 1)
    lines, cur = [], ''
    for part in re.split(r'(?<=,) ', proto):
        if cur and len(cur) + 1 + len(part) > width:
            lines.append(cur)
            cur = indent + part
        else:
            cur = cur + ' ' + part if cur else part
    return lines + [cur]


def collect(top):
    decls, overviews = {}, {}
    for h in HEADERS:
        with open(os.path.join(top, h)) as f:
            items = parse(f.read())
        # The header's opening comment, after its SPDX line.
        first = next((it for it in items if it.kind == 'comment' and
                      not re.fullmatch(r'/\*\s*SPDX-License-Identifier:[^*]*\*/', it.text)),
                     None)
        overviews[h] = comment_lines(first.text) if first else []
        for it in items:
            if it.name:
                decls.setdefault(it.name, it)
    return decls, overviews


def render(page, summary, funcs, types, overview, decls, overviews, version):
    names = funcs or [page]
    date = 'skproc %s' % version
    out = ['.\\" SPDX-License-Identifier: MIT',
           '.\\" Made by site_scons/skproc_build/manpages.py from the comments of %s: edit'
           % ' and '.join(HEADERS),
           '.\\" those and run `scons man`.',
           '.TH %s 3 "" "%s" "skproc manual"' % (page.upper(), date),
           '.SH NAME',
           '%s \\- %s' % (', '.join(names), esc(summary)),
           '.SH SYNOPSIS', '.nf', '.B #include <skproc.h>']
    mpi = overview == 'include/skproc/mpi.h'  # skproc-mpi: its own header and library
    if mpi:
        out.append('.B #include <skproc/mpi.h>')
    if page == 'sk_version':
        out += ['.PP', '#define SKPROC_VERSION_MAJOR %s' % version.split('.')[0],
                '#define SKPROC_VERSION_MINOR %s' % version.split('.')[1],
                '#define SKPROC_VERSION_PATCH %s' % version.split('.')[2],
                '#define SKPROC_VERSION_NUMBER (MAJOR * 10000 + MINOR * 100 + PATCH)']
    for f in funcs:
        out += ['.PP'] + ['.B "%s"' % code(l).replace('"', '\\(dq')
                          for l in wrap(' '.join(decls[f].text.split()).replace(' ;', ';'))]
    if mpi:
        out += ['.fi', '.PP', 'Link with', '.I -lskproc-mpi',
                '(instead of -lskproc: it contains it) and MPI, or use',
                '.BR "pkg-config --cflags --libs skproc-mpi" ;',
                'built only where MPI was found.']
    else:
        out += ['.fi', '.PP', 'Link with', '.IR -lskproc ,',
                'or use', '.BR "pkg-config --cflags --libs skproc" ,',
                'or the CMake target', '.BR skproc::skproc .']
    out.append('.SH DESCRIPTION')
    if overview:
        out += roff_text(overviews[overview])
    for f in funcs:
        doc = [l for c in decls[f].doc for l in comment_lines(c)]
        out += ['.TP', '.BR %s ()' % f] + (roff_text(doc) if doc else ['See above.'])
    if types:
        out += ['.SH DATA TYPES', '.nf']
        for t in types:
            it = decls.get(t) or decls[t + '#struct']
            doc = [l for c in it.doc for l in comment_lines(c)]
            out += ['.PP'] + [code(l) for l in as_comment(doc)]
            out += [code(l) for l in it.text.split('\n')]
        out.append('.fi')
        if 'sk_process' in types or 'sk_class' in types or 'sk_config' in types or \
                'sk_pool_job' in types or 'sk_pool_config' in types or \
                'sk_step_config' in types or 'sk_flow_config' in types:
            out += ['.PP', 'The reserved members keep room for later versions without an ABI',
                    'break: leave them zero (designated initializers, a static table or',
                    '.BR memset (3)).']
    out += ['.SH RETURN VALUE',
            'Every call that returns an int returns SK_OK (0) on success and a negative',
            'SK_E* code on failure, unless its description says otherwise;',
            '.BR sk_strerror (3)',
            'names the code.',
            '.SH SEE ALSO']
    others = ['skproc'] + [p[0] for p in PAGES if p[0] not in ('skproc', page)]
    out.append(',\n'.join('.BR %s (3)' % o for o in others))
    out.append('.PP')
    out.append('docs/ in the skproc sources, which this page does not replace.')
    return '\n'.join(out) + '\n'


def pages(top, version):
    """{file name: text} of every page and link."""
    decls, overviews = collect(top)
    files = {}
    covered = set()
    for page, summary, funcs, types, overview in PAGES:
        missing = [f for f in funcs if f not in decls] + \
                  [t for t in types if t not in decls and t + '#struct' not in decls]
        if missing:
            raise ValueError('manpages: %s not declared in %s' % (', '.join(missing),
                                                                  ' or '.join(HEADERS)))
        files[page + '.3'] = render(page, summary, funcs, types, overview, decls, overviews,
                                    version)
        for f in funcs[1:]:
            files[f + '.3'] = '.\\" SPDX-License-Identifier: MIT\n.so man3/%s.3\n' % page
        covered.update(funcs)
    public = sorted(n for n, it in decls.items() if it.kind == 'function')
    left = [n for n in public if n not in covered]
    if left:
        raise ValueError('manpages: on no page (add them to PAGES in %s): %s'
                         % ('site_scons/skproc_build/manpages.py', ', '.join(left)))
    return files


def version_of(top):
    with open(os.path.join(top, 'include/skproc.h')) as f:
        text = f.read()
    return '.'.join(re.search(r'#\s*define\s+SKPROC_VERSION_%s\s+(\d+)' % p, text).group(1)
                    for p in ('MAJOR', 'MINOR', 'PATCH'))


def run(top, version, check, out=print):
    try:
        want = pages(top, version)
    except ValueError as e:
        out(str(e))
        return 1
    mdir = os.path.join(top, MAN_DIR)
    have = sorted(n for n in os.listdir(mdir) if n.endswith('.3')) if os.path.isdir(mdir) else []
    stale = [n for n in sorted(want) if not os.path.isfile(os.path.join(mdir, n))
             or open(os.path.join(mdir, n)).read() != want[n]]
    extra = [n for n in have if n not in want]
    if check:
        for n in stale:
            out('manpages: man/%s is stale: run `scons man`' % n)
        for n in extra:
            out('manpages: man/%s is made by nothing: remove it or run `scons man`' % n)
        out('manpages: %d pages and links, %d stale, %d extra' % (len(want), len(stale),
                                                                  len(extra)))
        return 1 if stale or extra else 0
    os.makedirs(mdir, exist_ok=True)
    for n in stale:
        with open(os.path.join(mdir, n), 'w') as f:
            f.write(want[n])
    for n in extra:
        os.remove(os.path.join(mdir, n))
    out('manpages: %d written, %d removed, %d in man/' % (len(stale), len(extra), len(want)))
    return 0


def write_action(version):
    from SCons.Script import Action

    from skproc_build.common import out, top_dir
    return Action(lambda target, source, env: run(top_dir(), version, False, out),
                  'writing man/*.3 from %s' % ' and '.join(HEADERS))


def check(version):
    from skproc_build.common import out, top_dir
    return run(top_dir(), version, True, out)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description='Write or check skproc man pages.')
    ap.add_argument('--top', default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument('--check', action='store_true', help='fail when man/ is stale')
    args = ap.parse_args(argv)
    return run(args.top, version_of(args.top), args.check)


if __name__ == '__main__':
    sys.exit(main())
