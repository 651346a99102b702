"""User-facing errors. The CLI prints these as one clear message (no traceback unless ``--debug``)."""

from __future__ import annotations


class ArlifError(Exception):
    """A problem the user can fix: bad input, a missing file, an unknown option. The message says how."""


class ConfigError(ArlifError, ValueError):
    """An invalid configuration: unknown key, wrong type or value."""


class TrainingDiverged(ArlifError):
    """The training loss became NaN or infinite."""


class DataError(ArlifError):
    """A dataset that is missing, incomplete or corrupt."""


class CorruptRecording(DataError):
    """One recording (an event file) whose header or events do not parse: truncated, wrong magic, garbled.
    ``path`` is the file and ``problem`` what is wrong with it, without the path."""

    def __init__(self, message: str, path=None, problem: str | None = None):
        # one positional message first, so that the DataLoader can re-raise it from a worker
        super().__init__(message)
        self.path = path
        self.problem = problem if problem is not None else message


class CorruptDatasetError(DataError):
    """A dataset with corrupt recordings, found when it was built. ``bad`` lists ``(path, problem)`` of every
    one; the message names the first ``limit`` of them and ends with ``hint`` (how to leave them out)."""

    LIMIT = 20
    HINT = (
        "Replace them (a download or copy cut short?), or leave them out with the dataset option "
        "skip_corrupt=true (arlif data: -o skip_corrupt=true; a training config: dataset_options: "
        "{skip_corrupt: true}); 'arlif data prepare' parses every recording and lists all bad ones."
    )

    def __init__(self, dataset: str, bad: list, checked: int, hint: str | None = None):
        self.dataset, self.bad, self.checked, self.hint = dataset, list(bad), int(checked), hint or self.HINT
        lines = [f"{dataset}: {len(self.bad)} of {self.checked} recordings are corrupt (their data do not parse):"]
        lines += [f"  {path}: {problem}" for path, problem in self.bad[: self.LIMIT]]
        if len(self.bad) > self.LIMIT:
            lines.append(f"  ... and {len(self.bad) - self.LIMIT} more")
        lines.append(self.hint)
        super().__init__("\n".join(lines))

    def with_hint(self, hint: str) -> CorruptDatasetError:
        """The same error, ending with another hint (e.g. the exact command-line flag of the caller)."""
        return CorruptDatasetError(self.dataset, self.bad, self.checked, hint)

    @classmethod
    def merge(cls, errors: list[CorruptDatasetError]) -> CorruptDatasetError:
        """One error listing the bad recordings of several splits."""
        return cls(
            errors[0].dataset,
            [b for e in errors for b in e.bad],
            sum(e.checked for e in errors),
            errors[0].hint,
        )
