"""The one exception type users see: a message that says what went wrong and what to do next."""


class CopeError(Exception):
    """An error with a user-facing message; the CLI prints it without a traceback."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1):
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  → {self.hint}" if self.hint else text
