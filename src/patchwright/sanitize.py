"""Text the model or the repository made, made safe for a terminal, a log line or a CI log.

Model replies, tool inputs, file names and error messages quoting them are untrusted: an
ESC sequence can clear the screen, set the clipboard (OSC 52) or retitle the terminal; a
newline or carriage return can forge a line such as `status: completed (exit 0)`; a line
starting with `::` is a GitHub Actions workflow command (`::add-mask::`, `::set-output`,
`::stop-commands::`), `##[`/`##vso[` Azure's. So every such text is escaped, never dropped
silently: control characters become visible `\\xNN` / `\\n` / `\\uNNNN` escapes, and a line
that would start a workflow command gets a backslash in front.
"""

from __future__ import annotations

import re

# C0 (but tab and newline, handled below), DEL, C1, the Unicode line/paragraph separators,
# and the bidirectional controls that reorder what a reader sees (Trojan Source).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_WORKFLOW_COMMAND = re.compile(r"^(\s*)(::|##\[|##vso\[)")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _neutralise(line: str) -> str:
    return _WORKFLOW_COMMAND.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", line)


def clean_line(text: str, limit: int | None = None) -> str:
    """One line: control characters and newlines escaped, no workflow command at its start."""
    text = _UNSAFE.sub(_escape, text).replace("\t", "\\t").replace("\n", "\\n")
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."
    return _neutralise(text)


def clean_lines(text: str) -> list[str]:
    """Several lines, each made safe on its own (tabs kept as spaces); for the model's last words."""
    return [
        _neutralise(_UNSAFE.sub(_escape, line.replace("\t", "    ")))
        for line in text.replace("\r\n", "\n").split("\n")
    ]


# user[:password]@ after a scheme. A password may hold `@` or `/` (unencoded, as people write
# them in configs): once a `:` follows the user name, everything up to the run's last `@` goes,
# which may take a little more than the userinfo but never leaves part of a password behind.
USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^\s/?#@:]*:[^\s]*|[^\s/?#@]*)@")


def strip_userinfo(url: str) -> str:
    """A URL without its `user:password@` part."""
    return USERINFO.sub(r"\1", url)
