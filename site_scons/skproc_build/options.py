# SPDX-License-Identifier: MIT
"""Command-line options (NAME=value) and the text of `scons -h`."""

import os
import re

from SCons.Script import ARGUMENTS, COMMAND_LINE_TARGETS, GetOption

from skproc_build.common import fail, truthy

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
  scons install           install headers, libraries and skproc.pc under PREFIX
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
  PREFIX=/usr/local       install prefix; LIBDIR (PREFIX/lib) and INCLUDEDIR (PREFIX/include)
                          may be set separately; DESTDIR is prepended to every installed path
  CC=gcc                  the C compiler (also taken from the CC environment variable);
                          `fuzz` uses it when it is a clang, and clang otherwise

Layout: skproc/<layer>/ holds the library by layer (order in {layers_script});
tests/<layer>/test_<name>.c are the test programs (test_<name> unique), tests/support/
their shared fixtures. The library, tests and fuzz see the private headers (-Iskproc);
examples and benches see only include/.
"""

# Targets that need neither a compiler nor the libraries.
NO_BUILD_TARGETS = {'format', 'format-check'}
# Targets that do not build the cmocka tests.
NO_CMOCKA_TARGETS = NO_BUILD_TARGETS | {'lib', 'symbols', 'layers', 'examples', 'benches',
                                        'demo', 'bench', 'install', 'fuzz'}


class Options:
    """What the command line asked for, checked once."""

    def __init__(self):
        self.targets = set(COMMAND_LINE_TARGETS)
        self.sanitize = ARGUMENTS.get('sanitize', '').strip()
        self.valgrind = truthy(ARGUMENTS.get('valgrind', '0'))
        self.quick = truthy(ARGUMENTS.get('quick', '0'))
        self.only = [n.strip() for n in ARGUMENTS.get('only', '').split(',') if n.strip()]
        self.cc = ARGUMENTS.get('CC') or os.environ.get('CC')

        if self.sanitize and not re.fullmatch(r'[a-z0-9_-]+(,[a-z0-9_-]+)*', self.sanitize):
            fail("bad sanitize=%r: expected a comma list such as 'address,undefined'"
                 % self.sanitize)
        if self.sanitize and self.valgrind:
            fail('valgrind=1 and sanitize= do not mix: run them separately')

        self.variant = ('build/sanitize-' + self.sanitize.replace(',', '-') if self.sanitize
                        else 'build/default')
        self.fuzz_dir = 'build/fuzz'

        self.prefix = ARGUMENTS.get('PREFIX', '/usr/local').rstrip('/') or '/'
        self.libdir = ARGUMENTS.get('LIBDIR', os.path.join(self.prefix, 'lib'))
        self.includedir = ARGUMENTS.get('INCLUDEDIR', os.path.join(self.prefix, 'include'))
        self.destdir = ARGUMENTS.get('DESTDIR', '')

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
