"""Receipts: what each unlearning request did, for audit logs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DeletionReceipt"]


class DeletionReceipt(BaseModel):
    """Proof of one deletion: whether it needed a refit, why, and the state digests.

    `digest_after` equals the `state_digest()` of a selector freshly fitted without the
    example; `reason` is "none" for the constant-time path.
    """

    model_config = ConfigDict(frozen=True)

    example_id: str
    refit: bool
    reason: Literal["none", "init_seed", "center_moved", "stop_rule"]
    iteration: int | None = Field(
        default=None, description="Lloyd iteration (or seeding round) that forced the refit."
    )
    seconds: float = Field(ge=0.0, description="Wall time of the deletion.")
    digest_before: str
    digest_after: str
    position: int | None = Field(
        default=None,
        description="Change-log position of this deletion in the store (None without one).",
    )
    erasure_complete: bool = Field(
        default=True,
        description="False if the store could not yet erase the deleted bytes from its "
        "write-ahead log (readers held it); the store's next write completes it.",
    )
    erasure_error: str | None = Field(
        default=None,
        description="Why the erasure status could not be read after the deletion was "
        "committed (e.g. the store became unavailable); the deletion stands either way.",
    )
