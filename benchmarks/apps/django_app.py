"""Benchmark app: the WSGI entry point of the Django app (settings in django_settings.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")
application = get_wsgi_application()
