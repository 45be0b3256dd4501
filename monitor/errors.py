"""One error base for everything a user can cause or fix.

The CLI catches MonitorError and prints its message as one line, exiting with
``exit_code``; anything else is a bug and keeps its traceback.
"""


class MonitorError(Exception):
    exit_code = 1


class ConfigError(MonitorError):
    """The config file (or a file it names) is missing or invalid."""

    exit_code = 2


class InputError(MonitorError):
    """Bad input from the user: empty text, unreadable file, bad URL, unknown label."""

    exit_code = 2


class ModelError(MonitorError):
    """The spaCy pipeline or the classifier artefact is missing or incompatible."""

    exit_code = 2


class FetchError(MonitorError):
    """A URL could not be fetched (network, status, size cap, unsafe address)."""


class StorageError(MonitorError):
    """The database is unreachable, locked by another daemon, or not migrated."""


class MailError(MonitorError):
    """The SMTP server refused or dropped the digest."""
