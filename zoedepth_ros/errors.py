"""Exception hierarchy: every error the package raises on purpose derives from ZoeDepthError."""

from __future__ import annotations


class ZoeDepthError(Exception):
    """Base class of the package's own errors."""


class ConfigError(ZoeDepthError, ValueError):
    """A configuration file, override or option is invalid."""


class CheckpointError(ZoeDepthError):
    """A checkpoint cannot be found, downloaded, verified or loaded into the model."""


class InputError(ZoeDepthError, ValueError):
    """An input image, message or file cannot be used."""


class BagError(ZoeDepthError):
    """A rosbag cannot be read or written, or lacks what was asked for."""
