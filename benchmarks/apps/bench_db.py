"""The benchmark apps' MariaDB connection settings (env overridable), shared by both apps."""

import os

import pymysql


def connect():
    return pymysql.connect(
        host=os.environ.get("BENCH_DB_HOST", "127.0.0.1"),
        port=int(os.environ.get("BENCH_DB_PORT", "3306")),
        user=os.environ.get("BENCH_DB_USER", "root"),
        password=os.environ.get("BENCH_DB_PASSWORD", ""),
        database=os.environ.get("BENCH_DB_NAME", "test"),
        autocommit=True,
    )
