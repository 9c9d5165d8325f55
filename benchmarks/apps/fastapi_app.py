"""Benchmark app: FastAPI, a trivial JSON endpoint and a pymysql query endpoint."""

import os
import threading

import pymysql
from fastapi import FastAPI

app = FastAPI()
_local = threading.local()


def _db():
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = pymysql.connect(
            host=os.environ.get("BENCH_DB_HOST", "127.0.0.1"),
            port=int(os.environ.get("BENCH_DB_PORT", "3306")),
            user=os.environ.get("BENCH_DB_USER", "root"),
            password=os.environ.get("BENCH_DB_PASSWORD", ""),
            database=os.environ.get("BENCH_DB_NAME", "test"),
            autocommit=True,
        )
    return conn


@app.get("/hello")
def hello():
    return {"message": "hello", "items": [1, 2, 3]}


@app.get("/db")
def db():
    with _db().cursor() as cur:
        cur.execute("SELECT id, name FROM bench_items WHERE id = %s", (42,))
        row = cur.fetchone()
    return {"id": row[0], "name": row[1]}
