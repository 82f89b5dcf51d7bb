"""The one exception type users see: a message that says what went wrong and what to do next."""

from contextlib import contextmanager


class CopeError(Exception):
    """An error with a user-facing message; the CLI prints it without a traceback."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1):
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  → {self.hint}" if self.hint else text


@contextmanager
def needs_train_extra(what: str):
    """Around a lazy import of the trainer: a missing torch/transformers becomes a clear error."""
    try:
        yield
    except ImportError as exc:
        raise CopeError(f"{what} needs the train extra ({exc.name} is missing)", hint="pip install 'cope-local[train]'") from None
