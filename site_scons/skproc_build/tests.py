# SPDX-License-Identifier: MIT
"""Which files under tests/ are test programs and which are shared helpers, and which
programs `scons test` runs (only=, valgrind=1)."""

import os

from skproc_build.common import fail

SUPPORT = 'support'


def discover(tests_dir):
    """({'test_timer': 'core/test_timer.c', ...}, ['support/fixtures.c', ...]), paths
    relative to tests_dir.

    Programs are tests/test_*.c and tests/<folder>/test_*.c; their names must be
    unique across folders. Helpers, linked into every program, are tests/support/*.c
    and the top-level tests/*.c not named test_*. Any other .c file one folder down
    is an error, so that nothing is silently left out."""
    programs, helpers, strays = {}, [], []

    def add_program(rel):
        name = os.path.splitext(os.path.basename(rel))[0]
        if name in programs:
            fail('two test programs are named %s: tests/%s and tests/%s: rename one'
                 % (name, programs[name], rel))
        programs[name] = rel

    if not os.path.isdir(tests_dir):
        return programs, helpers
    for entry in sorted(os.listdir(tests_dir)):
        path = os.path.join(tests_dir, entry)
        if os.path.isfile(path) and entry.endswith('.c'):
            if entry.startswith('test_'):
                add_program(entry)
            else:
                helpers.append(entry)
        elif os.path.isdir(path) and not entry.startswith(('.', '__')):
            for name in sorted(os.listdir(path)):
                rel = '%s/%s' % (entry, name)
                if not name.endswith('.c') or not os.path.isfile(os.path.join(path, name)):
                    continue
                if entry == SUPPORT:
                    helpers.append(rel)
                elif name.startswith('test_'):
                    add_program(rel)
                else:
                    strays.append(rel)
    if strays:
        fail('tests/%s is neither a test program (test_*.c) nor a helper in tests/%s/: move '
             'or rename it' % (strays[0], SUPPORT))
    return programs, helpers


def discover_cxx(tests_dir, c_programs):
    """{'test_typed_cpp': 'core/test_typed_cpp.cpp', ...}: the C++ test programs,
    tests/<folder>/test_*.cpp, relative to tests_dir. They link the library only (not
    the C helpers), and their names must not clash with the C programs'."""
    programs = {}
    if not os.path.isdir(tests_dir):
        return programs
    for entry in sorted(os.listdir(tests_dir)):
        path = os.path.join(tests_dir, entry)
        if not os.path.isdir(path) or entry.startswith(('.', '__')) or entry == SUPPORT:
            continue
        for name in sorted(os.listdir(path)):
            if name.startswith('test_') and name.endswith('.cpp'):
                key = os.path.splitext(name)[0]
                if key in c_programs or key in programs:
                    fail('two test programs are named %s: rename tests/%s/%s' % (key, entry, name))
                programs[key] = '%s/%s' % (entry, name)
    return programs


def select(programs, only, valgrind, valgrind_tests):
    """The program names `scons test` runs, honouring only= and valgrind=1."""

    def resolve(names, what):
        picked = []
        for n in names:
            key = n if n.startswith('test_') else 'test_' + n
            if key not in programs:
                fail('%s names %r, but there is no test program %s (tests/%s.c or '
                     'tests/*/%s.c)' % (what, n, key, key, key))
            if key not in picked:
                picked.append(key)
        return picked

    names = sorted(programs)
    if only:
        names = resolve(only, 'only=')
    if valgrind:
        allowed = resolve(valgrind_tests, 'VALGRIND_TESTS')
        names = [n for n in names if n in allowed]
    return names
