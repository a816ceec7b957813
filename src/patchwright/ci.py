"""Whether patchwright runs under CI: one rule for every place that asks (snapshots, the
screen, batch), so `CI=on` cannot turn snapshots off while the display still acts interactive."""

from __future__ import annotations

from collections.abc import Mapping


def is_ci(env: Mapping[str, str]) -> bool:
    """CI set to anything but empty, 0, false, no or off (GitHub Actions, GitLab and most others set
    CI=true; some set CI=1 or CI=on)."""
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")
