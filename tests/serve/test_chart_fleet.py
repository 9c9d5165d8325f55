"""The chart's fleet-safety values (catch-up, upgrades, rollback, metrics), rendered by the real
`helm` binary: the rendered environment is what `serve` reads into its settings, every
restarting action is off by default, the ServiceMonitor scrapes the health port's /metrics, and
bad values fail at install with the schema's message."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from lumigo_injector.commands import serve as serve_command
from lumigo_injector.serve.fleet.settings import FleetSettings
from tests.helpers.helm import Helm, find, helm_binary


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_binary(), tmp_path_factory.mktemp("helm-home"))


def fleet_settings(objs: Sequence[Mapping[str, Any]]) -> FleetSettings:
    """The FleetSettings `serve` builds from the rendered container's environment."""
    container = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: str(e["value"]) for e in container["env"] if "value" in e}
    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    return serve_command.from_args(parser.parse_args([]), env).fleet


def test_no_restarting_action_is_on_by_default(helm: Helm) -> None:
    objs = helm.template({})
    settings = fleet_settings(objs)
    assert settings.catch_up_restart is False
    assert settings.upgrade_rollout == "manual"
    assert settings.rollback is False
    assert not [o for o in objs if o["kind"] == "ServiceMonitor"]


def test_fleet_values_reach_the_injector_settings(helm: Helm) -> None:
    objs = helm.template(
        {
            "catchUp": {"restart": True},
            "upgrade": {"rollout": "automatic", "waveSize": 3},
            "rollback": {"enabled": True},
            "fleet": {"checkInterval": 5, "actionInterval": 60, "restartCooldown": 900},
        }
    )
    assert fleet_settings(objs) == FleetSettings(
        interval=5.0,
        catch_up_restart=True,
        upgrade_rollout="automatic",
        wave_size=3,
        rollback=True,
        min_action_interval=60.0,
        cooldown=900.0,
    )


def test_service_monitor_scrapes_the_health_port(helm: Helm) -> None:
    objs = helm.template(
        {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
        namespace="lumigo-system",
    )
    monitor = find(objs, "ServiceMonitor")
    service = find(objs, "Service", monitor["metadata"]["name"] + "-metrics")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["lumigo-system"]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["interval"] == "30s"
    (port,) = service["spec"]["ports"]
    assert port["name"] == endpoint["port"] and port["targetPort"] == "health"
    pod = find(objs, "Deployment")["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["upgrade.rollout=fast"], "/upgrade/rollout"),
        (["upgrade.waveSize=0"], "/upgrade/waveSize"),
        (["catchUp.restart=yes"], "/catchUp/restart"),
        (["fleet.checkInterval=0"], "/fleet/checkInterval"),
        (["metrics.serviceMonitor.interval=30"], "/metrics/serviceMonitor/interval"),
        (["rollback.enable=true"], "'enable' not allowed"),
    ],
)
def test_bad_fleet_values_fail_with_a_clear_message(
    helm: Helm, sets: list[str], message: str
) -> None:
    proc = helm.template_raw(sets=sets)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
