"""Optional features and the packages they need (the package's pip extras).

The runtime (node, infer, eval, bag tools, ONNX) installs from ``requirements-ros.txt`` on
x86_64 and aarch64 alike. Two features need more, and not everywhere: synthetic scenes ray-cast
with Embree (``embreex`` has wheels for x86_64 only), and training logs for TensorBoard.
``setup.py`` reads :data:`EXTRAS` from this file's source (a literal, without importing the
package), so ``pip install '.[synth]'`` and the error a command prints name the same packages.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from zoedepth_ros.errors import ConfigError

EXTRAS: dict[str, tuple[str, ...]] = {
    'synth': ('trimesh>=4.0,<5', 'embreex>=2.17'),
    'train': ('tensorboard>=2.10',),
}
"""Extra name -> pip requirements."""

NOTES = {'synth': 'embreex has wheels for x86_64 only: synthetic scenes do not render on ARM'}


class MissingExtraError(ConfigError):
    """A feature was asked for whose optional packages are not installed."""


def require(extra: str, module: str, feature: str) -> ModuleType:
    """Import ``module`` of the optional ``extra``, or say which packages to install.

    Raises:
        MissingExtraError: ``module`` cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        packages = ' '.join(f"'{requirement}'" for requirement in EXTRAS[extra])
        note = f' ({NOTES[extra]})' if extra in NOTES else ''
        raise MissingExtraError(
            f'{feature} needs the optional {extra!r} packages ({err.name or module} is '
            f"missing){note}: pip install {packages}, or pip install '.[{extra}]' in a "
            'source checkout') from None
