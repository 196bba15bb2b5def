# SPDX-License-Identifier: MIT
"""Running programs from the build: the test runner behind `scons test` (with its
closing "N passed, N failed" line, which CI reads), and the actions behind
`scons demo` and `scons bench`."""

import os
import shutil
import signal
import subprocess
import sys
import time

from SCons.Script import Action

from skproc_build.common import out, top_dir


class Settings:
    """How `scons test` runs programs: the timeout, valgrind, sanitizers."""

    def __init__(self, timeout, valgrind_cmd, valgrind, sanitize):
        self.timeout = timeout
        self.valgrind_cmd = list(valgrind_cmd)
        self.valgrind = valgrind
        self.sanitize = sanitize
        self.prefixes = {}  # test name -> the command it runs under (mpirun ... -n 3)


def run_env(settings):
    """The environment programs run with: the caller's, plus sanitizer settings."""
    e = dict(os.environ)
    e['CMOCKA_MESSAGE_OUTPUT'] = 'stdout'
    if settings.sanitize:
        # The caller's settings come last so that they win.
        for name, ours in (('ASAN_OPTIONS', 'detect_leaks=1:abort_on_error=1'),
                           ('UBSAN_OPTIONS', 'print_stacktrace=1:halt_on_error=1')):
            e[name] = ours + (':' + os.environ[name] if os.environ.get(name) else '')
    return e


def signame(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


def describe(rc, settings):
    if rc == 99 and settings.valgrind:
        return 'FAIL (valgrind found errors, exit 99)'
    if rc == 124:
        return 'TIMEOUT after %ds' % settings.timeout
    if rc == 137:
        return 'TIMEOUT after %ds (killed)' % settings.timeout
    if rc < 0:
        return 'FAIL (signal %d, %s)' % (-rc, signame(-rc))
    if rc > 128:
        return 'FAIL (exit %d, maybe signal %s)' % (rc, signame(rc - 128))
    return 'FAIL (exit %d)' % rc


def _banner(title):
    out('=' * 72)
    out('== %s' % title)
    out('=' * 72)
    sys.stderr.flush()


def test_action(programs, names, checks, settings, variant):
    """The action of `scons test`: run each check (name, function returning an exit
    code), then each test program in names (programs: name -> program nodes); print
    one line per failure and "N passed, N failed"; fail when anything failed."""

    def run(target, source, env):
        if settings.valgrind:
            if not shutil.which('valgrind'):
                out("skproc: valgrind not found: install it with 'apt-get install valgrind'")
                return 1
            if not names:
                out('skproc: VALGRIND_TESTS (top of SConstruct) selects no test program')
        renv = run_env(settings)
        results = []
        for name, check in checks:
            _banner('%s (check)' % name)
            start = time.monotonic()
            rc = check()
            status = 'PASS' if rc == 0 else 'FAIL (exit %d)' % rc
            out('-- %s: %s (%.1fs)' % (name, status, time.monotonic() - start))
            results.append((name, rc, status))
        for name in names:
            prog = programs[name][0].abspath
            cmd = ['timeout', '--kill-after=10', str(settings.timeout)]
            cmd += (settings.valgrind_cmd if settings.valgrind else [])
            cmd += settings.prefixes.get(name, []) + [prog]
            _banner('%s%s' % (name, ' (valgrind)' if settings.valgrind else ''))
            start = time.monotonic()
            rc = subprocess.call(cmd, env=renv, cwd=top_dir())
            took = time.monotonic() - start
            status = 'PASS' if rc == 0 else describe(rc, settings)
            out('-- %s: %s (%.1fs)' % (name, status, took))
            results.append((name, rc, status))
        failed = [r for r in results if r[1] != 0]
        out('=' * 72)
        for name, _, status in failed:
            out('failed: %s: %s' % (name, status))
        out('%d passed, %d failed' % (len(results) - len(failed), len(failed)))
        return 1 if failed else 0

    what = '%d check(s) and %d test program(s) from %s%s' % (
        len(checks), len(names), variant, ' under valgrind' if settings.valgrind else '')
    return Action(run, 'running %s' % what)


def command_action(cmd, what, settings):
    """An action that runs cmd (a list) from the top directory and fails when it fails."""

    def run(target, source, env):
        sys.stdout.flush()
        rc = subprocess.call(cmd, env=run_env(settings), cwd=top_dir())
        if rc != 0:
            out('skproc: %s failed: %s' % (what, describe(rc, settings)))
        return 1 if rc else 0

    return Action(run, 'running %s' % ' '.join(cmd))
