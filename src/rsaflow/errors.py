"""Exceptions with messages a scientist can act on."""


class RsaflowError(Exception):
    """Base class: one line saying what is wrong, where, and how to fix it."""


class ConfigError(RsaflowError):
    """A config value is invalid; the message starts with the key path."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config error at {key}: {message}")


class InputFileError(RsaflowError):
    """An input file is missing, truncated, foreign or inconsistent; the message names it."""

    def __init__(self, path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")
