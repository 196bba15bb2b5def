# SPDX-License-Identifier: MIT
"""The checks on the built library: exported symbols (`scons symbols`) and layers
(`scons layers`, see layers.py). Each is a function returning an exit code, so that
`scons test` runs them too, and an action for its own target."""

import os
import subprocess

from SCons.Script import Action

from skproc_build import layers
from skproc_build.common import out, top_dir


def symbols(lib):
    """Fail when the shared library lib (a path) exports a symbol without the sk_ prefix."""
    res = subprocess.run(['nm', '-D', '--defined-only', lib], capture_output=True, text=True)
    if res.returncode != 0:
        out('skproc: nm failed on %s: %s' % (lib, res.stderr.strip()))
        return 1
    names = [line.split()[-1] for line in res.stdout.splitlines() if line.strip()]
    bad = sorted(n for n in names if not n.startswith('sk_'))
    for n in bad:
        out('skproc: exported without the sk_ prefix: %s' % n)
    out('%s exports %d symbols, %d without the sk_ prefix' % (
        os.path.basename(lib), len(names), len(bad)))
    return 1 if bad else 0


def layer_check(variant):
    """The layer check on the objects of variant (e.g. 'build/default')."""
    return layers.check(top_dir(), variant, out=out)


def symbols_action():
    return Action(lambda target, source, env: symbols(source[0].abspath),
                  'checking exported symbols')


def layers_action(variant):
    return Action(lambda target, source, env: layer_check(variant),
                  'checking layers (%s)' % layers.SCRIPT)
