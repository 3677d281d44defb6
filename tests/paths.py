"""Where the suite finds the repository it tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
