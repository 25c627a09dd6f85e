"""Progress tests decide activation themselves: no CI variable, no installed progress plugin."""

from __future__ import annotations

import pytest

from crystallize.testing import installed_plugins_only


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run every test as on a developer's machine, with only the guide's plugins installed.

    CI sets ``CI=true``, which would silence the bars; tests that need it set
    it back. Tests pass the ``ProgressPlugin`` they configure.
    """
    for name in ("CI", "CRYSTALLIZE_PROGRESS", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    with installed_plugins_only("metadata", "resume"):
        yield
