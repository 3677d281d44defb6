"""Local imitations of image search engines (and of any web page) on loopback."""

from tests.imitations.server import SearchImitation

__all__ = ["SearchImitation"]
