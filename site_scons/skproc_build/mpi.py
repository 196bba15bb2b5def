# SPDX-License-Identifier: MIT
"""Finding an MPI implementation for the optional skproc-mpi library, its tests,
examples and bench: `mpicc --showme:compile/--showme:link` (Open MPI), `mpicc -show`
(MPICH), else pkg-config (ompi-c, mpich). mpi=0 on the command line skips it;
mpi=mpich takes MPICH's own wrapper and launcher (mpicc.mpich, mpiexec.mpich), so
that a machine with both (Debian makes Open MPI the default) builds either.

The MPI tests run as `timeout ... mpirun <MPIRUN_FLAGS> -n 3 PROGRAM`: Open MPI's
flags for CI (root, 2 CPUs, ranks over TCP on loopback only so that they share no
memory, yielding when idle); MPICH's mpiexec needs none of them."""

import os
import shlex
import shutil
import subprocess

OPENMPI_RUN_FLAGS = ['--allow-run-as-root', '--oversubscribe', '--mca', 'btl', 'self,tcp',
                     '--mca', 'btl_tcp_if_include', 'lo', '--mca', 'mpi_yield_when_idle', '1']
RANKS = 3

_found = {}


def _run(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def _split(flags):
    """(compile flags, link flags) as SCons wants them."""
    words = shlex.split(flags)
    return words


def detect(wanted=True, mpich=False):
    """{'name', 'kind', 'cflags', 'link', 'mpirun', 'run_flags'} or None (cached)."""
    if 'mpi' in _found:
        return _found['mpi']
    _found['mpi'] = None
    if not wanted:
        return None
    mpicc = shutil.which('mpicc.mpich' if mpich else 'mpicc')
    compile_flags = link_flags = ''
    name = ''
    if mpicc:
        compile_flags = _run([mpicc, '--showme:compile'])
        link_flags = _run([mpicc, '--showme:link'])
        if compile_flags or link_flags:
            name = 'Open MPI'
        else:
            shown = _run([mpicc, '-show']).split()
            if shown:
                name = 'MPICH'
                compile_flags = ' '.join(w for w in shown[1:] if w.startswith(('-I', '-D')))
                link_flags = ' '.join(w for w in shown[1:] if w.startswith(('-L', '-l', '-Wl')))
    if not name and shutil.which('pkg-config'):
        for package, label in ((('mpich', 'MPICH'),) if mpich else
                               (('ompi-c', 'Open MPI'), ('mpich', 'MPICH'))):
            if subprocess.call(['pkg-config', '--exists', package]) == 0:
                name = label
                compile_flags = _run(['pkg-config', '--cflags', package])
                link_flags = _run(['pkg-config', '--libs', package])
                break
    mpirun = (shutil.which('mpiexec.mpich') if mpich
              else shutil.which('mpirun') or shutil.which('mpiexec'))
    if not name or not mpirun or (mpich and name != 'MPICH'):
        return None
    version = _run([mpirun, '--version']).splitlines()
    if name == 'MPICH':  # hydra's --version: "HYDRA build details:", then "Version: 4.0.2"
        numbers = [line.split(':', 1)[1].strip() for line in version if 'Version:' in line]
        version = ['MPICH %s' % numbers[0] if numbers else 'MPICH']
    _found['mpi'] = {
        'name': version[0] if version and version[0] else name,
        'kind': name,  # 'Open MPI' or 'MPICH'
        'cflags': _split(compile_flags),
        'link': _split(link_flags),
        'mpirun': mpirun,
        'run_flags': OPENMPI_RUN_FLAGS if name == 'Open MPI' else [],
    }
    return _found['mpi']


def say(mpi, wanted=True):
    """The configure line."""
    if not wanted:
        return 'skproc: MPI skipped (mpi=0, or a sanitize= or valgrind= build): ' \
               'libskproc-mpi, its tests, examples and bench are not built'
    if mpi:
        return 'skproc: MPI found (%s): building libskproc-mpi, skproc-mpi.pc, its tests, ' \
               'examples and bench' % mpi['name']
    return ("skproc: no MPI found (mpicc, pkg-config ompi-c or mpich; with mpi=mpich, "
            "mpicc.mpich and mpiexec.mpich): libskproc-mpi, its tests, examples and bench are "
            "skipped (apt-get install openmpi-bin libopenmpi-dev, or mpich libmpich-dev)")


def mpirun_prefix(mpi, ranks=RANKS):
    return [mpi['mpirun']] + mpi['run_flags'] + ['-n', str(ranks)]


def env_for(env, mpi):
    """A clone of env that compiles and links against MPI."""
    e = env.Clone()
    e.MergeFlags(' '.join(shlex.quote(f) for f in mpi['cflags'] + mpi['link']))
    return e


def wanted(arguments):
    return arguments.get('mpi', os.environ.get('SKPROC_MPI', '1')) not in ('0', 'no', 'off')


def wants_mpich(arguments):
    return arguments.get('mpi', os.environ.get('SKPROC_MPI', '')) == 'mpich'
