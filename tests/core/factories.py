"""Users for tests, created through the real account service (no hand-made rows)."""

import itertools
from typing import Any

from core.models import Role, User
from core.services import user_create

PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - test fixture
_counter = itertools.count(1)


def make_user(role: str = Role.ANNOTATOR, *, username: str | None = None, **extra: Any) -> User:
    name = username or f"{role}{next(_counter)}"
    user = user_create(username=name, password=PASSWORD, role=role, email=f"{name}@example.org")
    if extra:
        for key, value in extra.items():
            setattr(user, key, value)
        user.save()
    return user
