"""The runtimes and tool managers a project asks for, and the shell lines that provide them in the
sandbox during setup (from the package registries only), or say plainly that they cannot.

Versions come from the project's own files (`.python-version`, `requires-python`, `.nvmrc`,
`.node-version`, `engines.node`, `.tool-versions`, go.mod's `go` line) and from the CI's setup
actions. What the image already has is only known inside the sandbox, so the lines check first
and install only what is missing. A requirement that cannot be met prints one `UNMET_MARK` line
and stops setup with `UNMET_EXIT`; `unmet_from_output` turns that line back into an `Unmet`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from patchwright.environment.files import RepoFiles, join

UNMET_MARK = "patchwright-unmet:"
UNMET_EXIT = 97
PYTHON_MINORS = tuple(f"3.{minor}" for minor in range(8, 16))  # the CPython versions worth asking uv for
PIP_TOOLS = ("uv", "poetry", "pdm", "pipenv")  # installed with pip from PyPI
NPM_TOOLS = ("yarn", "pnpm", "bun")  # installed with npm from the npm registry
# node major -> the newest npm major that still runs on it (npm's own `engines`), for a node older
# than the image's npm supports
NPM_FOR_OLD_NODE = {10: 6, 11: 6, 12: 8, 13: 8, 14: 8, 15: 8, 16: 9, 17: 9}
NODE_LTS = {"argon": 4, "boron": 6, "carbon": 8, "dubnium": 10, "erbium": 12, "fermium": 14,
            "gallium": 16, "hydrogen": 18, "iron": 20, "jod": 22, "krypton": 24}  # fmt: skip
RUNTIMES = ("python", "node")  # where a soft preference and a hard requirement are kept apart
NOTE_MARK = "patchwright-note:"
NPM_GLOBAL = 'npm install -g --no-fund --no-audit --prefix "$HOME/.local"'


@dataclass(frozen=True)
class Requirement:
    """One runtime or tool the project asks for: `tool` (python, node, go, uv, yarn, ...), the
    version as the project wrote it ("" for any) and the file (or CI step) it came from."""

    tool: str
    version: str
    source: str
    # a preference (a CI matrix, a pinned .python-version or .nvmrc): when it cannot be had, the
    # image's runtime is used with a note; a hard one (requires-python, engines.node, go.mod) stops
    soft: bool = False


@dataclass(frozen=True)
class Unmet:
    """A requirement setup could not provide, and what the user can pass instead."""

    requirement: str  # e.g. "python >=3.14"
    source: str  # e.g. "pyproject.toml requires-python"
    reason: str  # what the sandbox has and why nothing else could be had
    hint: str = "pass --image with an image that has it, or --setup with a command that installs it"

    def message(self) -> str:
        return f"the project needs {self.requirement} ({self.source}); {self.reason}: {self.hint}"

    def as_dict(self) -> dict[str, str]:
        return {
            "requirement": self.requirement,
            "source": self.source,
            "reason": self.reason,
            "hint": self.hint,
        }


def find_requirements(files: RepoFiles, folder: str) -> list[Requirement]:
    """The runtime versions the project's files ask for, in `folder` first, then the root."""
    found: list[Requirement] = []
    folders = [folder, ""] if folder not in ("", ".") else [""]
    for where in folders:
        found += (
            _python(files, where) + _node(files, where) + _tool_versions(files, where) + _go(files, where)
        )
    return dedupe(found)


def dedupe(requirements: list[Requirement]) -> list[Requirement]:
    """Per tool, the first soft and the first hard requirement (the most specific source comes first)."""
    seen: dict[tuple[str, bool], Requirement] = {}
    for req in requirements:
        seen.setdefault((req.tool, req.soft and req.tool in RUNTIMES), req)
    return list(seen.values())


def _first_line(files: RepoFiles, path: str) -> str | None:
    text = files.text(path, 4096)
    if text is None:
        return None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return None


def _python(files: RepoFiles, folder: str) -> list[Requirement]:
    path = join(folder, ".python-version")
    if (line := _first_line(files, path)) and re.fullmatch(r"3\.\d+(\.\d+)?", line):
        return [Requirement("python", line, path, soft=True)]
    pyproject = files.toml(join(folder, "pyproject.toml")) or {}
    project = pyproject.get("project")
    wanted = project.get("requires-python") if isinstance(project, dict) else None
    if not isinstance(wanted, str):
        poetry = (
            pyproject.get("tool", {}).get("poetry", {}) if isinstance(pyproject.get("tool"), dict) else {}
        )
        deps = poetry.get("dependencies", {}) if isinstance(poetry, dict) else {}
        wanted = deps.get("python") if isinstance(deps, dict) else None
        if isinstance(wanted, str):
            return [
                Requirement(
                    "python", poetry_to_pep440(wanted), join(folder, "pyproject.toml") + " [tool.poetry]"
                )
            ]
        return []
    return [Requirement("python", wanted, join(folder, "pyproject.toml") + " requires-python")]


def poetry_to_pep440(spec: str) -> str:
    """Poetry's `^3.10` / `~3.10` as PEP 440 (`>=3.10,<4` / `>=3.10,<3.11`)."""
    spec = spec.strip()
    if match := re.fullmatch(r"\^(\d+)\.(\d+)(?:\.\d+)?", spec):
        return f">={match[1]}.{match[2]},<{int(match[1]) + 1}"
    if match := re.fullmatch(r"~(\d+)\.(\d+)(?:\.\d+)?", spec):
        return f">={match[1]}.{match[2]},<{match[1]}.{int(match[2]) + 1}"
    return spec


def _node(files: RepoFiles, folder: str) -> list[Requirement]:
    for name in (".nvmrc", ".node-version"):
        path = join(folder, name)
        if line := _first_line(files, path):
            return [Requirement("node", line, path, soft=True)]
    package = files.json(join(folder, "package.json"))
    engines = package.get("engines") if isinstance(package, dict) else None
    if isinstance(engines, dict) and isinstance(engines.get("node"), str):
        return [Requirement("node", engines["node"], join(folder, "package.json") + " engines.node")]
    return []


def _tool_versions(files: RepoFiles, folder: str) -> list[Requirement]:
    """asdf's `.tool-versions`: `python 3.12.1`, `nodejs 20.11.0`, `golang 1.22.0`."""
    path = join(folder, ".tool-versions")
    text = files.text(path, 16 * 1024)
    names = {"python": "python", "nodejs": "node", "node": "node", "golang": "go", "go": "go"}
    found = []
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] in names:
            found.append(Requirement(names[words[0]], words[1], path, soft=True))
    return found


def _go(files: RepoFiles, folder: str) -> list[Requirement]:
    path = join(folder, "go.mod")
    text = files.text(path)
    match = re.search(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", text or "", re.MULTILINE)
    return [Requirement("go", match[1], path + " go line")] if match else []


def python_versions(spec: str) -> list[str]:
    """The CPython minor versions (newest first) that meet `spec` ("3.12", "3.12.1", ">=3.10,<3.13");
    [] when the spec cannot be read."""
    spec = spec.strip()
    if re.fullmatch(r"\d+\.\d+(\.\d+)?(\s+\d+\.\d+(\.\d+)?)*", spec):  # one version, or a CI matrix's list
        return list(dict.fromkeys(".".join(v.split(".")[:2]) for v in spec.split()))
    # imported here: its regexes take 10-20 ms to compile, at every launch, for the few repos that
    # give a range (the launch's imports share the interpreter with the SDK's; preload.py)
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        wanted = SpecifierSet(spec)
    except InvalidSpecifier:
        return []
    # a minor version meets the spec if its latest patch release does (">=3.11.4" is met by 3.11)
    return [m for m in reversed(PYTHON_MINORS) if wanted.contains(f"{m}.99") or wanted.contains(f"{m}.0")]


def node_major(spec: str) -> tuple[int, bool] | None:
    """(major, at_least) from `.nvmrc`-style text: "20" / "v20.11.0" / "lts/iron" / "^20" give
    (20, False); ">=18" gives (18, True). None: nothing to act on ("lts/*", "node", odd ranges)."""
    spec = spec.strip().lower()
    if spec.startswith("lts/"):
        major = NODE_LTS.get(spec[4:])
        return (major, False) if major else None
    spec = spec.split()[0] if spec else spec  # a CI matrix's list: its first version
    if match := re.fullmatch(r"[v^~=]*\s*(\d+)(?:\.[\dx*]+)*", spec):
        return int(match[1]), False
    if match := re.fullmatch(r">=?\s*v?(\d+)(?:\.[\dx*]+)*(?:\s*<.*)?", spec):
        return int(match[1]), True
    return None


def install_lines(requirements: list[Requirement]) -> tuple[list[str], list[str]]:
    """Shell lines (run in order, under `set -e`) that make each requirement present, and notes on
    the ones left alone. Every value from the repository is shell-quoted."""
    lines: list[str] = []
    notes: list[str] = []
    by_tool = {req.tool: req for req in requirements if not (req.soft and req.tool in RUNTIMES)}
    soft = {req.tool: req for req in requirements if req.soft and req.tool in RUNTIMES}
    if "python" in by_tool or "python" in soft:
        python_lines, note = _python_lines(soft.get("python"), by_tool.get("python"))
        lines += python_lines
        notes += [note] if note else []
    for tool in PIP_TOOLS:
        if tool in by_tool:
            pin = _pin(tool, by_tool[tool].version, "==")
            lines.append(
                f"command -v {tool} >/dev/null || python3 -m pip install --user -q {shlex.quote(pin)}"
            )
    # yarn, pnpm and bun first, by the image's npm on the image's node (a node the project pins
    # may be too old for that npm)
    for tool in NPM_TOOLS:
        if tool in by_tool:
            pin = _pin(tool, by_tool[tool].version, "@")
            lines.append(f"command -v {tool} >/dev/null || {NPM_GLOBAL} {shlex.quote(pin)}")
    if "node" in by_tool or "node" in soft:
        node_lines, note = _node_lines(soft.get("node") or by_tool["node"], strict="node" in by_tool)
        lines += node_lines
        notes += [note] if note else []
    if "go" in by_tool:
        lines += _go_lines(by_tool["go"])
    for tool, binary in (("rust", "cargo"), ("ruby", "bundle")):
        if tool in by_tool:
            lines.append(_unmet_unless(binary, by_tool[tool], f"the image has no {binary}"))
    return lines, notes


def _pin(tool: str, version: str, sep: str) -> str:
    """`tool` or `tool==1.2` / `tool@8`, for a plain version only (never a range we would misread)."""
    return f"{tool}{sep}{version}" if re.fullmatch(r"\d+(\.\d+){0,2}", version) else tool


def _unmet_echo(req: Requirement, reason: str) -> str:
    text = f"{UNMET_MARK} {req.tool} {req.version or 'any'} | {req.source} | {reason}"
    return f"{{ echo {shlex.quote(text)}; exit {UNMET_EXIT}; }}"


def _unmet_unless(binary: str, req: Requirement, reason: str) -> str:
    return f"command -v {binary} >/dev/null || {_unmet_echo(req, reason)}"


def _python_lines(soft: Requirement | None, hard: Requirement | None) -> tuple[list[str], str | None]:
    """Keep the image's python3 when it is the one preferred (or, with no preference, meets the
    requirement); else a uv-managed one in ~/.venv, first on PATH (python3, python, pip); else the
    image's, with a note, when it meets the hard requirement; else stop with an unmet one."""
    acceptable = python_versions(hard.version) if hard else []
    if hard and not acceptable:
        return (
            [],
            f"python version {hard.version!r} ({hard.source}) not understood; using the image's python3",
        )
    preferred = python_versions(soft.version) if soft else []
    if acceptable:
        preferred = [v for v in preferred if v in acceptable] or acceptable
    if not preferred:
        return [], None
    target = soft if soft and not hard else hard
    assert target is not None
    have = "$(python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])')"
    reason = (
        "the image's python3 does not meet it and uv could not download one (its downloads are not reachable)"
    )
    if hard is None:
        fallback = f'echo {shlex.quote(f"{NOTE_MARK} python {target.version} ({target.source}) could not be had; using the image")}"\'s python3 $have"'
    else:
        ok = " ".join(acceptable)
        note = f"{NOTE_MARK} the preferred python could not be had; using the image's python3, which meets {hard.version} ({hard.source})"
        fallback = f'case " {ok} " in *" $have "*) echo {shlex.quote(note)} ;; *) {_unmet_echo(hard, reason)} ;; esac'
    script = f"""have={have}
case " {" ".join(preferred)} " in *" $have "*) ;; *)
  command -v uv >/dev/null || python3 -m pip install --user -q uv || true
  got=""
  for v in {" ".join(preferred)}; do if uv python install "$v" >/dev/null 2>&1; then got="$v"; break; fi; done
  if [ -n "$got" ]; then
    uv venv -q --seed --python "$got" "$HOME/.venv"
    for b in python3 python pip pip3; do ln -sf "$HOME/.venv/bin/$b" "$HOME/.local/bin/$b"; done
    export PIP_USER=0 VIRTUAL_ENV="$HOME/.venv"
  else
    {fallback}
  fi ;;
esac"""
    return [script], None


def _node_lines(req: Requirement, strict: bool) -> tuple[list[str], str | None]:
    """The official Node binaries are on the npm registry (package `node`): installed into
    ~/.local when the image's node is not the major asked for."""
    parsed = node_major(req.version)
    if parsed is None:
        return [], f"node version {req.version!r} ({req.source}) not understood; using the image's node"
    major, at_least = parsed
    have = "$(node -p 'process.versions.node.split(\".\")[0]' 2>/dev/null || echo 0)"
    test = f'[ "$have" -ge {major} ]' if at_least else f'[ "$have" -eq {major} ]'
    # The image's npm (Debian's, 9.x) refuses to run on an older node once that is first on PATH:
    # an npm that runs on it is installed beside it, by the image's npm, before the switch.
    npm = NPM_FOR_OLD_NODE.get(major)
    install = f"{NPM_GLOBAL} node@{major}" + (f" npm@{npm}" if npm else "") + " && hash -r"
    unmet = (
        _unmet_echo(req, "node could not be installed from the npm registry")
        if strict
        else f'echo {shlex.quote(f"{NOTE_MARK} node {req.version} ({req.source}) could not be installed; using the image")}"\'s node"'
    )
    return [f"have={have}; {test} || {{ {install} || {unmet}; }}"], None


def _go_lines(req: Requirement) -> list[str]:
    """Go toolchains are modules on the Go module proxy (golang.org/toolchain): fetched there when
    the image has no go."""
    version = req.version if re.fullmatch(r"\d+\.\d+(\.\d+)?", req.version) else ""
    if not version:
        return [_unmet_unless("go", req, "the image has no go")]
    full = version if version.count(".") == 2 or int(version.split(".")[1]) < 21 else f"{version}.0"
    url = f"https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go{full}.linux-amd64.zip"
    unmet = _unmet_echo(req, "the image has no go and the Go module proxy did not give one")
    return [
        f"command -v go >/dev/null || {{ curl -fsSL -o /tmp/go.zip {shlex.quote(url)} && "
        'python3 -m zipfile -e /tmp/go.zip "$HOME/.local/go-toolchain" && '
        'd=$(ls -d "$HOME"/.local/go-toolchain/golang.org/toolchain@*/) && chmod -R u+x "$d/bin" "$d/pkg/tool" && '
        'ln -sf "$d/bin/go" "$d/bin/gofmt" "$HOME/.local/bin/" && rm -f /tmp/go.zip || ' + unmet + "; }"
    ]


def unmet_from_output(output: str) -> list[Unmet]:
    """The unmet requirements a setup reported (its `UNMET_MARK` lines)."""
    found = []
    for line in output.splitlines():
        if not line.startswith(UNMET_MARK):
            continue
        parts = [p.strip() for p in line[len(UNMET_MARK) :].split("|")]
        if len(parts) == 3:
            found.append(Unmet(parts[0], parts[1], parts[2]))
    return found
