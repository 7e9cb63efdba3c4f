"""The errors a user can act on: each says what was wrong and where."""


class ReasonClassifierError(Exception):
    """Base of every error this library raises on purpose (bad input, bad files, bad config)."""


class ConfigError(ReasonClassifierError):
    """A configuration file people edit is invalid; the message says `file, line N: dotted.key: what is wrong`."""


class TaxonomyError(ConfigError):
    """The taxonomy file is invalid; the message names the key and its line."""


class ModelFolderError(ReasonClassifierError):
    """A model folder is incomplete, corrupt, or from an incompatible format version."""


class InputError(ReasonClassifierError):
    """A survey export cannot be read as a whole (missing column, wrong encoding, unknown format)."""


class EncoderError(ReasonClassifierError):
    """An encoder cannot be found or loaded from the given name or path."""


class SourceNotFound(InputError):
    """The export or the store file named does not exist (nothing was written there yet)."""


class SourceUnreadable(InputError):
    """The export or the store exists but cannot be opened or its rows read (malformed, or a database refusing)."""


class OutputError(ReasonClassifierError):
    """An output cannot be written (folder not writable, disk full); nothing is left under the output's name."""
