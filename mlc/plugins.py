"""Plugins: Python files or modules that register passes, loaded by ``--plugin``.

A plugin is ordinary Python that calls ``register_pass`` when imported::

    mlc opt in.mlc --plugin examples/passes/expfuse.py --passes expfuse
    mlc bisect model.py:f --arg 'f32[8]' --plugin mypkg.passes --passes cse,mypass

``load_plugin(spec)`` imports ``spec``: a path to a ``.py`` file, or a dotted module name found
on ``sys.path``. Loading the same plugin twice does nothing (the CLI may load it once for every
command that names it), so its ``register_pass`` calls run once. A plugin that fails to import
raises ``PluginError`` (a ``ValueError``: the CLI prints it as one line and exits with status 2)
naming the plugin, the error, and the plugin's line that raised it.

    >>> load_plugin("no/such/file.py")
    Traceback (most recent call last):
    ...
    mlc.plugins.PluginError: cannot load plugin 'no/such/file.py': no such file
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import traceback

_LOADED: dict[str, object] = {}  # plugin key (absolute path or module name) -> module


class PluginError(ValueError):
    """A plugin could not be loaded."""


def _key(spec: str) -> str:
    return os.path.abspath(spec) if _is_path(spec) else spec


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def _failure(spec: str, e: BaseException, path: str | None) -> PluginError:
    """``PluginError`` naming the error and, when it has one, the plugin line that raised it."""
    where = ""
    frames = traceback.extract_tb(e.__traceback__)
    if path is not None:
        mine = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(path)]
        if mine:
            where = f" (at {path}:{mine[-1].lineno})"
    elif isinstance(e, SyntaxError) and e.filename:
        where = f" (at {e.filename}:{e.lineno})"
    return PluginError(f"cannot load plugin {spec!r}: {type(e).__name__}: {e}{where}")


def load_plugin(spec: str):
    """Import the plugin ``spec`` (a ``.py`` file or a module name) once; returns the module."""
    key = _key(spec)
    if key in _LOADED:
        return _LOADED[key]
    if _is_path(spec):
        module = _load_file(spec, key)
    else:
        try:
            module = importlib.import_module(spec)
        except Exception as e:
            missing = isinstance(e, ModuleNotFoundError) and e.name
            if missing and (spec == missing or spec.startswith(missing + ".")):
                raise PluginError(
                    f"cannot load plugin {spec!r}: no such module (give a path to a .py file, "
                    "or a module on sys.path)"
                ) from None
            raise _failure(spec, e, getattr(sys.modules.get(spec), "__file__", None)) from None
    _LOADED[key] = module
    return module


def _load_file(spec: str, path: str):
    if not os.path.isfile(path):
        raise PluginError(f"cannot load plugin {spec!r}: no such file")
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    name = f"mlc_plugin_{stem}_{len(_LOADED)}"
    mod_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module  # dataclasses, pickling and relative lookups need it there
    sys.path.insert(0, os.path.dirname(path))  # the plugin may import its neighbours
    try:
        mod_spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise _failure(spec, e, path) from None
    finally:
        sys.path.remove(os.path.dirname(path))
    return module


def load_plugins(specs) -> list:
    """``load_plugin`` for each of ``specs`` (None or a list, as ``--plugin`` collects them)."""
    return [load_plugin(s) for s in specs or ()]


def add_argument(parser) -> None:
    """Add ``--plugin FILE.py|MODULE`` (repeatable) to an argparse (sub)parser."""
    parser.add_argument(
        "--plugin",
        action="append",
        metavar="FILE.py|MODULE",
        help="import this file or module first (it registers passes); repeatable",
    )
