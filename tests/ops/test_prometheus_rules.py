"""The alert rules and the Prometheus config of ops/prometheus/ pass promtool: the
config and rules are valid, and each alert's unit tests (rules.test.yml) hold."""

from __future__ import annotations

import shutil
import subprocess

from tests.paths import REPO

OPS = REPO / "ops" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test` installs Debian's prometheus package"
    return subprocess.run([tool, *args], cwd=OPS, capture_output=True, text=True, timeout=120)


def test_the_rules_and_the_config_are_valid():
    checked = promtool("check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_has_unit_tests_that_pass():
    tested = promtool("test", "rules", "rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    rules, tests = (OPS / "rules.yml").read_text(), (OPS / "rules.test.yml").read_text()
    alerts = [
        line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("- alert:")
    ]
    assert len(alerts) == 6
    for alert in alerts:
        assert f"alertname: {alert}\n" in tests, f"{alert} has no unit test"
        assert "runbook:" in rules.split(f"alert: {alert}", 1)[1].split("- alert:", 1)[0], alert
