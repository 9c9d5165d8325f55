"""Fleet safety in `serve`: missed pods (catch-up), layer upgrades, crash-loop rollback.

`settings` holds the options, `index` the pods and workloads the operator watches,
`controller` the periodic pass that reports (Events, metrics, log lines) and acts (restarts
and rollbacks, each opt-in and rate-limited), `handlers` the kopf side. The decisions
themselves are pure: `lumigo_injector.k8s.fleet` and `lumigo_injector.k8s.rollout`.
"""
