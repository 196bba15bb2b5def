# SPDX-License-Identifier: MIT
"""Install paths (PREFIX, LIBDIR, INCLUDEDIR, DESTDIR) and the skproc.pc writer."""

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


def pc_substitutions(opts, version, libs):
    return {
        '@PREFIX@': opts.prefix,
        '@LIBDIR@': pc_path(opts.prefix, opts.libdir),
        '@INCLUDEDIR@': pc_path(opts.prefix, opts.includedir),
        '@VERSION@': version,
        '@LIBS_PRIVATE@': ' '.join('-l' + lib for lib in libs),
    }


def pkg_config(env, target, template, subst):
    """target (skproc.pc) from template with subst applied. The Value node rebuilds it
    whenever PREFIX, LIBDIR, ... change."""

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
