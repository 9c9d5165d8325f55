"""The `bench_items` table the apps' `/db` endpoints read, in MariaDB and PostgreSQL."""

from __future__ import annotations


def ensure_db() -> None:
    """`bench_items` (100 rows) in MariaDB at 127.0.0.1:3306, database `test`."""
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_items (id INT PRIMARY KEY, name VARCHAR(64))")
        cur.execute("SELECT COUNT(*) FROM bench_items")
        if cur.fetchone()[0] < 100:
            cur.executemany(
                "REPLACE INTO bench_items VALUES (%s, %s)",
                [(i, f"item-{i}") for i in range(100)],
            )
    conn.commit()
    conn.close()


def ensure_pg() -> str | None:
    """The Django app's table in PostgreSQL (127.0.0.1:5432, database `test`); why it could
    not be made, or None."""
    try:
        import psycopg

        conn = psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True)
    except Exception as exc:  # no PostgreSQL: the Django rows are left out, with a note
        return f"PostgreSQL at 127.0.0.1:5432 unavailable ({exc}); the Django rows are left out"
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_items (id INT PRIMARY KEY, name TEXT)")
        conn.execute(
            "INSERT INTO bench_items SELECT i, 'item-' || i FROM generate_series(0, 99) AS i "
            "ON CONFLICT (id) DO NOTHING"
        )
    return None
