"""The Python programs the host starts inside the sandbox, and the prologue they all run first.

Each program (the shell driver, the file helper) is one stdlib-only source file sent to the
sandbox's `python3 -I -S -B -c` (-I: neither the repository nor PYTHON* variables reach its
imports). The prologue makes the process non-dumpable before it reads a byte from the host, so
the model's processes (the same uid) can neither read nor write its memory nor open its
descriptors through /proc; something already tracing it makes it refuse to start.
"""

from __future__ import annotations

from pathlib import Path

FUTURE = "from __future__ import annotations\n"

PROLOGUE = """
def _pw_make_undumpable() -> None:
    try:
        import ctypes
    except ImportError:
        raise SystemExit("patchwright: the sandbox's python3 has no ctypes; cannot protect its helpers")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE, 0
        raise SystemExit(f"patchwright: prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}")
    with open("/proc/self/status") as status:
        if any(line.split()[1:2] != ["0"] for line in status if line.startswith("TracerPid:")):
            raise SystemExit("patchwright: a helper process is being traced; refusing to start")


_pw_make_undumpable()
del _pw_make_undumpable
"""


def program_source(file_name: str) -> str:
    """`file_name` (a module beside this one) behind the prologue; its own future import is hoisted."""
    body = Path(__file__).with_name(file_name).read_text(encoding="utf-8")
    return FUTURE + PROLOGUE + body.replace(FUTURE, "", 1)


def program_argv(source: str, *args: str, python: str = "python3") -> list[str]:
    return [python, "-I", "-S", "-B", "-c", source, *args]
