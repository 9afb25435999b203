from typing import Any

import pytest

from tests.core.signin import pin_policy


@pytest.fixture(autouse=True)
def _lockout_policy(settings: Any) -> None:
    """Tests of sign-in and lockout run against the shipped policy, whatever the env says."""
    pin_policy(settings)
