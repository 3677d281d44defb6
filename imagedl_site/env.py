"""Typed readers for settings that come from the environment.

Each helper returns the default when the variable is unset or empty and raises
ImproperlyConfigured naming the variable and the bad value otherwise, so a typo in
a deployment stops the process at start-up with a message a person can act on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (environ if environ is not None else os.environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    value = _raw(name, environ)
    return default if value is None else value


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; use one of: true, false, 1, 0, yes, no, on, off"
    )


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}")
    return number


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}")
    return number


def env_list(
    name: str, default: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    value = _raw(name, environ)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_int_list(
    name: str, default: list[int], *, minimum: int = 0, environ: Mapping[str, str] | None = None
) -> list[int]:
    """A comma list of whole numbers, each at least ``minimum`` (and at least one)."""
    items = env_list(name, None, environ)
    if not items:
        return list(default)
    try:
        numbers = [int(item) for item in items]
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={_raw(name, environ)!r} is not a comma list of whole numbers"
        ) from None
    if min(numbers) < minimum:
        raise ImproperlyConfigured(f"{name}: {min(numbers)} is below the minimum of {minimum}")
    return numbers


def env_choice(
    name: str, default: str, choices: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> str:
    value = _raw(name, environ)
    if value is None:
        return default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of: {', '.join(choices)}")
    return value


def parse_replication(value: str, name: str = "CASSANDRA_REPLICATION") -> dict[str, object]:
    """Parse a keyspace replication setting.

    Accepted forms: ``1`` or ``SimpleStrategy:3`` (SimpleStrategy with that factor) and
    ``NetworkTopologyStrategy:dc1=3,dc2=2``.
    """
    text = value.strip()
    strategy, _, rest = text.partition(":")
    if not rest and strategy.isdigit():
        strategy, rest = "SimpleStrategy", strategy
    if strategy == "SimpleStrategy":
        if not rest.isdigit() or int(rest) < 1:
            raise ImproperlyConfigured(
                f"{name}={value!r}: SimpleStrategy needs a replication factor of 1 or more, "
                "e.g. 'SimpleStrategy:3'"
            )
        return {"strategy_class": "SimpleStrategy", "replication_factor": int(rest)}
    if strategy == "NetworkTopologyStrategy":
        result: dict[str, object] = {"strategy_class": "NetworkTopologyStrategy"}
        for part in rest.split(","):
            dc, eq, factor = part.partition("=")
            if not eq or not dc.strip() or not factor.strip().isdigit():
                raise ImproperlyConfigured(
                    f"{name}={value!r}: expected 'NetworkTopologyStrategy:dc1=3,dc2=2'"
                )
            result[dc.strip()] = int(factor.strip())
        return result
    raise ImproperlyConfigured(
        f"{name}={value!r}: strategy must be SimpleStrategy or NetworkTopologyStrategy"
    )


def parse_hosts(value: list[str], name: str = "CASSANDRA_HOSTS") -> list[str]:
    """Validate a list of Cassandra contact points (host names or addresses, no ports)."""
    for host in value:
        if any(ch in host for ch in " /:@") or host.startswith("-"):
            raise ImproperlyConfigured(
                f"{name} entry {host!r} is not a host name or address "
                "(give bare hosts separated by commas; the port is CASSANDRA_PORT)"
            )
    return value


def secret_key_file(path: Path) -> str:
    """The key kept in ``path``, created on first use: atomically and readable by the
    owner only. The key is written to a private temporary file (mode 0600 whatever the
    umask) that is then hard-linked into place; the link fails if another process got
    there first, so processes started together (a web and a worker) all end up with
    the one key that won, and nobody ever reads a half-written file."""
    if not path.exists():
        fd, temporary = tempfile.mkstemp(prefix=".secret_key-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
