# SPDX-License-Identifier: MIT
"""The Python side of skproc's build: everything SConstruct and the SConscripts call
that is more than a declaration (option parsing, configure checks, the test runner,
the symbol and layer checks, formatting, the pkg-config writer, install paths).

SCons puts site_scons/ on sys.path, so `from skproc_build import tests` works in
every SConscript. layers.py also runs alone with python3.
"""
