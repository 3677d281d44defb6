"""Where the suite finds the repository it tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def screenshot_dir() -> Path:
    """Where screenshots go: var/screenshots/ unless IMAGEDL_SCREENSHOT_DIR says (a
    relative path is taken from the project's folder). Never docs/ by default: a test
    run must not rewrite tracked files."""
    import os

    from django.conf import settings

    chosen = os.environ.get("IMAGEDL_SCREENSHOT_DIR")
    return Path(settings.BASE_DIR) / chosen if chosen else Path(settings.VAR_DIR) / "screenshots"
