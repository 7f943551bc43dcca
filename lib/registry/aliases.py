"""Deploying is moving aliases: `champion` serves, `previous` is the rollback target, `challenger` a candidate.

Alias moves are ordered so that a process killed half-way always leaves a valid champion:
`previous` is written before `champion` moves, and `champion` moves in a single call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lib import faults
from lib.config import Settings
from lib.registry.versions import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    RegistryError,
    VersionInfo,
    _client,
    describe,
    get_alias,
    require_champion,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Promotion:
    """An alias move: what `champion` pointed at before and after."""

    before: VersionInfo | None
    after: VersionInfo

    @property
    def changed(self) -> bool:
        """Whether the alias actually moved (a first promotion always does)."""
        return self.before is None or self.before.version != self.after.version


def set_alias(settings: Settings, alias: str, version: str | int) -> None:
    """Point `alias` of the configured model at `version`, moving it if it was elsewhere."""
    _client(settings).set_registered_model_alias(settings.model_name, alias, str(version))


def _delete_alias(client: MlflowClient, name: str, alias: str) -> None:
    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def promote(settings: Settings, version: str | int, *, forced: bool = False) -> Promotion:
    """Make `version` the champion; the old champion becomes `previous`.

    Order matters for crash safety: `previous` is set first (champion still valid), then
    `champion` moves in one call; only then is the now-redundant `challenger` alias cleared.
    """
    client = _client(settings)
    name, target = settings.model_name, str(version)
    describe(settings, target)
    before = get_alias(settings, CHAMPION)
    if before is not None and before.version == target:
        return Promotion(before, before)
    if before is not None:
        client.set_registered_model_alias(name, PREVIOUS, before.version)
    faults.reached(settings, "promote.previous_set")
    client.set_registered_model_alias(name, CHAMPION, target)
    faults.reached(settings, "promote.champion_set")
    challenger = get_alias(settings, CHALLENGER)
    if challenger is not None and challenger.version == target:
        _delete_alias(client, name, CHALLENGER)
    client.set_model_version_tag(name, target, "promoted_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if forced:
        client.set_model_version_tag(name, target, "promotion_forced", "true")
    log.info("%s: champion %s -> %s", name, before.version if before else "-", target)
    return Promotion(before, describe(settings, target))


def undo_promotion(settings: Settings, promotion: Promotion, previous: VersionInfo | None) -> None:
    """Put `champion` and `previous` back where they were before `promotion`.

    Used when the server refused the new version; the refused one is kept as `challenger` so it can
    be inspected.
    """
    if promotion.before is None or not promotion.changed:
        return
    client = _client(settings)
    name = settings.model_name
    client.set_registered_model_alias(name, CHAMPION, promotion.before.version)
    faults.reached(settings, "redeploy.undo")
    if previous is None:
        _delete_alias(client, name, PREVIOUS)
    else:
        client.set_registered_model_alias(name, PREVIOUS, previous.version)
    client.set_registered_model_alias(name, CHALLENGER, promotion.after.version)
    client.set_model_version_tag(name, promotion.after.version, "promotion_undone_at",
                                 datetime.now(timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
    log.warning("%s: promotion of %s undone, champion is %s again", name, promotion.after.version,
                promotion.before.version)  # fmt: skip


def rollback(settings: Settings) -> Promotion:
    """Move `champion` back to `previous`; the version rolled back from becomes `previous`.

    `champion` moves first, so a crash between the two calls still leaves the rollback done;
    running rollback again then swaps back.
    """
    client = _client(settings)
    name = settings.model_name
    current = require_champion(settings)
    prev = get_alias(settings, PREVIOUS)
    if prev is None or prev.version == current.version:
        raise RegistryError(f"model {name} has no previous version to roll back to (champion is v{current.version})")
    client.set_registered_model_alias(name, CHAMPION, prev.version)
    client.set_registered_model_alias(name, PREVIOUS, current.version)
    client.set_model_version_tag(
        name, current.version, "rolled_back_at", datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    log.info("%s: rolled champion back %s -> %s", name, current.version, prev.version)
    return Promotion(current, describe(settings, prev.version))
