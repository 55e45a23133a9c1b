"""Exceptions of a training run, importable without torch (the command line catches them)."""


class TrainingStopped(RuntimeError):
    """The run stopped on purpose (non-finite loss, collapse, a checkpoint that could not be
    written); the message says why and where the last good checkpoint is."""
