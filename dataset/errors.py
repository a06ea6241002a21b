"""The exception the data pipeline raises for bad input files."""


class DataError(Exception):
    """A data file is missing, unreadable or inconsistent with the index.

    The message starts with the offending file; `path` keeps it for grouping skipped samples.
    The constructor also accepts the message alone, because DataLoader workers re-raise an
    exception in the main process as `type(exc)(message)`.
    """

    def __init__(self, message: str, path: str | None = None):
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = path if path is not None else message.split(": ", 1)[0]
