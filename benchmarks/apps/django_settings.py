"""Benchmark app: Django on PostgreSQL, its settings, URLs and views in one module.

Served by gunicorn as `django_app:application` with `DJANGO_SETTINGS_MODULE=django_settings`
(`/hello`: a trivial JSON response; `/db`: one query through Django's connection, psycopg 3).
"""

import os

from django.db import connection
from django.http import JsonResponse
from django.urls import path

SECRET_KEY = "benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "django_settings"
INSTALLED_APPS: list = []
MIDDLEWARE: list = []
USE_TZ = True
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
        "NAME": os.environ.get("BENCH_PG_NAME", "test"),
        "USER": os.environ.get("BENCH_PG_USER", "postgres"),
        # one connection kept for the worker's life, as the Flask and FastAPI apps do
        "CONN_MAX_AGE": None,
    }
}


def hello(request):
    return JsonResponse({"message": "hello", "items": [1, 2, 3]})


def db(request):
    with connection.cursor() as cur:
        cur.execute("SELECT id, name FROM bench_items WHERE id = %s", [42])
        row = cur.fetchone()
    return JsonResponse({"id": row[0], "name": row[1]})


urlpatterns = [path("hello", hello), path("db", db)]
