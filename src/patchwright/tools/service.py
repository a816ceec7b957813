"""`service`: look at and disturb the run's own database servers, because connection bugs
are about failure: status, logs (capped), stop, start, restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchwright.errors import SandboxError
from patchwright.sandbox.base import ServiceControl
from patchwright.tools.base import ToolError, ToolResult

ACTIONS = ("status", "logs", "restart", "stop", "start")


@dataclass
class ServiceTool:
    services: ServiceControl
    name: str = "service"

    def definition(self) -> dict[str, Any]:
        names = ", ".join(f"{spec.name} ({spec.kind})" for spec in self.services.specs)
        return {
            "name": self.name,
            "description": (
                f"The run's own database services ({names}), reachable from the shell on 127.0.0.1 "
                "and by name. `status` lists them; `logs` shows a service's server log (last "
                f"{self.services.log_limit // 1024} KiB); `stop`, `start` and `restart` shut the server down and bring "
                "it back (its data is kept; open connections break), to reproduce and check how the "
                "code handles a lost database."
            ),
            "input_schema": {
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": list(ACTIONS)},
                    "name": {"type": "string", "description": "The service (not needed for status)."},
                },
                "required": ["action"],
            },
        }

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        action = tool_input.get("action")
        if action not in ACTIONS:
            raise ToolError(f"`action` must be one of {', '.join(ACTIONS)}")
        if action == "status":
            return ToolResult("\n".join(_status_line(row) for row in self.services.status()))
        name = tool_input.get("name")
        if not isinstance(name, str) or not name:
            if len(self.services.specs) != 1:
                raise ToolError(
                    f"`name` is required: one of {', '.join(s.name for s in self.services.specs)}"
                )
            name = self.services.specs[0].name
        try:
            self.services.spec(name)
        except KeyError:
            known = ", ".join(n for s in self.services.specs for n in s.names)
            raise ToolError(f"no service {name!r}; the run's services: {known}") from None
        try:
            if action == "logs":
                return ToolResult(self.services.logs(name) or "(the log is empty)")
            if action == "stop":
                self.services.stop_one(name)
                return ToolResult(f"{name} stopped: connections to it are refused until `start`")
            seconds = self.services.start_one(name) if action == "start" else self.services.restart_one(name)
        except SandboxError as err:  # a service that would not come back (services.ServiceError)
            return ToolResult(str(err), is_error=True)
        return ToolResult(f"{name} {action}ed and ready again after {seconds:.1f} s")


def _status_line(row: dict[str, Any]) -> str:
    names = "/".join(row["names"])
    return (
        f"{names}: {row['kind']} {row['version']} on {row['host']}:{row['port']} "
        f"(user {row['user'] or '-'}, database {row['database']}): {row['state']}"
    )
