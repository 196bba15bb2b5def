# SPDX-License-Identifier: MIT
"""Small helpers shared by the build modules: output, stopping the build, the version."""

import os
import re
import sys

from SCons.Script import Exit, File


def out(text=''):
    """One line on stdout, flushed (test output interleaves with child processes)."""
    sys.stdout.write(text + '\n')
    sys.stdout.flush()


def fail(msg):
    """Stop the build with one line on stderr."""
    sys.stderr.write('skproc: %s\n' % msg)
    Exit(2)


def truthy(value):
    return value not in ('', '0', 'no', 'false')


def top_dir():
    """The absolute path of the source tree (where SConstruct lives)."""
    return File('#SConstruct').dir.abspath


def version_from_header(header='#include/skproc.h'):
    """'X.Y.Z' from the SKPROC_VERSION_* macros of the public header."""
    path = File(header).abspath
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        fail('%s is missing' % os.path.relpath(path, top_dir()))
    parts = []
    for part in ('MAJOR', 'MINOR', 'PATCH'):
        m = re.search(r'^\s*#\s*define\s+SKPROC_VERSION_%s\s+(\d+)' % part, text, re.M)
        if not m:
            fail('include/skproc.h does not define SKPROC_VERSION_%s' % part)
        parts.append(m.group(1))
    return '.'.join(parts)
