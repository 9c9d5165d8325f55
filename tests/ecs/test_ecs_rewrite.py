"""The pure ECS task definition rewrite: every rule, idempotence, and exact uninject."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumigo_injector.ecs.rewrite import EcsSettings, has_init_container, inject, uninject
from lumigo_injector.ecs.taskdef import (
    TaskDefinitionError,
    normalise,
    parse_task_definition,
    read_only_fields,
    validate_secret_arn,
)
from lumigo_injector.spec import names as constants
from tests.helpers.ecs import (
    CORPUS,
    FIXTURES,
    SSM_TOKEN_ARN,
    TOKEN_ARN,
    assert_valid_register_request,
    container,
    env,
    load,
    secrets,
)

WITH_TOKEN = EcsSettings(token_secret_arn=TOKEN_ARN)
INIT = constants.INIT_CONTAINER_NAME
BOOT = constants.BOOTSTRAP_PATH


def parsed(name: str) -> dict[str, Any]:
    return parse_task_definition((FIXTURES / name).read_text(), name)


def minimal(**container_fields: Any) -> dict[str, Any]:
    return {
        "family": "svc",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "python:3.12", **container_fields}],
    }


# --------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_input_and_injected_output_pass_botocores_ecs_model(name: str) -> None:
    before = parsed(name)
    assert_valid_register_request(before)
    for opts in (
        WITH_TOKEN,
        EcsSettings(),
        EcsSettings(token_secret_arn=SSM_TOKEN_ARN, endpoint="https://otlp.example.com"),
    ):
        after = inject(before, opts).task_definition
        assert_valid_register_request(after)
        assert_valid_register_request(uninject(after))


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_uninject_gives_back_the_normalised_input(name: str) -> None:
    before = parsed(name)
    after = inject(before, WITH_TOKEN).task_definition
    assert after != before
    assert uninject(after) == before
    assert uninject(before) == before  # nothing to remove


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_inject_is_idempotent(name: str) -> None:
    once = inject(parsed(name), WITH_TOKEN)
    twice = inject(once.task_definition, WITH_TOKEN)
    assert twice.task_definition == once.task_definition
    assert twice.injected == once.injected
    assert twice.warnings == once.warnings


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_every_chosen_container_gets_layer_and_init_runs_first(name: str) -> None:
    before = parsed(name)
    result = inject(before, WITH_TOKEN)
    td = result.task_definition
    assert result.injected
    assert has_init_container(td) and not has_init_container(before)
    init = container(td, INIT)
    assert init["essential"] is False  # SUCCESS dependencies need a non-essential target
    assert init["command"] == ["/lumigo-otel"]
    assert init["user"] == "0"  # task storage is root-owned 0755 on ECS
    assert init["readonlyRootFilesystem"] is True
    assert init["mountPoints"] == [
        {"sourceVolume": "lumigo-otel", "containerPath": "/lumigo-otel", "readOnly": False}
    ]
    assert {"name": "lumigo-otel"} in td["volumes"]  # task storage: no host path, Fargate-safe
    for name_ in result.injected:
        c = container(td, name_)
        assert {
            "sourceVolume": "lumigo-otel",
            "containerPath": "/lumigo-otel",
            "readOnly": True,
        } in c["mountPoints"]
        assert {"containerName": INIT, "condition": "SUCCESS"} in c["dependsOn"]
        e = env(c)
        assert e["PYTHONPATH"].split(":")[0] == BOOT
        assert "lumigo_opentelemetry" in e["AUTOWRAPT_BOOTSTRAP"].split(",")
        assert "OTEL_SERVICE_NAME" in e
        assert "LUMIGO_TRACER_TOKEN" not in e  # never a plain value
        assert "LUMIGO_TRACER_TOKEN" in secrets(c)
    for name_, reason in result.skipped:
        c = container(td, name_)
        assert c == container(before, name_), reason


# --------------------------------------------------------------------------- input shapes


def test_describe_output_is_unwrapped_and_read_only_fields_dropped() -> None:
    raw = load("describe-output.json")
    td = normalise(raw)
    for key in (
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
    ):
        assert key not in td
    assert td["tags"] == [{"key": "service", "value": "notifications"}]
    assert "volumes" not in td and "placementConstraints" not in td  # empty lists dropped
    c = td["containerDefinitions"][0]
    assert "mountPoints" not in c and "portMappings" not in c
    assert c["cpu"] == 0  # zero is a value, not an empty collection
    assert td["family"] == "notifications"
    assert_valid_register_request(td)


def test_read_only_fields_are_exactly_the_describe_only_fields() -> None:
    assert {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
    } <= read_only_fields()
    assert "family" not in read_only_fields()
    assert "containerDefinitions" not in read_only_fields()


def test_boto3_describe_response_with_response_metadata_is_accepted() -> None:
    raw = load("describe-output.json")
    raw["ResponseMetadata"] = {"HTTPStatusCode": 200}
    assert normalise(raw) == normalise(load("describe-output.json"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON: Expecting property name"),
        ("[]", "must be a JSON object"),
        ('{"family": "x"}', "no containers"),
        ('{"family": "x", "containerDefinitions": []}', "no containers"),
        ('{"containerDefinitions": [{"name": "a", "image": "i"}]}', "no 'family'"),
        ('{"family": "x", "containerDefinitions": [{"image": "i"}]}', "has no 'name'"),
        ('{"family": "x", "containerDefinitions": [{"name": "a"}]}', "'a' has no 'image'"),
        ('{"family": "x", "containerDefinitions": ["a"]}', "is not an object"),
        (
            '{"family": "x", "containerDefinitions": [{"name": "a", "image": "i"},'
            ' {"name": "a", "image": "j"}]}',
            "used twice",
        ),
        (
            '{"family": "x", "colour": "red",'
            ' "containerDefinitions": [{"name": "a", "image": "i"}]}',
            'Unknown parameter in input: "colour"',
        ),
        (
            '{"family": "x", "containerDefinitions": [{"name": "a", "image": "i", "envs": []}]}',
            'Unknown parameter in containerDefinitions[0]: "envs"',
        ),
        (
            '{"family": "x",'
            ' "containerDefinitions": [{"name": "a", "image": "i", "memory": "lots"}]}',
            "Invalid type for parameter containerDefinitions[0].memory",
        ),
        ('{"taskDefinition": {"family": "x"}, "extra": 1}', "unknown field(s) next to"),
    ],
)
def test_bad_input_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(TaskDefinitionError) as err:
        parse_task_definition(text)
    assert message in str(err.value)


# --------------------------------------------------------------------------- env rules


def test_existing_env_is_kept_ours_goes_first_and_uninject_restores_it() -> None:
    before = parsed("existing-env-secrets.json")
    td = inject(
        before, EcsSettings(token_secret_arn=TOKEN_ARN, endpoint="https://other.example.com")
    ).task_definition
    e = env(container(td, "billing"))
    assert e["PYTHONPATH"] == f"{BOOT}:/srv/billing/src:/srv/billing/vendor"
    assert e["AUTOWRAPT_BOOTSTRAP"] == "billing_hooks,lumigo_opentelemetry"  # as in Kubernetes
    assert e["OTEL_SERVICE_NAME"] == "billing-api"  # set by the user: kept
    assert e["LUMIGO_ENDPOINT"] == "https://collector.internal.example.com/v1/traces"
    s = secrets(container(td, "billing"))
    assert s["DB_PASSWORD"].endswith("parameter/billing/db-password")
    assert s["LUMIGO_TRACER_TOKEN"] == TOKEN_ARN
    deps = container(td, "billing")["dependsOn"]
    assert deps[0] == {"containerName": "migrate", "condition": "SUCCESS"}  # existing first
    assert deps[1] == {"containerName": INIT, "condition": "SUCCESS"}
    assert uninject(td) == before


def test_service_name_defaults_to_the_family() -> None:
    td = inject(parsed("fargate-awsvpc.json"), WITH_TOKEN).task_definition
    assert env(container(td, "api"))["OTEL_SERVICE_NAME"] == "orders-api"


def test_endpoint_is_set_only_when_given_and_an_existing_one_is_kept() -> None:
    plain = inject(minimal(), WITH_TOKEN).task_definition
    assert "LUMIGO_ENDPOINT" not in env(container(plain, "app"))
    given_ = inject(minimal(), EcsSettings(endpoint="http://127.0.0.1:4318")).task_definition
    assert env(container(given_, "app"))["LUMIGO_ENDPOINT"] == "http://127.0.0.1:4318"
    result = inject(
        minimal(environment=[{"name": "LUMIGO_ENDPOINT", "value": "https://mine"}]),
        EcsSettings(endpoint="https://theirs"),
    )
    assert env(container(result.task_definition, "app"))["LUMIGO_ENDPOINT"] == "https://mine"
    assert any("LUMIGO_ENDPOINT=https://mine; kept it" in w for w in result.warnings)
    from_secret = {"name": "LUMIGO_ENDPOINT", "valueFrom": SSM_TOKEN_ARN}
    result = inject(minimal(secrets=[from_secret]), EcsSettings(endpoint="https://theirs"))
    app = container(result.task_definition, "app")
    assert "LUMIGO_ENDPOINT" not in env(app) and secrets(app)["LUMIGO_ENDPOINT"] == SSM_TOKEN_ARN
    assert "container 'app' takes LUMIGO_ENDPOINT from a secret; kept it" in result.warnings


def test_every_injected_container_gets_its_name_and_enable_logs_only_when_asked() -> None:
    td = parsed("multi-container-firelens.json")
    plain = inject(td, WITH_TOKEN)
    assert len(plain.injected) == 2 and plain.skipped
    for name in plain.injected:
        assert env(container(plain.task_definition, name))["LUMIGO_CONTAINER_NAME"] == name
        assert "LUMIGO_ENABLE_LOGS" not in env(container(plain.task_definition, name))
    logs = inject(td, EcsSettings(token_secret_arn=TOKEN_ARN, enable_logs=True))
    for name in logs.injected:
        assert env(container(logs.task_definition, name))["LUMIGO_ENABLE_LOGS"] == "true"
    for name, _ in logs.skipped:  # sidecars get neither
        assert not {"LUMIGO_ENABLE_LOGS", "LUMIGO_CONTAINER_NAME"} & set(
            env(container(logs.task_definition, name))
        )
    assert uninject(logs.task_definition) == normalise(td)
    # re-injecting without the flag takes it away again
    again = inject(logs.task_definition, WITH_TOKEN).task_definition
    assert again == plain.task_definition


def test_users_own_logs_and_container_name_are_kept_even_from_secrets() -> None:
    user_secret = {"name": "LUMIGO_ENABLE_LOGS", "valueFrom": SSM_TOKEN_ARN}
    before = minimal(
        environment=[{"name": "LUMIGO_CONTAINER_NAME", "value": "web"}], secrets=[user_secret]
    )
    td = inject(before, EcsSettings(enable_logs=True)).task_definition
    app = container(td, "app")
    assert env(app)["LUMIGO_CONTAINER_NAME"] == "web"
    assert "LUMIGO_ENABLE_LOGS" not in env(app)
    assert secrets(app)["LUMIGO_ENABLE_LOGS"] == SSM_TOKEN_ARN
    assert uninject(td) == normalise(before)


def test_token_comes_only_through_secrets_from_a_secrets_manager_or_ssm_arn() -> None:
    for arn in (TOKEN_ARN, SSM_TOKEN_ARN):
        c = container(inject(minimal(), EcsSettings(token_secret_arn=arn)).task_definition, "app")
        assert c["secrets"] == [{"name": "LUMIGO_TRACER_TOKEN", "valueFrom": arn}]
        assert "LUMIGO_TRACER_TOKEN" not in env(c)
        assert arn not in json.dumps(c["environment"])


def test_a_plain_token_is_left_alone_with_a_warning() -> None:
    before = minimal(environment=[{"name": "LUMIGO_TRACER_TOKEN", "value": "t_123"}])
    result = inject(before, WITH_TOKEN)
    c = container(result.task_definition, "app")
    assert "secrets" not in c
    assert any("plain environment value" in w for w in result.warnings)
    assert uninject(result.task_definition) == normalise(before)


def test_an_existing_token_secret_is_kept_with_a_warning() -> None:
    result = inject(parsed("describe-output.json"), WITH_TOKEN)
    s = secrets(container(result.task_definition, "notifications"))
    assert s["LUMIGO_TRACER_TOKEN"].endswith(":secret:lumigo/token-Q1w2E3")
    assert any("already takes LUMIGO_TRACER_TOKEN" in w for w in result.warnings)


def test_no_token_at_all_warns() -> None:
    result = inject(minimal(), EcsSettings())
    assert "secrets" not in container(result.task_definition, "app")
    assert any("gets no LUMIGO_TRACER_TOKEN" in w for w in result.warnings)


@pytest.mark.parametrize(
    "arn",
    [
        TOKEN_ARN,
        SSM_TOKEN_ARN,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:lumigo-AbCdEf:token::",
        "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/token",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:t",
    ],
)
def test_valid_secret_arns(arn: str) -> None:
    assert validate_secret_arn(arn) == arn


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "t_0123456789abcdef",
        "lumigo/token",
        "arn:aws:s3:::bucket/token",
        "arn:aws:secretsmanager:us-east-1:12345:secret:token",
        "arn:aws:secretsmanager:us-east-1:123456789012:token",
        "arn:aws:ssm:us-east-1:123456789012:parameter",
        "arn:aws:ssm:us-east-1:123456789012:document/token",
        "arn:aws:secretsmanager:nowhere:123456789012:secret:token",
    ],
)
def test_invalid_secret_arns_are_rejected(arn: str) -> None:
    with pytest.raises(TaskDefinitionError, match="--token-secret-arn must be"):
        validate_secret_arn(arn)
    with pytest.raises(TaskDefinitionError):
        inject(minimal(), EcsSettings(token_secret_arn=arn))


# --------------------------------------------------------------------------- task-level rules


def test_missing_execution_role_warns_only_when_secrets_are_used() -> None:
    before = parsed("ec2-bridge.json")
    with_secret = inject(before, WITH_TOKEN)
    assert any("no executionRoleArn" in w for w in with_secret.warnings)
    without = inject(before, EcsSettings())
    assert not any("executionRoleArn" in w for w in without.warnings)
    fargate = inject(parsed("fargate-awsvpc.json"), WITH_TOKEN)
    assert not any("executionRoleArn" in w for w in fargate.warnings)


def test_registry_warning_only_when_init_image_comes_from_elsewhere() -> None:
    before = parsed("fargate-awsvpc.json")
    other = inject(before, WITH_TOKEN)
    assert any(
        "comes from public.ecr.aws" in w and "dkr.ecr.us-east-1" in w for w in other.warnings
    )
    same = inject(
        before,
        EcsSettings(
            token_secret_arn=TOKEN_ARN,
            init_image="123456789012.dkr.ecr.us-east-1.amazonaws.com/lumigo-init:1",
        ),
    )
    assert not any("init image comes from" in w for w in same.warnings)
    docker_hub = inject(
        minimal(), EcsSettings(init_image="lumigo/init:1", token_secret_arn=TOKEN_ARN)
    )
    assert not any("init image comes from" in w for w in docker_hub.warnings)  # both docker.io


def test_init_container_gets_memory_only_without_task_memory_and_awslogs_when_used() -> None:
    ec2 = container(inject(parsed("ec2-bridge.json"), WITH_TOKEN).task_definition, INIT)
    assert ec2["memoryReservation"] > 0  # EC2 without task memory: ECS requires it
    assert "logConfiguration" not in ec2  # json-file is not copied
    fargate = container(inject(parsed("fargate-awsvpc.json"), WITH_TOKEN).task_definition, INIT)
    assert "memoryReservation" not in fargate and "memory" not in fargate
    assert fargate["logConfiguration"]["options"]["awslogs-group"] == "/ecs/orders-api"


def test_init_image_option_and_reinjection_updates_it() -> None:
    first = inject(minimal(), WITH_TOKEN).task_definition
    assert container(first, INIT)["image"] == constants.DEFAULT_INIT_IMAGE
    second = inject(
        first, EcsSettings(token_secret_arn=TOKEN_ARN, init_image="example.com/init:2")
    ).task_definition
    assert [c["name"] for c in second["containerDefinitions"]].count(INIT) == 1
    assert container(second, INIT)["image"] == "example.com/init:2"
    assert second["volumes"] == [{"name": "lumigo-otel"}]
    assert uninject(second) == normalise(minimal())


# --------------------------------------------------------------------------- container choice


def test_sidecars_are_skipped_by_default_and_injected_when_named() -> None:
    mesh = inject(parsed("appmesh-envoy.json"), WITH_TOKEN)
    assert mesh.injected == ("app",)
    assert dict(mesh.skipped).keys() == {"envoy", "xray-daemon"}
    named = inject(
        parsed("appmesh-envoy.json"),
        EcsSettings(token_secret_arn=TOKEN_ARN, containers=("app", "envoy")),
    )
    assert named.injected == ("app", "envoy")
    bridge = inject(parsed("ec2-bridge.json"), WITH_TOKEN)
    assert bridge.injected == ("reports",)
    assert "non-Python server image (redis)" in dict(bridge.skipped)["cache"]
    lookalike = minimal()
    lookalike["containerDefinitions"][0]["image"] = "example.com/team/redis-worker:1"
    assert inject(lookalike, WITH_TOKEN).injected == ("app",)  # a Python RQ worker, say
    firelens = inject(parsed("multi-container-firelens.json"), WITH_TOKEN)
    assert firelens.injected == ("web", "worker")
    assert "FireLens" in dict(firelens.skipped)["log_router"]


def test_containers_option_limits_injection() -> None:
    before = parsed("ec2-bridge.json")
    result = inject(before, EcsSettings(token_secret_arn=TOKEN_ARN, containers=("reports",)))
    assert result.injected == ("reports",)
    assert container(result.task_definition, "cache") == container(before, "cache")
    assert uninject(result.task_definition) == before


@pytest.mark.parametrize(
    ("names", "message"),
    [(("nope",), "no container named 'nope'"), ((INIT,), "injector's own container")],
)
def test_containers_option_rejects_unknown_names(names: tuple[str, ...], message: str) -> None:
    with pytest.raises(TaskDefinitionError, match=message):
        inject(parsed("ec2-bridge.json"), EcsSettings(containers=names))


def test_a_task_of_only_sidecars_is_an_error() -> None:
    td = minimal()
    td["containerDefinitions"][0]["image"] = "envoyproxy/envoy:v1.30"
    with pytest.raises(TaskDefinitionError, match="no app container"):
        inject(td, WITH_TOKEN)


def test_unsupported_tasks_are_errors() -> None:
    windows = minimal()
    windows["runtimePlatform"] = {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}
    with pytest.raises(TaskDefinitionError, match="Linux-only"):
        inject(windows, WITH_TOKEN)
    full = minimal()
    full["containerDefinitions"] = [{"name": f"c{i}", "image": "python:3.12"} for i in range(10)]
    with pytest.raises(TaskDefinitionError, match="ECS maximum"):
        inject(full, WITH_TOKEN)
    taken = minimal()
    taken["volumes"] = [{"name": "lumigo-otel", "host": {"sourcePath": "/data"}}]
    with pytest.raises(TaskDefinitionError, match="already has a volume named 'lumigo-otel'"):
        inject(taken, WITH_TOKEN)
    clash = minimal(mountPoints=[{"sourceVolume": "x", "containerPath": "/lumigo-otel"}])
    clash["volumes"] = [{"name": "x"}]
    with pytest.raises(TaskDefinitionError, match="already mounts something at /lumigo-otel"):
        inject(clash, WITH_TOKEN)


# --------------------------------------------------------------------------- exact uninject


@pytest.mark.parametrize(
    "environment",
    [
        [{"name": "PYTHONPATH", "value": ""}],
        [{"name": "AUTOWRAPT_BOOTSTRAP", "value": "lumigo_opentelemetry"}],
        [{"name": "AUTOWRAPT_BOOTSTRAP", "value": "a, b"}],
        [{"name": "PYTHONPATH", "value": f"{BOOT}:/app"}],
        [{"name": "OTEL_SERVICE_NAME", "value": "svc"}],  # equals the family
    ],
)
def test_uninject_is_exact_when_values_look_like_ours(environment: list[dict[str, str]]) -> None:
    before = minimal(environment=environment, dockerLabels={"team": "a"})
    td = inject(before, WITH_TOKEN).task_definition
    assert uninject(td) == normalise(before)


def test_uninject_keeps_edits_made_after_injection() -> None:
    td = inject(
        minimal(environment=[{"name": "PYTHONPATH", "value": "/app"}]), WITH_TOKEN
    ).task_definition
    edited = copy.deepcopy(td)
    for e in container(edited, "app")["environment"]:
        if e["name"] == "PYTHONPATH":
            e["value"] += ":/extra"
    assert env(container(uninject(edited), "app"))["PYTHONPATH"] == "/app:/extra"


def test_uninject_without_our_labels_still_removes_the_layer() -> None:
    td = inject(
        minimal(environment=[{"name": "PYTHONPATH", "value": "/app"}]), WITH_TOKEN
    ).task_definition
    del container(td, "app")["dockerLabels"]
    out = uninject(td)
    assert not has_init_container(out)
    c = container(out, "app")
    assert env(c)["PYTHONPATH"] == "/app"
    assert "mountPoints" not in c and "dependsOn" not in c
    assert "volumes" not in out


def test_labels_record_what_was_added_and_merged() -> None:
    td = inject(parsed("existing-env-secrets.json"), WITH_TOKEN).task_definition
    labels = container(td, "billing")["dockerLabels"]
    assert labels["lumigo.io/injected"] == constants.DEFAULT_LAYER_VERSION
    assert json.loads(labels[constants.ANNOTATION_INJECTION_STATE]) == {
        "added": ["LUMIGO_CONTAINER_NAME", "LUMIGO_TRACER_TOKEN"],
        "changed": {
            "PYTHONPATH": "/srv/billing/src:/srv/billing/vendor",
            "AUTOWRAPT_BOOTSTRAP": "billing_hooks",
        },
    }


_NAMES = st.sampled_from(
    [
        "PYTHONPATH",
        "AUTOWRAPT_BOOTSTRAP",
        "OTEL_SERVICE_NAME",
        "LUMIGO_ENDPOINT",
        "LUMIGO_ENABLE_LOGS",
        "LUMIGO_CONTAINER_NAME",
        "OTHER",
    ]
)
_VALUES = st.sampled_from(["", "/app", BOOT, f"{BOOT}:/x", "lumigo_opentelemetry", "a,b", "svc"])


@settings(max_examples=150, deadline=None)
@given(
    environment=st.lists(
        st.fixed_dictionaries({"name": _NAMES, "value": _VALUES}),
        max_size=4,
        unique_by=lambda e: e["name"],
    ),
    endpoint=st.sampled_from([None, "http://127.0.0.1:4318", "/app"]),
    token=st.booleans(),
    logs=st.booleans(),
)
def test_property_uninject_inverts_inject(
    environment: list[dict[str, str]], endpoint: str | None, token: bool, logs: bool
) -> None:
    before = normalise(minimal(environment=environment))
    opts = EcsSettings(
        token_secret_arn=TOKEN_ARN if token else None, endpoint=endpoint, enable_logs=logs
    )
    once = inject(before, opts).task_definition
    assert uninject(once) == before
    assert inject(once, opts).task_definition == once
    user = {e["name"]: e["value"] for e in environment}
    ours = env(container(once, "app"))
    assert ours["LUMIGO_CONTAINER_NAME"] == user.get("LUMIGO_CONTAINER_NAME", "app")
    if "LUMIGO_ENABLE_LOGS" in user:
        assert ours["LUMIGO_ENABLE_LOGS"] == user["LUMIGO_ENABLE_LOGS"]
    else:
        assert ("LUMIGO_ENABLE_LOGS" in ours) is logs


@pytest.mark.parametrize(
    "existing",
    [
        [],
        [
            {"name": "PYTHONPATH", "value": "/app:/lib"},
            {"name": "AUTOWRAPT_BOOTSTRAP", "value": "x"},
        ],
        [{"name": "PYTHONPATH", "value": f"{BOOT}:/app"}],
    ],
)
def test_same_layer_env_as_the_kubernetes_mutation(existing: list[dict[str, str]]) -> None:
    from lumigo_injector.k8s import mutation

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "svc", "annotations": {constants.ANNOTATION_INJECT: "python"}},
        "spec": {"containers": [{"name": "app", "image": "python:3.12", "env": existing}]},
    }
    k8s = mutation.inject(pod, mutation.InjectionSettings(endpoint="http://127.0.0.1:4318"))
    assert k8s.injected, k8s.reason
    k8s_app = k8s.obj["spec"]["containers"][0]
    k8s_env = {e["name"]: e.get("value") for e in k8s_app["env"]}
    td = inject(
        minimal(environment=existing), EcsSettings(endpoint="http://127.0.0.1:4318")
    ).task_definition
    ecs_env = env(container(td, "app"))
    for name in ("PYTHONPATH", "AUTOWRAPT_BOOTSTRAP", "LUMIGO_ENDPOINT"):
        assert ecs_env[name] == k8s_env[name]
    k8s_mount = next(m for m in k8s_app["volumeMounts"] if m["name"] == constants.VOLUME_NAME)
    ecs_mount = container(td, "app")["mountPoints"][0]
    assert ecs_mount["containerPath"] == k8s_mount["mountPath"]
    k8s_init = k8s.obj["spec"]["initContainers"][0]
    ecs_init = container(td, INIT)
    assert (ecs_init["name"], ecs_init["image"]) == (k8s_init["name"], k8s_init["image"])
    assert ecs_init["command"] == k8s_init["args"]  # the entrypoint's destination argument


def test_unreadable_state_label_falls_back_to_removing_our_parts() -> None:
    td = inject(
        minimal(environment=[{"name": "AUTOWRAPT_BOOTSTRAP", "value": "x"}]), WITH_TOKEN
    ).task_definition
    container(td, "app")["dockerLabels"][constants.ANNOTATION_INJECTION_STATE] = "{not json"
    c = container(uninject(td), "app")
    # Without the record, values that could be the user's stay.
    assert env(c) == {
        "AUTOWRAPT_BOOTSTRAP": "x",
        "OTEL_SERVICE_NAME": "svc",
        "LUMIGO_CONTAINER_NAME": "app",
    }
    assert "dockerLabels" not in c and "mountPoints" not in c


def test_a_pythonpath_from_secrets_blocks_that_container() -> None:
    td = minimal()
    td["containerDefinitions"].append(
        {
            "name": "worker",
            "image": "python:3.12",
            "secrets": [{"name": "PYTHONPATH", "valueFrom": SSM_TOKEN_ARN}],
        }
    )
    result = inject(td, WITH_TOKEN)
    assert result.injected == ("app",)
    assert "PYTHONPATH comes from a secret" in dict(result.skipped)["worker"]
    with pytest.raises(TaskDefinitionError, match="'worker' cannot be injected"):
        inject(td, EcsSettings(token_secret_arn=TOKEN_ARN, containers=("app", "worker")))


def test_environment_files_warn_that_environment_wins() -> None:
    result = inject(parsed("existing-env-secrets.json"), WITH_TOKEN)
    assert any("'billing' reads environmentFiles" in w for w in result.warnings)
    assert not any("'migrate' reads" in w for w in result.warnings)


def test_the_last_of_duplicate_entries_is_the_one_merged() -> None:
    before = minimal(
        environment=[
            {"name": "PYTHONPATH", "value": "/first"},
            {"name": "PYTHONPATH", "value": "/last"},
        ]
    )
    td = inject(before, WITH_TOKEN).task_definition
    values = [e["value"] for e in container(td, "app")["environment"] if e["name"] == "PYTHONPATH"]
    assert values == ["/first", f"{BOOT}:/last"]
    assert uninject(td) == normalise(before)


@pytest.mark.parametrize(
    ("image", "sidecar"),
    [
        ("datadog/agent:7", True),  # Docker Hub: "datadog" is the account, not a registry
        ("public.ecr.aws/datadog/agent:latest", True),
        ("fluentd-mirror.example.com:5000/team/web:1", False),  # a marker in the host only
        ("envoy.registry.internal/shop/api@sha256:" + "0" * 64, False),
        ("registry.internal:5000/envoyproxy/envoy:v1.29", True),  # a registry port and a tag
        ("registry.internal:5000/library/redis:7", True),
    ],
)
def test_a_sidecar_is_told_by_its_repository_never_by_its_registry_host(
    image: str, sidecar: bool
) -> None:
    td = minimal(image=image)
    td["containerDefinitions"].append({"name": "web", "image": "python:3.12"})
    result = inject(td, WITH_TOKEN)
    assert ("app" not in result.injected) is sidecar, result.skipped


def test_uninject_after_the_user_removed_a_variable_we_had_extended() -> None:
    before = minimal(environment=[{"name": "PYTHONPATH", "value": "/app"}])
    injected = inject(before, WITH_TOKEN).task_definition
    edited = copy.deepcopy(injected)
    app_ = next(c for c in edited["containerDefinitions"] if c["name"] == "app")
    app_["environment"] = [e for e in app_["environment"] if e["name"] != "PYTHONPATH"]
    restored = uninject(edited)
    app_env = next(c for c in restored["containerDefinitions"] if c["name"] == "app")
    assert "PYTHONPATH" not in {e["name"] for e in app_env.get("environment", [])}
    assert not has_init_container(restored)


def test_a_container_with_its_own_token_secret_is_warned_about_only_when_we_bring_another() -> None:
    own = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team-token"
    td = minimal(secrets=[{"name": "LUMIGO_TRACER_TOKEN", "valueFrom": own}])
    without_arn = inject(td, EcsSettings())
    assert without_arn.injected == ("app",)
    assert not any("LUMIGO_TRACER_TOKEN" in w for w in without_arn.warnings)
    same = inject(td, EcsSettings(token_secret_arn=own))
    assert not any("LUMIGO_TRACER_TOKEN" in w for w in same.warnings)
    other = inject(td, WITH_TOKEN)
    assert any(f"already takes LUMIGO_TRACER_TOKEN from {own}" in w for w in other.warnings)


# --------------------------------------------------------------------------- limits and edges


def test_nine_containers_leave_room_for_the_init_container_as_the_tenth() -> None:
    nine = minimal()
    nine["containerDefinitions"] = [{"name": f"c{i}", "image": "python:3.12"} for i in range(9)]
    out = inject(nine, WITH_TOKEN).task_definition
    assert len(out["containerDefinitions"]) == 10  # the ECS maximum, reached and not passed


def test_init_container_is_listed_first_and_reserves_exactly_64_mib_on_ec2() -> None:
    out = inject(parsed("ec2-bridge.json"), WITH_TOKEN).task_definition
    first = out["containerDefinitions"][0]
    assert first["name"] == INIT
    assert first["memoryReservation"] == 64  # the figure docs/ecs.md gives


def test_an_injected_task_whose_init_container_was_broken_by_hand_is_a_clear_error() -> None:
    td = inject(minimal(), WITH_TOKEN).task_definition
    container(td, INIT)["colour"] = "red"
    with pytest.raises(TaskDefinitionError, match=r'Unknown parameter in .*"colour"'):
        inject(td, WITH_TOKEN)


def test_a_task_of_nothing_but_our_init_container_says_it_has_no_containers() -> None:
    td = inject(minimal(), WITH_TOKEN).task_definition
    td["containerDefinitions"] = [container(td, INIT)]
    with pytest.raises(TaskDefinitionError, match="has no containers"):
        inject(td, WITH_TOKEN)


def test_registry_warning_once_per_registry_and_only_for_injected_containers() -> None:
    td = minimal()
    td["containerDefinitions"] += [
        {"name": "worker", "image": "ghcr.io/acme/worker:1"},
        {"name": "jobs", "image": "ghcr.io/acme/jobs:1"},
    ]
    docker_hub = EcsSettings(init_image="lumigo/init:1", token_secret_arn=TOKEN_ARN)
    only_app = inject(td, dataclasses.replace(docker_hub, containers=("app",)))
    assert not any("init image comes from" in w for w in only_app.warnings)  # both docker.io
    every = inject(td, docker_hub)
    registry = [w for w in every.warnings if "init image comes from" in w]
    assert len(registry) == 1 and "'worker' from ghcr.io" in registry[0]


def test_containers_option_skips_the_others_and_uninject_leaves_them_alone() -> None:
    before = minimal()
    tool_env = [{"name": "PYTHONPATH", "value": f"{BOOT}:/tool"}]  # looks like ours, is not
    before["containerDefinitions"].append(
        {"name": "tool", "image": "python:3.12", "environment": tool_env}
    )
    result = inject(before, dataclasses.replace(WITH_TOKEN, containers=("app",)))
    assert result.injected == ("app",)
    assert result.skipped == (("tool", "not named in --containers"),)
    assert uninject(result.task_definition) == normalise(before)


@pytest.mark.parametrize(
    "image", ["registry.example.com:5000/envoyproxy/envoy", "localhost:5000/envoy"]
)
def test_a_sidecar_from_a_registry_with_a_port_and_no_tag_is_still_skipped(image: str) -> None:
    td = minimal()
    td["containerDefinitions"].append({"name": "proxy", "image": image})
    result = inject(td, WITH_TOKEN)
    assert result.injected == ("app",)
    assert "known sidecar image" in dict(result.skipped)["proxy"]
