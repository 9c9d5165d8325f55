"""Span export: the OTLP/HTTP exporter to Lumigo and the debug span dump file."""
