"""Exceptions the library raises; the CLI turns them into messages and exit codes."""


class NarrativesError(Exception):
    """Base class: a problem the user can fix, with a message saying how."""


class SourceError(NarrativesError):
    """A source given to `ingest` cannot be read (missing file, unknown type, bad URL)."""


class FetchError(NarrativesError):
    """A network fetch failed; `reason` is a short machine-readable key for the errors table."""

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class ExtractionError(NarrativesError):
    """A page held no article text that could be extracted."""


class DateError(NarrativesError):
    """A date string could not be parsed, or lies outside the plausible range."""


class FeedsFileError(NarrativesError):
    """The feeds file is missing or does not follow the documented schema."""
