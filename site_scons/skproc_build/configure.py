# SPDX-License-Identifier: MIT
"""Configure checks: the compiler, tpl, SQLite and cmocka, each failing with one clear line;
and, for `scons fuzz`, a clang that links libFuzzer."""

import os

import SCons.SConf
from SCons.Script import Dir

from skproc_build.common import fail


class _Quiet:
    """Silence configure's "Checking for ..." lines while in the block. When conf_dir is
    gone (`rm -rf build`), also run every check again: SCons would otherwise trust its
    cached results and try to compile test files that no longer exist."""

    def __init__(self, conf_dir):
        self.conf_dir = conf_dir

    def __enter__(self):
        self.saved = SCons.SConf.progress_display, SCons.SConf.cache_mode
        SCons.SConf.progress_display = lambda *a, **k: None
        if not os.path.isdir(Dir(self.conf_dir).abspath):
            SCons.SConf.cache_mode = SCons.SConf.FORCE

    def __exit__(self, *exc):
        SCons.SConf.progress_display, SCons.SConf.cache_mode = self.saved
        return False


def configure(env, variant, need_cmocka):
    """Check for the compiler, tpl, SQLite and cmocka; stop with one clear line if missing."""
    with _Quiet(variant + '/sconf_temp'):
        try:
            conf = env.Configure(conf_dir=variant + '/sconf_temp',
                                 log_file=variant + '/config.log')
            try:
                if not conf.CheckCC():
                    fail("no working C compiler (%s): install it with 'apt-get install "
                         "build-essential' (details in %s/config.log)" % (env['CC'], variant))
                if not conf.CheckLibWithHeader('tpl', 'tpl.h', 'c', call='tpl_free(0);',
                                               autoadd=0):
                    fail("tpl not found: install it with 'apt-get install libtpl-dev'")
                if not conf.CheckLibWithHeader('sqlite3', 'sqlite3.h', 'c',
                                               call='sqlite3_libversion();', autoadd=0):
                    fail("SQLite not found (the scheduler's run log): install it with "
                         "'apt-get install libsqlite3-dev'")
                if need_cmocka and not conf.CheckLibWithHeader(
                        'cmocka', ['stdarg.h', 'stddef.h', 'stdint.h', 'setjmp.h', 'cmocka.h'],
                        'c', call='(void)_cmocka_run_group_tests("x", 0, 0, 0, 0);', autoadd=0):
                    fail("cmocka not found: install it with 'apt-get install libcmocka-dev'")
            finally:
                conf.Finish()
        except SCons.SConf.ConfigureDryRunError:
            pass  # `scons -n` with stale checks: skip them


_FUZZ_TEST = '''
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { (void)data; (void)size; return 0; }
'''


def configure_fuzz(env, build_dir):
    """Check that env's compiler builds and links a libFuzzer program."""
    with _Quiet(build_dir + '/sconf_temp'):
        try:
            conf = env.Configure(conf_dir=build_dir + '/sconf_temp',
                                 log_file=build_dir + '/config.log')
            try:
                if not conf.TryLink(_FUZZ_TEST, '.c'):
                    fail("%s cannot link a libFuzzer program: install clang and its runtime "
                         "('apt-get install clang libclang-rt-14-dev'), details in %s/config.log"
                         % (env['CC'], build_dir))
            finally:
                conf.Finish()
        except SCons.SConf.ConfigureDryRunError:
            pass
