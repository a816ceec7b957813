"""Settings as the user meets them: the flags of `agent fix` and `agent batch`, the
PATCHWRIGHT_* variables a batch hands each instance, and the README's settings table.

All three are derived from `config.Settings`, the one declaration of a setting, so a
setting added there is a flag of both commands, a config key, a variable and a README
row at once, and batch cannot fall behind fix again.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from patchwright.config import SPECS, Settings, Trust, base_type, pairs_text, parse_pairs
from patchwright.errors import ConfigError, UsageError

F = TypeVar("F", bound=Callable[..., Any])
FLAGS_PARAMETER = "settings_flags"  # where a decorated command receives the settings' flag values


def _none_flag(name: str) -> str:
    """A list setting's companion flag that sets it to empty: --no-services."""
    return f"no_{name}"


def _default_text(name: str) -> str:
    spec = SPECS[name]
    if spec.default_doc:
        return spec.default_doc
    value = getattr(Settings(), name)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return (
        f"`{value}`" if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    )


def _parameters() -> list[inspect.Parameter]:
    """One keyword parameter per setting that has a flag, as typer reads them."""
    import typer

    params: list[inspect.Parameter] = []
    for name, spec in SPECS.items():
        flag = spec.flags(name)
        if flag is None:
            continue
        kind = base_type(name)
        help_text = spec.help
        if "default" not in help_text:
            help_text = f"{help_text.rstrip('.')} (default: {_default_text(name).replace('`', '')})."
        annotation: Any = list[str] if kind in (tuple, dict) else kind
        if spec.choices:  # typer offers fixed values through an Enum
            annotation = StrEnum(name.title().replace("_", ""), {c: c for c in spec.choices})  # type: ignore[misc,no-redef]
        option = typer.Option(*flag.split(" "), help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[annotation | None, option],
            )
        )
        if kind in (tuple, dict):
            companion = _none_flag(name)
            params.append(
                inspect.Parameter(
                    companion,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=False,
                    annotation=Annotated[
                        bool,
                        typer.Option(f"--no-{name.replace('_', '-')}", help=f"Set {name} to none."),
                    ],
                )
            )
    return params


def with_settings(func: F) -> F:
    """Give a typer command a flag for every setting; the command receives their values as
    `settings_flags` ({name: value}, None where the flag was not given)."""
    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != FLAGS_PARAMETER]
    added = _parameters()
    names = {p.name for p in added}

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        return func(**kwargs, **{FLAGS_PARAMETER: flag_values(given)})

    parameters = [*own, *added]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command  # type: ignore[return-value]


def flag_values(given: dict[str, Any]) -> dict[str, Any]:
    """Typer's values as Settings values: a list setting as a tuple, `--no-NAME` as empty."""
    out: dict[str, Any] = {}
    for name in SPECS:
        if name not in given:
            continue
        value = given[name]
        if isinstance(value, StrEnum):
            value = value.value
        if base_type(name) in (tuple, dict):
            empty = bool(given.get(_none_flag(name)))
            if value and empty:
                raise UsageError(f"give {SPECS[name].flags(name)} or --no-{name.replace('_', '-')}, not both")
            value = () if empty else tuple(value) if value else None
            if base_type(name) is dict and value:
                try:
                    value = parse_pairs(value, str(SPECS[name].flags(name)))
                except ConfigError as err:
                    raise UsageError(str(err)) from None
        out[name] = value
    return out


def as_env(values: dict[str, Any]) -> dict[str, str]:
    """Settings values as the PATCHWRIGHT_* variables config.py reads back (None: not set)."""
    env: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif base_type(name) is dict:
            text = pairs_text(tuple(value))
        elif isinstance(value, tuple | list):
            text = ",".join(value) if value else "none"
        else:
            text = str(value)
        env[f"PATCHWRIGHT_{name.upper()}"] = text
    return env


REPO_MAY = {
    Trust.REPO: "yes",
    Trust.CAPPED: "lower only",
    Trust.WIDENING: "with `--trust-repo-config`",
    Trust.USER: "never",
}


def readme_table() -> str:
    """The README's settings table, one row a setting, in declaration order."""
    rows = [
        "| flag | config key | meaning | default | the repo's config may set it |",
        "|---|---|---|---|---|",
    ]
    for name, spec in SPECS.items():
        flag = spec.flags(name)
        shown = "" if flag is None else " ".join(f"`{part}`" for part in flag.split(" "))
        if base_type(name) in (tuple, dict) and flag is not None:
            shown += f", `--no-{name.replace('_', '-')}`"
        meaning = spec.doc or spec.help[0].lower() + spec.help[1:].rstrip(".")
        rows.append(
            f"| {shown or '(config only)'} | `{name}` | {meaning} | {_default_text(name)} | {REPO_MAY[spec.trust]} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(readme_table(), end="")
