"""Benchmark app: FastAPI, a trivial JSON endpoint and a pymysql query endpoint."""

import threading

import bench_db
from fastapi import FastAPI

app = FastAPI()
_local = threading.local()


def _db():
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = bench_db.connect()
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
