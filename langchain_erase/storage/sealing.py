"""Per-row encryption of stored examples, so that erasing a row means erasing a small key row.

PostgreSQL never overwrites a row in place: a deleted row's bytes stay in its heap page,
TOAST chunks and index entries until the relation is rewritten, and rewriting a set's rows
costs time in proportion to the set. So the PostgreSQL backend stores each example sealed:

- the row's content (id, canonical JSON text, vector) is encrypted with AES-256-GCM
  (`cryptography`'s AESGCM; nothing here is hand-rolled) under a key of its own;
- that key is never stored: it is derived (HKDF-Expand, SHA-256) from a content key, itself
  derived from the store's log key (which the database never holds), and a random 32-byte
  salt kept in a narrow key row;
- the id, the set name and the row's id HMAC are bound as associated data, so a sealed
  row moved to another id or set does not open.

Erasing a row deletes its salt and rewrites only the small table holding that salt (see
`storage.pg_erasure`): the ciphertext left in old pages can then no longer be decrypted by
anyone, the log key's holders included. A database file, WAL segment or backup alone (without
the log key) never reveals content.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from langchain_erase.errors import StateFileError
from langchain_erase.storage.base import ExampleRow

__all__ = ["SALT_BYTES", "RowSealer"]

#: Bytes of a row's random salt (what the key row keeps).
SALT_BYTES = 32
_NONCE_BYTES = 12
_KEY_BYTES = 32
_LENGTHS = struct.Struct("<II")
_CONTENT_INFO = b"langchain-erase content key v1"
_ROW_INFO = b"langchain-erase row key v1:"


class RowSealer:
    """Seals and opens example rows of one example set under the store's log key."""

    def __init__(self, log_key: bytes, set_name: str) -> None:
        """Args:
        log_key: The store's log key (shared by every process of the store).
        set_name: The example set (bound into every row's associated data)."""
        self._content_key = HKDF(
            algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=_CONTENT_INFO
        ).derive(log_key)
        self._set = set_name.encode("utf-8", "surrogatepass")

    @staticmethod
    def new_salt() -> bytes:
        """Returns:
        A fresh random salt for one row's key."""
        return os.urandom(SALT_BYTES)

    def _cipher(self, salt: bytes) -> AESGCM:
        row_key = HKDFExpand(
            algorithm=hashes.SHA256(), length=_KEY_BYTES, info=_ROW_INFO + salt
        ).derive(self._content_key)
        return AESGCM(row_key)

    def _aad(self, id_hash: str) -> bytes:
        return self._set + b"\0" + id_hash.encode("ascii")

    def seal(self, row: ExampleRow, id_hash: str, salt: bytes) -> bytes:
        """Encrypt one row.

        Args:
            row: The example row.
            id_hash: The row's id HMAC (its key in the database).
            salt: The row's salt (from `new_salt`).

        Returns:
            nonce || AES-GCM ciphertext of (id, example, vector).

        Raises:
            UnicodeEncodeError: The id or text is not valid Unicode (a lone surrogate).
        """
        ident = row.id.encode("utf-8")  # strict: what is sealed always opens
        text = row.example.encode("utf-8")
        plain = _LENGTHS.pack(len(ident), len(text)) + ident + text + row.vector
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._cipher(salt).encrypt(nonce, plain, self._aad(id_hash))

    def open(self, sealed: bytes, id_hash: str, salt: bytes) -> ExampleRow:
        """Decrypt one row.

        Args:
            sealed: What `seal` returned.
            id_hash: The row's id HMAC.
            salt: The row's salt.

        Returns:
            The example row.

        Raises:
            StateFileError: The row or its key was damaged or moved, or the log key differs
                from the one the row was sealed under.
        """
        try:
            plain = self._cipher(salt).decrypt(
                sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], self._aad(id_hash)
            )
            id_len, text_len = _LENGTHS.unpack_from(plain)
            start = _LENGTHS.size
            ident = plain[start : start + id_len].decode("utf-8")
            text = plain[start + id_len : start + id_len + text_len].decode("utf-8")
        except (InvalidTag, ValueError, struct.error):
            raise StateFileError(
                "a stored example does not decrypt: the row or its key is damaged, or this "
                "process uses another log key than the one the store was written with"
            ) from None
        return ExampleRow(ident, text, plain[start + id_len + text_len :])
