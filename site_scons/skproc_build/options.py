# SPDX-License-Identifier: MIT
"""Command-line options (NAME=value) and the text of `scons -h`."""

import os
import re

from SCons.Script import ARGUMENTS, COMMAND_LINE_TARGETS, GetOption

from skproc_build.common import fail, top_dir, truthy

HELP = """
skproc build

Targets:
  scons                   build the library (static and shared), examples, tests, benches
  scons lib               build only libskproc.a and libskproc.so
  scons symbols           fail when libskproc.so exports a name without the sk_ prefix
  scons layers            fail when a layer of skproc/ includes or calls a higher layer,
                          or files form a cycle (alone: python3 {layers_script} [-v])
  scons examples | tests | benches
                          build only that group of programs (and the library)
  scons test              build everything, run the symbols and layers checks, then every
                          tests/test_*.c and tests/*/test_*.c program (each under
                          `timeout {timeout}`); prints "N passed, N failed"
  scons test only=timer   build and run only the program test_timer (comma list allowed;
                          the checks are left out)
  scons demo              build and run examples/demo
  scons bench [quick=1]   build the benches and run `python3 bench/run.py --build-dir VARIANT`
  scons fuzz              build build/fuzz/<name> for every fuzz/<name>.c with libFuzzer
                          (clang, -fsanitize=fuzzer,address,undefined); run one with e.g.
                          build/fuzz/fuzz_decoder -max_total_time=60
  scons install           install headers, libraries, skproc.pc, the CMake package
                          (LIBDIR/cmake/skproc) and the man pages (MANDIR/man3) under PREFIX
  scons man               write man/*.3 again from the comments of the public headers
  scons format            clang-format -i every .c/.h under {format_dirs}
  scons format-check      fail when a file is not clang-formatted
  scons -c                remove the build variant directory (`scons -c fuzz`: build/fuzz)

Options (NAME=value on the command line):
  sanitize=LIST           build with -fsanitize=LIST into build/sanitize-<LIST with - for ,>
                          e.g. sanitize=address,undefined
  valgrind=1              with `test`: run the programs in VALGRIND_TESTS (top of SConstruct)
                          under valgrind
  only=NAME[,NAME]        with `test`: run only the program test_NAME
  quick=1                 with `bench`: pass --quick to bench/run.py
  werror=0|1              -Werror on warnings; default: on in a git checkout (a tree with
                          .git, where skproc is developed; .ci/run passes werror=1), off in
                          a release tarball, so that a newer compiler's new warning does not
                          break a distribution's build
  mpi=0                   skip MPI even when found (also SKPROC_MPI=0): no libskproc-mpi,
                          no tests/mpi, no MPI examples and bench
  mpi=mpich               build skproc-mpi against MPICH (mpicc.mpich, mpiexec.mpich) into
                          build/mpich, next to the default MPI (Open MPI on Debian)
  hardening=0|1           default 1: -D_FORTIFY_SOURCE=2 (unless CFLAGS end with -O0),
                          -fstack-protector-strong and full RELRO (-Wl,-z,relro,-z,now);
                          0 leaves them to the packager's own flags

Taken from the command line (NAME=value) or else from the environment; the command
line wins when both are given:
  CC=gcc                  the C compiler; `fuzz` uses it when it is a clang, and clang
                          otherwise
  CFLAGS=..., CPPFLAGS=..., LDFLAGS=...
                          added after skproc's own flags (-std=c11 -O2 -g, the warnings,
                          the hardening flags), so that e.g. CFLAGS=-O3 overrides -O2;
                          they are not used by `fuzz`
  PREFIX=/usr/local       install prefix; LIBDIR (PREFIX/lib), INCLUDEDIR (PREFIX/include)
                          and MANDIR (PREFIX/share/man) may be set separately (command line)
  DESTDIR=/tmp/stage      prepended to every installed path (skproc.pc and the CMake
                          package still name PREFIX)

Layout: skproc/<layer>/ holds the library by layer (order in {layers_script});
tests/<layer>/test_<name>.c are the test programs (test_<name> unique), tests/support/
their shared fixtures. The library, tests and fuzz see the private headers (-Iskproc);
examples and benches see only include/.
"""

# Targets that need neither a compiler nor the libraries.
NO_BUILD_TARGETS = {'format', 'format-check', 'man'}
# Targets that do not build the cmocka tests.
NO_CMOCKA_TARGETS = NO_BUILD_TARGETS | {'lib', 'symbols', 'layers', 'examples', 'benches',
                                        'demo', 'bench', 'install', 'fuzz', 'man'}


class Options:
    """What the command line asked for, checked once."""

    def __init__(self):
        self.targets = set(COMMAND_LINE_TARGETS)
        self.sanitize = ARGUMENTS.get('sanitize', '').strip()
        self.valgrind = truthy(ARGUMENTS.get('valgrind', '0'))
        self.quick = truthy(ARGUMENTS.get('quick', '0'))
        self.only = [n.strip() for n in ARGUMENTS.get('only', '').split(',') if n.strip()]
        self.cc = self.setting('CC')
        self.cflags = self.setting('CFLAGS', '').split()
        self.cppflags = self.setting('CPPFLAGS', '').split()
        self.ldflags = self.setting('LDFLAGS', '').split()
        self.hardening = truthy(ARGUMENTS.get('hardening', '1'))
        werror = ARGUMENTS.get('werror')
        self.werror = (truthy(werror) if werror is not None
                       else os.path.exists(os.path.join(top_dir(), '.git')))

        if self.sanitize and not re.fullmatch(r'[a-z0-9_-]+(,[a-z0-9_-]+)*', self.sanitize):
            fail("bad sanitize=%r: expected a comma list such as 'address,undefined'"
                 % self.sanitize)
        if self.sanitize and self.valgrind:
            fail('valgrind=1 and sanitize= do not mix: run them separately')

        self.mpich = ARGUMENTS.get('mpi', os.environ.get('SKPROC_MPI', '')) == 'mpich'
        if self.mpich and (self.sanitize or self.valgrind):
            fail('mpi=mpich builds skproc-mpi, which sanitize= and valgrind= builds leave out')
        self.variant = ('build/sanitize-' + self.sanitize.replace(',', '-') if self.sanitize
                        else 'build/mpich' if self.mpich else 'build/default')
        self.fuzz_dir = 'build/fuzz'

        self.prefix = self.setting('PREFIX', '/usr/local').rstrip('/') or '/'
        self.libdir = ARGUMENTS.get('LIBDIR', os.path.join(self.prefix, 'lib'))
        self.includedir = ARGUMENTS.get('INCLUDEDIR', os.path.join(self.prefix, 'include'))
        self.mandir = ARGUMENTS.get('MANDIR', os.path.join(self.prefix, 'share', 'man'))
        self.destdir = self.setting('DESTDIR', '').rstrip('/')

    @staticmethod
    def setting(name, default=None):
        """NAME from the command line, else from the environment, else default."""
        if name in ARGUMENTS:
            return ARGUMENTS[name]
        return os.environ.get(name, default)

    @property
    def cleaning(self):
        return bool(GetOption('clean'))

    @property
    def helping(self):
        return bool(GetOption('help'))

    @property
    def building(self):
        """False for `scons -h` and for format-only runs."""
        return not self.helping and not (self.targets and self.targets <= NO_BUILD_TARGETS)

    @property
    def needs_cmocka(self):
        return not self.targets or not self.targets <= NO_CMOCKA_TARGETS

    def help_text(self, timeout, format_dirs, layers_script):
        return HELP.format(timeout=timeout, format_dirs=' '.join(format_dirs),
                           layers_script=layers_script)
