"""Benchmark app: Flask, a trivial JSON endpoint and a pymysql query endpoint."""

import bench_db
from flask import Flask, jsonify

app = Flask(__name__)
_conn = None


def _db():
    global _conn
    if _conn is None:
        _conn = bench_db.connect()
    return _conn


@app.get("/hello")
def hello():
    return jsonify(message="hello", items=[1, 2, 3])


@app.get("/db")
def db():
    with _db().cursor() as cur:
        cur.execute("SELECT id, name FROM bench_items WHERE id = %s", (42,))
        row = cur.fetchone()
    return jsonify(id=row[0], name=row[1])
