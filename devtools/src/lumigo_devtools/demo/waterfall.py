"""Render received spans as a per-trace waterfall for a terminal (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from lumigo_devtools.receiver import ReceivedSpan

BAR_WIDTH = 30
# Attributes worth a glance, in the order they are shown.
KEY_ATTRIBUTES = (
    "http.request.method",
    "http.method",
    "http.route",
    "url.full",
    "http.url",
    "http.response.status_code",
    "http.status_code",
    "db.statement",
    "http.request.body",
)
VALUE_WIDTH = 80


def group_traces(spans: Iterable[ReceivedSpan]) -> list[list[ReceivedSpan]]:
    """Spans grouped by trace, traces ordered by their first span's start."""
    by_trace: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    traces = [sorted(v, key=lambda s: s.start_ns) for v in by_trace.values()]
    return sorted(traces, key=lambda t: t[0].start_ns)


def services(trace: list[ReceivedSpan]) -> set[str]:
    return {s.service for s in trace}


def _ordered_tree(trace: list[ReceivedSpan]) -> list[tuple[int, ReceivedSpan]]:
    ids = {s.span_id for s in trace}
    children: dict[str, list[ReceivedSpan]] = defaultdict(list)
    roots: list[ReceivedSpan] = []
    for span in trace:
        if span.parent_span_id and span.parent_span_id in ids:
            children[span.parent_span_id].append(span)
        else:
            roots.append(span)
    out: list[tuple[int, ReceivedSpan]] = []

    def walk(span: ReceivedSpan, depth: int) -> None:
        out.append((depth, span))
        for child in sorted(children[span.span_id], key=lambda s: s.start_ns):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda s: s.start_ns):
        walk(root, 0)
    return out


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def render_trace(trace: list[ReceivedSpan]) -> list[str]:
    """Lines for one trace: a header, then one line per span plus its key attributes."""
    start = min(s.start_ns for s in trace)
    end = max(s.end_ns for s in trace)
    total = max(end - start, 1)
    lines = [
        f"trace {trace[0].trace_id}  ({len(trace)} spans, {total / 1e6:.1f} ms, "
        f"services: {', '.join(sorted(services(trace)))})"
    ]
    rows = _ordered_tree(trace)
    label_width = max(len("  " * d + s.name) for d, s in rows) + 2
    service_width = max(len(s.service) for _, s in rows) + 2
    for depth, span in rows:
        offset = int((span.start_ns - start) / total * BAR_WIDTH)
        length = max(1, round((span.end_ns - span.start_ns) / total * BAR_WIDTH))
        length = min(length, BAR_WIDTH - offset) or 1
        bar = " " * offset + "█" * length
        label = ("  " * depth + span.name).ljust(label_width)
        lines.append(
            f"  {label}{span.service.ljust(service_width)}{span.kind[:6].ljust(7)}"
            f"|{bar.ljust(BAR_WIDTH)}| {span.duration_ms:7.1f} ms"
        )
        indent = " " * (4 + 2 * depth)
        for key in KEY_ATTRIBUTES:
            if key in span.attributes:
                lines.append(f"{indent}· {key} = {_short(span.attributes[key])}")
        for key, value in sorted(span.attributes.items()):
            if key.startswith("lumigo.execution_tags."):
                lines.append(f"{indent}· {key} = {_short(value)}")
    return lines


def render(spans: Iterable[ReceivedSpan]) -> str:
    """Every trace's waterfall, separated by blank lines."""
    return "\n\n".join("\n".join(render_trace(t)) for t in group_traces(spans))
