"""Who runs what inside a sandbox, and with which environment; shared by every backend.

Nothing here names Docker: the user, the base environment, the control directory
and the variables that make tools trust the host's CA bundle (a TLS-intercepting
proxy's) hold for any runtime that runs the sandbox image.
"""

from __future__ import annotations

UID = GID = 1000
HOME = "/home/agent"
CONTROL_DIR = "/tmp/.patchwright"  # patchwright's own files in a sandbox (shell state, base index)

# Where patchwright's own processes in the sandbox (the shell driver, the file helper, the diff)
# find their programs: only folders the sandbox user cannot write, so a `~/.local/bin/git` or
# `python3` the model planted never runs in their place. The model's commands and the setup
# command get MODEL_PATH, with the user's own bin folder first (where `pip install --user` puts
# scripts).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MODEL_PATH = f"{HOME}/.local/bin:{SYSTEM_PATH}"

BASE_ENV = {
    "HOME": HOME,
    "USER": "agent",
    "LANG": "C.UTF-8",
    "PATH": SYSTEM_PATH,
    "PIP_BREAK_SYSTEM_PACKAGES": "1",
    "PIP_USER": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "TERM": "dumb",
}
CA_FILE_NAME = "host-ca.pem"
CA_ENV_NAMES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
    "npm_config_cafile",
)


def network_env(proxy_env: dict[str, str], ca_path: str | None) -> dict[str, str]:
    """What a command with the network on needs: the host's proxy, and trust in the CA at `ca_path`
    (pip, npm, git, curl and Python's ssl each read another variable)."""
    trusted = {name: ca_path for name in CA_ENV_NAMES} if ca_path else {}
    return {**proxy_env, **trusted}
