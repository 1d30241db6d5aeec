"""User-facing errors: the CLI prints these as one paragraph, without a traceback."""

from __future__ import annotations


class RatbenchError(Exception):
    """A problem the user can fix (bad name, missing data, malformed file).

    The message must say what is wrong, where (file and line when there is one) and how to fix it.
    """


class DataFormatError(RatbenchError):
    """A data file does not follow its documented format."""

    def __init__(self, path: object, message: str, line: int | None = None, fix: str | None = None):
        where = f"{path}" + (f", line {line}" if line is not None else "")
        text = f"{where}: {message}"
        if fix:
            text += f" {fix}"
        super().__init__(text)
        self.path = str(path)
        self.line = line


class DownloadError(RatbenchError):
    """A download failed or produced a file that does not verify."""
