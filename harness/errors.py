"""The harness's bad-input errors, importable by every module without importing what raises them.

Owns `ConfigError` (a table config, an override, an option or a command-line value names
something that does not exist, or is malformed: the CLI prints it and exits 2, nothing runs),
`MethodError` (an unknown method or an inconsistent method definition) and `ProtocolError` (a bad
`[zero_shot]` table). The more specific kinds (`MissingSplitsError`, `ExecutorUnavailable`,
`ConfigConflict`, `RescoreError`, `ExportError`) subclass `ConfigError` in their own modules.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A table config or override names something that does not exist, or is malformed."""


class MethodError(ValueError):
    """An unknown method name or an inconsistent method definition."""


class ProtocolError(ValueError):
    """A `[zero_shot]` table names an unknown key or instruction, or a bad value."""
