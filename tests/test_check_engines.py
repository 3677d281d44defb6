"""`manage.py check_engines` against the local imitations."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.imitations import SearchImitation

pytestmark = pytest.mark.browser


@pytest.fixture
def imitation(settings):
    server = SearchImitation(
        "127.0.0.23", image_url=lambda i: f"http://127.0.0.30:9/{i}.jpg", total=40
    ).start()
    settings.IMAGEDL_BING_URL = settings.IMAGEDL_DUCKDUCKGO_URL = settings.IMAGEDL_GOOGLE_URL = server.base
    settings.IMAGEDL_SCROLL_WAIT = 1.0
    yield server
    server.stop()


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
