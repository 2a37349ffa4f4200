"""Suite-wide set-up."""

from __future__ import annotations

import os


def pytest_configure(config: object) -> None:
    # Privacy is on by default and needs a key; tests of other parts run without it.
    # Privacy tests pass ``privacy={"enabled": True, ...}``, which wins over the variable,
    # and subprocess tests set their own environment.
    os.environ["RAG_PRIVACY__ENABLED"] = "false"
