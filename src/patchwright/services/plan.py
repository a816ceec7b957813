"""Which services a run gets: the ones asked for (`--service`, config `services`), else the ones
the repo declares (detect.py); an empty request (`--no-services`, `services = []`) means none."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from patchwright.services.detect import detect
from patchwright.services.spec import ServiceSpec, merge, parse_spec
from patchwright.services.unsupported import Unsupported


@dataclass(frozen=True)
class ServicePlan:
    specs: list[ServiceSpec]
    detected: bool  # they came from the repo's files, not from a flag or the config
    notes: list[str] = field(default_factory=list)  # one-line warnings for the user
    unsupported: list[Unsupported] = field(default_factory=list)  # declared, but not a kind we run

    def unsupported_warning(self) -> str | None:
        """The one-line warning naming the declared services this run does not start."""
        if not self.unsupported:
            return None
        return (
            f"not started: {', '.join(u.describe() for u in self.unsupported)}: patchwright cannot run "
            "this kind of service yet, so tests that need it cannot connect (see README, "
            '"Databases and other services")'
        )

    def describe(self) -> str:
        """ "postgres (postgres 15, from compose.yaml), redis ..." for the progress line."""
        return ", ".join(
            f"{'/'.join(spec.names)} ({spec.kind} {spec.runs_version} on port {spec.port}, from {spec.source})"
            for spec in self.specs
        )


def plan_services(requested: tuple[str, ...] | None, repo: Path) -> ServicePlan:
    """UsageError for an unknown service or a bad spec, before anything starts."""
    others: list[Unsupported] = []
    if requested is None:
        found = detect(repo)
        specs, notes, others = found.specs, list(found.notes), list(found.unsupported)
        detected = True
    else:
        specs = merge([parse_spec(text, f"service {text!r}") for text in requested])
        notes, detected = [], False
    for spec in specs:
        notes.extend(spec.notes)
    return ServicePlan(specs, detected, notes, others)


SERVICE_NOTES = """
# The run's services
These database servers run beside the sandbox, started fresh for this run (ready before your
first command; verification starts fresh ones of its own):
{lines}
They answer on 127.0.0.1 and under the names above, on their usual ports; nothing else on the
network is reachable. The shell already has {variables} set. The `service` tool shows their
status and logs, and can stop, start or restart one to reproduce a lost connection.
"""


UNSUPPORTED_NOTES = """
# Services this run does not have
The repository also declares {services}. patchwright cannot run them, so code and tests that
connect to them fail with connection errors here; that is the environment, not a bug to fix.
"""


def service_notes(plan: ServicePlan | None) -> str:
    """The run notes' paragraph telling the model which services exist and how to reach them,
    and which declared ones it will not find."""
    if plan is None:
        return ""
    missing = ""
    if plan.unsupported:
        missing = UNSUPPORTED_NOTES.format(services=", ".join(u.describe() for u in plan.unsupported))
    if not plan.specs:
        return missing
    lines = []
    for spec in plan.specs:
        login = f", user {spec.user} / password {spec.password}" if spec.user else ""
        database = f", database {spec.database}" if spec.kind != "redis" else f", db {spec.database}"
        lines.append(
            f"- {' / '.join(spec.names)}: {spec.kind} {spec.runs_version} at 127.0.0.1:{spec.port}{login}{database}"
        )
    kinds = {spec.kind for spec in plan.specs}
    variables = (["DATABASE_URL"] if kinds & {"postgres", "mariadb"} else []) + [
        name
        for kind, name in (("postgres", "PG*"), ("mariadb", "MYSQL_*"), ("redis", "REDIS_URL"))
        if kind in kinds
    ]
    return SERVICE_NOTES.format(lines="\n".join(lines), variables=", ".join(variables)) + missing
