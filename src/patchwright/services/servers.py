"""How each kind of server starts, answers a readiness probe, and is reached from the sandbox.

Each service container runs one small supervisor script (SUPERVISOR + the kind's part) as the
unprivileged `svc` user: it initialises the data directory on tmpfs once, then keeps the
server running. The `service` tool's stop/start/restart act on the server process through the
files in /tmp/pw, so the data survives a restart as it would on a real server.
"""

from __future__ import annotations

import shlex
from urllib.parse import quote

from patchwright.services.spec import ServiceSpec

LOOPBACK = "127.0.0.1"
DATA_DIR = "/data"
CONTROL = "/tmp/pw"
PG_BIN = "/usr/lib/postgresql/15/bin"

PG_TEMPLATE = "/usr/share/patchwright/pg-template"  # a cluster made at image build (build-rootfs.sh)
INITIALIZED = f"{CONTROL}/initialized"  # the first start's own setup (roles, database) is done

INITIAL_SETUP_FAILED = 3  # wait_probe's exit code once the first start's own setup has failed
FAILED = f"{CONTROL}/failed"
# The end of a run: not trapped, so the supervisor ends at once, and with it docker-init and every
# process of the container, which the engine then removes (auto_remove); the engine does not wait
# for that before it answers, as it would for SIGKILL (pod.py).
END_SIGNAL = "SIGUSR1"

# The loop every kind shares: `init` once, then `serve` again whenever the server ends, unless
# `$CONTROL/stopped` exists (the service tool's stop); `after_start` once, after the first
# start. A failure there stops the server and marks it failed; the container stays, so its log
# (why) can be read. TERM ends the server and the loop; END_SIGNAL ends everything at once.
SUPERVISOR = f"""
set -u
mkdir -p {CONTROL}
init
pid=
trap 'touch {CONTROL}/stopped; [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait; exit 0' TERM INT
while :; do
  if [ -e {CONTROL}/stopped ]; then rm -f {CONTROL}/pid; sleep 0.2; continue; fi
  serve & pid=$!
  echo "$pid" > {CONTROL}/pid
  [ -e {INITIALIZED} ] || {{ after_start && touch {INITIALIZED}; }} || {{ kill -KILL "$pid"; touch {FAILED}; exec sleep infinity; }}
  wait "$pid"
  code=$?
  rm -f {CONTROL}/pid
  [ -e {CONTROL}/stopped ] || {{ echo "[patchwright] server exited with $code; restarting"; sleep 0.5; }}
done
"""

# The data directory is a copy of the image's template cluster (initdb costs seconds), whose
# credentials are set once the server is up, over its unix socket (trusted locally only).
POSTGRES = f"""
init() {{
  [ -s {DATA_DIR}/PG_VERSION ] && return 0
  if [ -s {PG_TEMPLATE}/PG_VERSION ]; then
    cp -a {PG_TEMPLATE}/. {DATA_DIR}/ && chmod 700 {DATA_DIR} && return 0
  fi
  {PG_BIN}/initdb -D {DATA_DIR} -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \\
    --no-locale -N > {CONTROL}/init.log 2>&1 || {{ cat {CONTROL}/init.log; exit 1; }}
}}
after_start() {{
  for i in $(seq 600); do {PG_BIN}/pg_isready -q -h {CONTROL} -p "$PW_PORT" && break; sleep 0.05; done
  [ "$PW_AUTH" = trust ] && sed -i 's/scram-sha-256$/trust/' {DATA_DIR}/pg_hba.conf
  printf '%s\\n' "$PW_SETUP_SQL" | {PG_BIN}/psql -X -q -v ON_ERROR_STOP=1 -h {CONTROL} -p "$PW_PORT" \\
    -U postgres -d postgres > {CONTROL}/init.log 2>&1 || {{ cat {CONTROL}/init.log; return 1; }}
  [ "$PW_AUTH" = trust ] && {PG_BIN}/pg_ctl -D {DATA_DIR} reload -s
  return 0
}}
serve() {{
  exec {PG_BIN}/postgres -D {DATA_DIR} -c listen_addresses={LOOPBACK} -c port="$PW_PORT" \\
    -c unix_socket_directories={CONTROL} -c fsync=off -c synchronous_commit=off -c full_page_writes=off \\
    -c max_connections=100 -c shared_buffers=64MB
}}
"""

MARIADB = f"""
init() {{
  [ -d {DATA_DIR}/mysql ] && return 0
  if ! mariadb-install-db --no-defaults --datadir={DATA_DIR} --skip-test-db --auth-root-authentication-method=normal \\
      --innodb-use-native-aio=0 --innodb-flush-method=fsync > {CONTROL}/init.log 2>&1; then
    cat {CONTROL}/init.log; exit 1
  fi
  printf '%s\\n' "$PW_INIT_SQL" > {CONTROL}/init.sql
}}
serve() {{
  exec mariadbd --no-defaults --datadir={DATA_DIR} --socket={CONTROL}/mysqld.sock --pid-file={CONTROL}/mysqld.pid \\
    --bind-address={LOOPBACK} --port="$PW_PORT" --skip-name-resolve --skip-log-bin --tmpdir=/tmp \\
    --innodb-use-native-aio=0 --innodb-flush-method=fsync --innodb-buffer-pool-size=64M \\
    --innodb-flush-log-at-trx-commit=0 --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \\
    --init-file={CONTROL}/init.sql
}}
after_start() {{ :; }}
"""

REDIS = f"""
init() {{ :; }}
after_start() {{ :; }}
serve() {{
  exec redis-server --bind {LOOPBACK} --port "$PW_PORT" --dir {DATA_DIR} --save '' --appendonly no \\
    --protected-mode no --daemonize no
}}
"""

SCRIPTS = {"postgres": POSTGRES, "mariadb": MARIADB, "redis": REDIS}


def script(spec: ServiceSpec) -> str:
    """The container's command: the kind's init/serve functions, then the supervisor loop."""
    return SCRIPTS[spec.kind] + SUPERVISOR


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _postgres_setup_sql(spec: ServiceSpec) -> str:
    """The run's credentials on the template cluster, as the official image would make them."""
    password = _sql_string(spec.password)
    user = f'"{spec.user}"'  # spec.py allows no quotes in names
    lines = []
    if spec.user == "postgres":
        lines.append(f"ALTER ROLE postgres PASSWORD {password};")
    else:
        lines.append(f"CREATE ROLE {user} SUPERUSER LOGIN PASSWORD {password};")
    if spec.database != "postgres":
        lines.append(f'CREATE DATABASE "{spec.database}" OWNER {user};')
    return "\n".join(lines)


def _mariadb_init_sql(spec: ServiceSpec) -> str:
    """Runs at each server start (idempotent): root's password from anywhere on loopback, the
    database, and the app user if one is named."""
    password = _sql_string(spec.password)
    lines = [
        f"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY {password};",
        "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;",
        f"ALTER USER 'root'@'localhost' IDENTIFIED BY {password};",
        "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';",  # passwordless, and they match first
    ]
    if spec.database:
        lines.append(f"CREATE DATABASE IF NOT EXISTS `{spec.database}`;")
    if spec.user != "root":
        lines += [
            f"CREATE USER IF NOT EXISTS '{spec.user}'@'%' IDENTIFIED BY {password};",
            f"GRANT ALL ON `{spec.database}`.* TO '{spec.user}'@'%';",
        ]
    return "\n".join(lines)


def container_env(spec: ServiceSpec) -> dict[str, str]:
    """What the supervisor script reads (never the host's environment)."""
    env = {
        "PW_PORT": str(spec.port),
        "PW_USER": spec.user,
        "PW_PASSWORD": spec.password,
        "PW_DATABASE": spec.database,
        "PW_AUTH": "trust" if spec.trust else "scram-sha-256",
        "LANG": "C.UTF-8",
        "HOME": "/tmp",
    }
    if spec.kind == "mariadb":
        env["PW_INIT_SQL"] = _mariadb_init_sql(spec)
    if spec.kind == "postgres":
        env["PW_SETUP_SQL"] = _postgres_setup_sql(spec)
    return env


def probe(spec: ServiceSpec) -> list[str]:
    """The readiness probe run in the service container; exit 0 means it answers queries."""
    port = str(spec.port)
    if spec.kind == "postgres":
        check = f"{PG_BIN}/pg_isready -q -h {LOOPBACK} -p {port} -d {shlex.quote(spec.database)}"
    elif spec.kind == "mariadb":
        check = f"mariadb --no-defaults -h {LOOPBACK} -P {port} -uroot -p\"$PW_PASSWORD\" -e 'select 1'"
    else:
        check = f'[ "$(redis-cli -h {LOOPBACK} -p {port} ping)" = PONG ]'
    return ["bash", "-c", f"[ -e {INITIALIZED} ] && [ -e {CONTROL}/pid ] && {check} >/dev/null 2>&1"]


def wait_probe(spec: ServiceSpec, seconds: float, interval: float = 0.05) -> list[str]:
    """The probe repeated inside the container for up to `seconds`: one exec, not one per try."""
    once = probe(spec)[2]
    tries = max(1, int(seconds / interval))
    failed = f"[ -e {FAILED} ] && exit {INITIAL_SETUP_FAILED}"
    return [
        "bash",
        "-c",
        f"for i in $(seq {tries}); do {failed}; {once} && exit 0; sleep {interval}; done; exit 1",
    ]


def sandbox_env(specs: list[ServiceSpec]) -> dict[str, str]:
    """The conventional variables for the sandbox: DATABASE_URL for the first SQL service,
    PG*, MYSQL_*, REDIS_URL."""
    env: dict[str, str] = {}
    for spec in specs:
        user, password = quote(spec.user, safe=""), quote(spec.password, safe="")
        if spec.kind == "postgres":
            env.update(
                PGHOST=LOOPBACK,
                PGPORT=str(spec.port),
                PGUSER=spec.user,
                PGPASSWORD=spec.password,
                PGDATABASE=spec.database,
            )
            env.setdefault(
                "DATABASE_URL", f"postgresql://{user}:{password}@{LOOPBACK}:{spec.port}/{spec.database}"
            )
        elif spec.kind == "mariadb":
            env.update(
                MYSQL_HOST=LOOPBACK,
                MYSQL_TCP_PORT=str(spec.port),
                MYSQL_USER=spec.user,
                MYSQL_PASSWORD=spec.password,
                MYSQL_DATABASE=spec.database,
            )
            env.setdefault(
                "DATABASE_URL", f"mysql://{user}:{password}@{LOOPBACK}:{spec.port}/{spec.database}"
            )
        else:
            env["REDIS_URL"] = f"redis://{LOOPBACK}:{spec.port}/{spec.database or '0'}"
    return env
