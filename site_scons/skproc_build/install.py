# SPDX-License-Identifier: MIT
"""Install paths (PREFIX, LIBDIR, INCLUDEDIR, MANDIR, DESTDIR) and the writers of the
files made from templates at install time: skproc.pc and the CMake package."""

import os
import shutil
import subprocess

from SCons.Script import Action, Value


def dest(opts, path):
    """path as installed: under DESTDIR when one is given."""
    return opts.destdir + path if opts.destdir else path


def pc_path(prefix, path):
    """Express path relative to the pkg-config prefix variable when possible."""
    if path == prefix:
        return '${prefix}'
    if path.startswith(prefix.rstrip('/') + '/'):
        return '${prefix}' + path[len(prefix.rstrip('/')):]
    return path


def has_pc(name):
    """True when pkg-config knows the package name (e.g. Debian's libtpl-dev ships
    libtpl.pc); False also without pkg-config."""
    if not shutil.which('pkg-config'):
        return False
    return subprocess.call(['pkg-config', '--exists', name]) == 0


# Private dependencies that ship a .pc file on Debian: library name -> package name.
PC_PACKAGES = {'tpl': 'libtpl', 'sqlite3': 'sqlite3'}


def pc_substitutions(opts, version, libs):
    """tpl and sqlite3 go to Requires.private when their .pc exists (libtpl.pc,
    sqlite3.pc), so that `pkg-config --static` takes their flags from there; otherwise
    -ltpl, -lsqlite3 stay in Libs.private (a Requires.private naming a missing .pc would
    make every skproc query fail)."""
    requires = []
    private = list(libs)
    for lib, package in PC_PACKAGES.items():
        if lib in private and has_pc(package):
            private.remove(lib)
            requires.append(package)
    return {
        '@PREFIX@': opts.prefix,
        '@LIBDIR@': pc_path(opts.prefix, opts.libdir),
        '@INCLUDEDIR@': pc_path(opts.prefix, opts.includedir),
        '@VERSION@': version,
        '@REQUIRES_PRIVATE@': ' '.join(requires),
        '@LIBS_PRIVATE@': ' '.join('-l' + lib for lib in private),
    }


def cmake_substitutions(opts, version):
    """The @...@ names of cmake/*.cmake.in. The package finds the prefix from its own
    place (LIBDIR/cmake/skproc), so an installed tree may be moved; a LIBDIR or
    INCLUDEDIR outside PREFIX is named absolutely."""
    cmake_dir = os.path.join(opts.libdir, 'cmake', 'skproc')

    def under_prefix(path):
        rel = os.path.relpath(path, opts.prefix)
        if rel == '.':
            return '${_skproc_prefix}'
        if rel.startswith('..'):
            return path
        return '${_skproc_prefix}/' + rel

    return {
        '@REL_PREFIX@': os.path.relpath(opts.prefix, cmake_dir),
        '@CMAKE_LIBDIR@': under_prefix(opts.libdir),
        '@CMAKE_INCLUDEDIR@': under_prefix(opts.includedir),
        '@VERSION@': version,
        '@MAJOR@': version.split('.')[0],
    }


def pkg_config(env, target, template, subst):
    """target (skproc.pc, a CMake file) from template with subst applied. The Value
    node rebuilds it whenever PREFIX, LIBDIR, ... change."""

    def write(target, source, env):
        with open(source[0].abspath) as f:
            text = f.read()
        for key, value in subst.items():
            text = text.replace(key, value)
        with open(target[0].abspath, 'w') as f:
            f.write(text)
        return 0

    return env.Command(target, [template, Value(sorted(subst.items()))],
                       Action(write, 'creating $TARGET'))
