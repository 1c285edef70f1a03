"""The scale-out target: the gateway with PostgreSQL storage and Redis limits (issue 14, goal 5).

``gateway-<server>-scaleout`` is the bench's gateway (same tier, keys, models and load) with
``storage.url = "postgresql://…"`` and ``limits.storage = "redis://…"``, as
``config/multi-node.toml`` sets them. Neither is the machine's: Redis is a throwaway
``redis-server`` and PostgreSQL a throwaway cluster, both from ``tests/services.py`` (free
ports, temporary directories, stopped and deleted at exit), and the database is created for
the run and dropped after it. Both run on the load's core (this process's affinity, which
they inherit), so the gateway's core is the gateway's alone, as on a deployment where they
are other machines.

What they did for the gateway is read from their own counters over the whole run (warm-up,
every phase) and divided by the requests sent: Redis commands by name and read events
(``total_reads_processed``: one per round trip, however many commands a pipeline holds), the
database's transactions and inserted rows, and the CPU time of both servers.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from pathlib import Path
from typing import Any

from bench.targets import Gateway, cpu_seconds, process_tree

PREFIX = "gwbench:"


def _services() -> Any:
    """``tests.services`` (throwaway Redis and PostgreSQL); imported late: it needs pytest."""
    from tests import services

    return services


def start_services() -> None:
    """This process's throwaway ``redis-server`` and PostgreSQL cluster (stopped at its exit)."""
    services = _services()
    services.start_redis()
    if not services.redis_ping():
        raise RuntimeError("the bench's throwaway redis-server did not start")
    services.ensure_postgres()


def create_database() -> str:
    """A new database on the throwaway cluster, for one run: its name."""
    database = "gw_bench_" + secrets.token_hex(4)
    created = _services()._psql(f"CREATE DATABASE {database}", "postgres")
    if created.returncode != 0:
        raise RuntimeError(f"CREATE DATABASE failed: {created.stderr}")
    return database


def database_url(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{_services().PG_PORT}/{database}"


def scaleout_config(text: str, sqlite_url: str, database: str) -> str:
    """The bench's gateway configuration with this database and the throwaway Redis."""
    text = text.replace(f'url = "{sqlite_url}"', f'url = "{database_url(database)}"')
    return text.replace('storage = "memory://"',
                        f'storage = "{_services().REDIS_URL}"\nredis_prefix = "{PREFIX}"')


def drop_database(database: str) -> None:
    """Drop the run's database and the bench's Redis keys."""
    services = _services()
    services._psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", "postgres")
    if services.redis_ping():
        import redis

        client = redis.Redis.from_url(services.REDIS_URL)
        for key in client.scan_iter(f"{PREFIX}*"):
            client.delete(key)
        client.close()


class Scaleout(Gateway):
    """The gateway on PostgreSQL and Redis, each a throwaway instance of this run's own."""

    suffix = "-scaleout"

    def __init__(self, workdir: Path, upstream_url: str, server: str = "uvicorn") -> None:
        super().__init__(workdir, upstream_url, server)
        self.database = ""
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}

    # --- the services ---

    def prepare(self) -> None:
        start_services()
        self.database = create_database()
        super().prepare()

    @property
    def pg_url(self) -> str:
        return database_url(self.database)

    def config_text(self) -> str:
        return scaleout_config(super().config_text(), f"sqlite:///{self.workdir}/gateway.db",
                               self.database)

    def wait_ready(self) -> None:
        super().wait_ready()
        self.before = self.counters()

    def stop(self, timeout: float = 15.0) -> int | None:
        code = super().stop(timeout)
        with contextlib.suppress(Exception):
            self.after = self.counters()
        return code

    def ledger_rows(self) -> tuple[int, int]:
        rows = self._query("SELECT count(*), count(*) FILTER (WHERE status = 200) FROM usage")
        return int(rows[0][0]), int(rows[0][1])

    def cleanup(self) -> None:
        if self.database:
            drop_database(self.database)

    # --- what they did ---

    def _query(self, sql: str, database: str | None = None) -> list[list[str]]:
        result = _services()._psql(sql, database or self.database)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return [line.split("|") for line in result.stdout.splitlines() if line]

    def counters(self) -> dict[str, Any]:
        """Redis's and PostgreSQL's cumulative counters and CPU seconds, now."""
        import redis

        services = _services()
        client = redis.Redis.from_url(services.REDIS_URL)
        try:
            stats = client.info("stats")
            commands = {name.removeprefix("cmdstat_"): int(value["calls"])
                        for name, value in client.info("commandstats").items()}
            redis_pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        row = self._query(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_returned + tup_fetched "
            f"FROM pg_stat_database WHERE datname = '{self.database}'", "postgres")[0]
        postmaster = Path(services._pg_dir()) / "data" / "postmaster.pid"
        pg_pid = int(postmaster.read_text().split()[0])
        return {
            "redis_reads": int(stats["total_reads_processed"]),
            "redis_commands": commands,
            "redis_cpu_s": cpu_seconds(process_tree(redis_pid)),
            "pg_commits": int(row[0]),
            "pg_rollbacks": int(row[1]),
            "pg_inserted": int(row[2]),
            "pg_rows_read": int(row[3]),
            "pg_cpu_s": cpu_seconds(process_tree(pg_pid)),
        }

    def side_work(self) -> dict[str, Any]:
        """What Redis and PostgreSQL did over the run (after ``stop``): totals, not per request.

        The counters' own reads (an INFO and a query at each end) are in the figures: a few
        commands against thousands of requests.
        """
        if not self.before or not self.after:
            return {}
        b, a = self.before, self.after
        commands = {name: a["redis_commands"][name] - b["redis_commands"].get(name, 0)
                    for name in a["redis_commands"]}
        return {
            "redis_reads": a["redis_reads"] - b["redis_reads"],
            "redis_commands": {k: v for k, v in sorted(commands.items()) if v},
            "redis_cpu_s": a["redis_cpu_s"] - b["redis_cpu_s"],
            "pg_commits": a["pg_commits"] - b["pg_commits"],
            "pg_rollbacks": a["pg_rollbacks"] - b["pg_rollbacks"],
            "pg_inserted": a["pg_inserted"] - b["pg_inserted"],
            "pg_rows_read": a["pg_rows_read"] - b["pg_rows_read"],
            "pg_cpu_s": a["pg_cpu_s"] - b["pg_cpu_s"],
        }


def throughput_ceilings(seconds: float = 2.0) -> dict[str, float]:
    """redis-benchmark and pgbench against the throwaway instances (ops/s on the load's core).

    ``redis`` is INCRBY-like single commands without pipelining (``-P 1``), 16 clients;
    ``redis_p16`` the same with 16 commands a pipeline; ``pg_inserts`` pgbench with a
    one-row INSERT per transaction into a scratch table, 8 clients.
    """
    services = _services()
    out: dict[str, float] = {}
    for name, pipeline in (("redis", 1), ("redis_p16", 16)):
        done = subprocess.run(
            ["redis-benchmark", "-p", str(services.REDIS_PORT), "-t", "incr", "-n", "50000",
             "-c", "16", "-P", str(pipeline), "-q", "--csv"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        for line in done.stdout.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if cells and cells[0] == "INCR":
                out[name] = float(cells[1])
    database = "gw_bench_pgbench_" + secrets.token_hex(3)
    services._psql(f"CREATE DATABASE {database}", "postgres")
    try:
        services._psql("CREATE TABLE t (id bigserial primary key, v text)", database)
        script = Path(services._pg_dir()) / "insert.sql"
        script.write_text("INSERT INTO t (v) VALUES ('bench');\n")
        done = subprocess.run(
            ["pgbench", "-h", "127.0.0.1", "-p", str(services.PG_PORT), "-U", "postgres", "-n",
             "-c", "8", "-T", str(max(1, round(seconds))), "-f", str(script), database],
            capture_output=True, text=True, timeout=60, check=False,
        )
        for line in done.stdout.splitlines():
            if line.startswith("tps ="):
                out["pg_inserts"] = float(line.split()[2])
    finally:
        services._psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", "postgres")
    return out
