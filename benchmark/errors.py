"""Errors raised on bad input. Each message names what was wrong and what is allowed."""


class ConfigError(ValueError):
    """A params.yaml key is unknown, has the wrong type or is out of range."""


class DataError(ValueError):
    """A dataset path, folder or file cannot be used."""
