"""The demo's one error type; ``manage.py create_demo`` reports it as a ``CommandError``."""


class DemoError(Exception):
    """The demo cannot be built as asked; the message says why."""
