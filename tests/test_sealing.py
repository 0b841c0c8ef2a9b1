"""Per-row sealing of the PostgreSQL backend (AES-GCM under keys derived from the log key and
a per-row salt): round trip, and every way a sealed row can fail to open."""

from __future__ import annotations

import pytest

from langchain_erase.errors import StateFileError
from langchain_erase.storage.base import ExampleRow, id_key
from langchain_erase.storage.sealing import SALT_BYTES, RowSealer

KEY = b"sealing-test-key"
ROW = ExampleRow("alice@example.com", '{"input":"très secret","output":"x"}', b"\x00\x01" * 48)


def sealed() -> tuple[RowSealer, bytes, str, bytes]:
    sealer = RowSealer(KEY, "set-a")
    idh = id_key(KEY, ROW.id)
    salt = sealer.new_salt()
    return sealer, sealer.seal(ROW, idh, salt), idh, salt


def test_a_sealed_row_opens_to_itself_and_shows_nothing_in_the_clear() -> None:
    sealer, blob, idh, salt = sealed()
    assert len(salt) == SALT_BYTES and sealer.open(blob, idh, salt) == ROW
    for part in (ROW.id.encode(), b"secret", ROW.vector[:8]):
        assert part not in blob


@pytest.mark.parametrize(
    "damage",
    ["bit_flipped", "truncated", "other_salt", "other_id", "other_set", "other_log_key"],
)
def test_a_damaged_moved_or_foreign_row_does_not_open(damage: str) -> None:
    sealer, blob, idh, salt = sealed()
    if damage == "bit_flipped":
        blob = blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]
    elif damage == "truncated":
        blob = blob[:-1]
    elif damage == "other_salt":
        salt = sealer.new_salt()
    elif damage == "other_id":
        idh = id_key(KEY, "bob@example.com")
    elif damage == "other_set":
        sealer = RowSealer(KEY, "set-b")
    else:
        sealer = RowSealer(b"another key", "set-a")
    with pytest.raises(StateFileError, match="does not decrypt"):
        sealer.open(blob, idh, salt)
