"""`manage.py check_engines` against the local imitations."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

pytestmark = [pytest.mark.browser, pytest.mark.imitation(total=40, scroll_wait=1.0)]


def test_all_engines_pass_on_healthy_markup(imitation, capsys):
    call_command("check_engines")
    out = capsys.readouterr().out
    for name in ("bing", "duckduckgo", "google"):
        assert f"ok   {name}" in out


def test_a_markup_change_fails_the_check(imitation, capsys):
    imitation.modes["bing"] = "changed"  # result links lose their class
    with pytest.raises(CommandError, match="bing"):
        call_command("check_engines", "--engine", "bing")
    assert "FAIL bing" in capsys.readouterr().out
