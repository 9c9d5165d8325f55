"""Amazon ECS: the task-definition rewrite, pure and on `spec/`, and the few AWS calls.

`taskdef` (parse, normalise, validate), `containers` (which containers are apps), `rewrite`
(`inject`, `uninject`), `aws` (describe, register, update the service).
"""
