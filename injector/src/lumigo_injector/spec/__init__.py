"""Every injection rule, defined once and free of I/O.

`names` (names and paths), `inject` (the one `lumigo.io/inject` parser), `workloads` (the
table of kinds), `env` (merging PYTHONPATH, AUTOWRAPT_BOOTSTRAP and OTEL_RESOURCE_ATTRIBUTES),
`naming` (service name and workload chain), `plain` (reading JSON-like data). Used by `k8s/`,
`ecs/`, `serve/` and the commands; imports nothing else of the injector.
"""
