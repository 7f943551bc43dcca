"""The lake's error and snapshot types, shared by the Spark and the JVM-free side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class LakeError(RuntimeError):
    """The lake cannot do what was asked; the message says what to run or fix."""


@dataclass(frozen=True)
class Snapshot:
    """One Iceberg snapshot of the table: what a training run pins and a rollback returns to."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    summary: dict[str, str]
    is_current: bool = False

    @property
    def added_records(self) -> int:
        """Rows the snapshot's commit added (0 when Iceberg's summary does not say)."""
        return int(self.summary.get("added-records", 0))

    @property
    def total_records(self) -> int:
        """Rows in the table as of this snapshot (0 when Iceberg's summary does not say)."""
        return int(self.summary.get("total-records", 0))


def format_snapshots(snapshots: list[Snapshot]) -> str:
    """The snapshot list as a fixed-width table for the terminal, current one marked."""
    lines = [f"{'':2}{'snapshot_id':>20}  {'parent_id':>20}  {'committed_at':19}  {'op':9}  rows"]
    for s in snapshots:
        mark = "*" if s.is_current else ""
        parent = "" if s.parent_id is None else str(s.parent_id)
        lines.append(
            f"{mark:2}{s.snapshot_id:>20}  {parent:>20}  {s.committed_at:%Y-%m-%d %H:%M:%S}  "
            f"{s.operation:9}  {s.total_records} (+{s.added_records})"
        )
    lines.append("* = current snapshot")
    return "\n".join(lines)
