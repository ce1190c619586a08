"""The exceptions of qprop_tf: bad input, a run directory that cannot be used, a run that
went non-finite, the two ways a run stops before its budget, and ``play``'s two errors (no
saved policy, no video)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad configuration key or value, reported before any training starts."""


class ConfigMismatch(ValueError):
    """The run directory holds a run with another configuration."""


class RunLocked(RuntimeError):
    """Another live process holds the run directory's LOCK."""


class NonFiniteError(FloatingPointError):
    """A loss or a parameter became NaN/inf: the run stops, what was logged stays."""


class RunInterrupted(Exception):  # noqa: N818 (a stop request, not an error)
    """SIGTERM/SIGINT: the run checkpointed at an iteration boundary and stopped."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRun(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Raised from ``on_iteration`` to end a run early; the run is finished (DONE)."""


class PolicyFileError(ValueError):
    """No saved policy where one was expected (a wrong path, a run without ``policy.npz``),
    or a file that is not one."""


class VideoError(RuntimeError):
    """A video cannot be written: no OpenGL backend for MuJoCo's offscreen renderer, or no
    writer for the file's format."""
