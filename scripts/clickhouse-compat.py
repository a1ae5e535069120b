"""Checks that Ioto's ClickHouse schema works on a current ClickHouse release.

Only ClickHouse 18.16 installs as a server on the test machines, while users run current releases.
This applies every migration of `migrations/clickhouse/` to chdb (ClickHouse in-process, a current
release) the way `ioto migrate` does on a server that supports TTL (statements split on ';' at line
ends, `{{TTL expr}}` rendered as a TTL clause), then writes session updates and CDRs into the
landing tables and checks that every materialized view fills its cube with the right totals.

Not covered yet: the SELECT/ALTER statements the adapter itself sends (they are assembled in Rust;
moving them where a check can reach them is part of the usage-port split).

Exits non-zero, naming the statement, on the first failure.
"""

import pathlib
import re
import sys
import tempfile

import chdb
from chdb import session as chs

ROOT = pathlib.Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations" / "clickhouse"
TTL = re.compile(r"\{\{TTL (.*?)\}\}", re.S)


def statements(sql: str):
    """The same split as `ClickHouseMigration::statements(ttl_supported = true)`."""
    for part in sql.split(";\n"):
        stmt = TTL.sub(lambda m: "TTL " + m.group(1), part.strip()).strip().rstrip(";").strip()
        lines = [l.strip() for l in stmt.splitlines()]
        if stmt and not all(l == "" or l.startswith("--") for l in lines):
            yield stmt


def main() -> int:
    with tempfile.TemporaryDirectory() as path:
        s = chs.Session(path)
        version = s.query("SELECT version()", "CSV").bytes().decode().strip().strip('"')
        print(f"chdb {chdb.__version__}, ClickHouse {version}")
        s.query("CREATE DATABASE IF NOT EXISTS ioto_compat")
        s.query("USE ioto_compat")
        s.query(
            "CREATE TABLE IF NOT EXISTS ioto_schema_migrations "
            "(version UInt32, name String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"
        )
        count = 0
        for file in sorted(MIGRATIONS.glob("*.sql")):
            for stmt in statements(file.read_text()):
                head = " ".join(stmt.split())[:90]
                try:
                    s.query(stmt)
                except Exception as e:  # noqa: BLE001 - report and stop
                    print(f"FAIL {file.name}: {head}\n  {e}")
                    return 1
                count += 1
                print(f"ok   {file.name}: {head}")
        print(f"{count} DDL statements applied")

        # The cubes: two updates of one session across midnight, and one CDR.
        s.query(
            "INSERT INTO session_updates VALUES "
            "('t1','c1','89490200001234567892','s1','2026-11-21 23:50:00','2026-11-21 23:55:00','2026-11-21 23:00:00',"
            "'2026-11-21','2026-11-01','262-01','LTE','10.0.0.1','',0,100,10,100,10),"
            "('t1','c1','89490200001234567892','s1','2026-11-21 23:50:00','2026-11-22 00:05:00','2026-11-22 00:00:00',"
            "'2026-11-22','2026-11-01','262-01','LTE','10.0.0.1','',1,150,30,50,20)"
        )
        s.query(
            "INSERT INTO cdrs VALUES ('t1','c1','cdr-1','89490200001234567892','2026-11-21 23:50:00',"
            "'2026-11-22 00:05:00','2026-11-21','2026-11-01','262-01',150,30,1)"
        )
        checks = [
            ("live_sessions", "SELECT total_in, total_out FROM live_sessions FINAL", "150,30"),
            ("usage_hourly", "SELECT sum(bytes_in), sum(bytes_out), count() FROM usage_hourly FINAL", "150,30,2"),
            ("usage_monthly", "SELECT sum(bytes_in), sum(bytes_out) FROM usage_monthly FINAL", "150,30"),
            ("usage_daily", "SELECT sum(bytes_up) FROM usage_daily", "150"),
            ("billing_daily", "SELECT sum(bytes_in), sum(bytes_out) FROM billing_daily", "150,30"),
            ("billing_monthly", "SELECT sum(bytes_in), sum(bytes_out) FROM billing_monthly", "150,30"),
            ("customer_usage_daily", "SELECT sum(bytes_in) FROM customer_usage_daily", "150"),
            ("customer_usage_monthly", "SELECT sum(bytes_in) FROM customer_usage_monthly", "150"),
        ]
        for table, query, want in checks:
            try:
                got = s.query(query, "CSV").bytes().decode().strip()
            except Exception as e:  # noqa: BLE001
                print(f"FAIL {table}: {query}\n  {e}")
                return 1
            if got != want:
                print(f"FAIL {table}: {query} gave {got!r}, expected {want!r}")
                return 1
            print(f"ok   {table} = {got}")
        s.close()
    print("the schema works on ClickHouse", version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
