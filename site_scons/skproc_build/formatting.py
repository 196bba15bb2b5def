# SPDX-License-Identifier: MIT
"""`scons format` and `scons format-check`: clang-format over the C sources."""

import os
import shutil
import subprocess

from SCons.Script import Action

from skproc_build.common import out, top_dir

SKIP_DIRS = ('results', '__pycache__')


def format_files(dirs):
    """Every .c/.h under dirs (relative to the top), sorted."""
    top = top_dir()
    files = []
    for d in dirs:
        for root, subdirs, names in os.walk(os.path.join(top, d)):
            subdirs[:] = sorted(x for x in subdirs if x not in SKIP_DIRS)
            files += [os.path.relpath(os.path.join(root, n), top)
                      for n in sorted(names) if n.endswith(('.c', '.h'))]
    return files


def clang_format_action(args, what, dirs):
    """Run `clang-format ARGS FILES` over dirs; fail with what when it fails."""

    def run(target, source, env):
        if not shutil.which('clang-format'):
            out("skproc: clang-format not found: install it with 'apt-get install clang-format'")
            return 1
        files = format_files(dirs)
        if not files:
            return 0
        rc = subprocess.call(['clang-format'] + args + files, cwd=top_dir())
        if rc != 0:
            out('skproc: %s' % what)
        return 1 if rc else 0

    return Action(run, 'clang-format %s (%s)' % (' '.join(args), ' '.join(dirs)))
