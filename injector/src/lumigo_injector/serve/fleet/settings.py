"""Typed options of the fleet pass (built by `commands/serve.py` from flags and environment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UpgradeRollout = Literal["manual", "automatic"]
UPGRADE_ROLLOUTS = ("manual", "automatic")


@dataclass(frozen=True)
class FleetSettings:
    """What the operator does about missed pods, old layers and crash loops."""

    #: Seconds between two passes over the watched pods and workloads.
    interval: float = 10.0
    #: Restart workloads running pods that ask for injection and are not injected.
    catch_up_restart: bool = False
    #: `automatic`: restart workloads running an older layer, in waves; `manual`: report only.
    upgrade_rollout: UpgradeRollout = "manual"
    #: Workloads restarted together in one upgrade wave.
    wave_size: int = 1
    #: Pause injection of workloads whose injected rollout crash-loops, and take it back.
    rollback: bool = False
    #: At least this many seconds between two restarting actions (waves, catch-ups).
    min_action_interval: float = 30.0
    #: A workload is restarted again at the earliest this many seconds after the last time.
    cooldown: float = 600.0
