"""User-facing errors. The CLI prints these as one clear message (no traceback unless ``--debug``)."""


class ArlifError(Exception):
    """A problem the user can fix: bad input, a missing file, an unknown option. The message says how."""


class ConfigError(ArlifError, ValueError):
    """An invalid configuration: unknown key, wrong type or value."""


class DataError(ArlifError):
    """A dataset that is missing, incomplete or corrupt."""
