"""`Pickling`: how a selector survives `pickle` and `copy.deepcopy`.

The pickled state is the parameters (their JSON), the per-process options, the deletion
listeners, the embedding model, and the selector's handle with what it needs: an
in-memory selector (`MemoryHandle`) travels with its rows and projection, so the copy
refits to the same state (equal `state_digest()`, same selections); a store-backed one
(`StoreHandle`) travels as target, set name, consistency and explicit log key only, and
the copy opens the store again with its own connection (never a shared one). A listener
or embedding model that cannot be pickled makes pickling fail with pickle's own error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from langchain_erase.selector.fingerprint import ModelFingerprint
from langchain_erase.selector.params import SelectorParams

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from langchain_erase.replication import Session
    from langchain_erase.selector.audit import DeletionListeners
    from langchain_erase.selector.stores import MemoryHandle, StoreHandle

__all__ = ["Pickling"]


class _Selector(Protocol):
    embeddings: Embeddings
    show_progress: bool
    _params: SelectorParams
    _similar_screen: bool
    _handle: MemoryHandle | StoreHandle
    _session: Session
    _listeners: DeletionListeners

    #: The selector's `_setup` (sets every attribute; see `ERASEExampleSelector`).
    _setup: Callable[..., Any]


class Pickling:
    """Mixin: `__getstate__` / `__setstate__` of a selector (see the module docstring)."""

    def __getstate__(self: _Selector) -> dict[str, Any]:
        """Returns:
        What pickle and deepcopy keep (never a connection)."""
        with self._session.lock:
            self._session.read()
            return {
                "embeddings": self.embeddings,
                "params": self._params.to_json(),
                "options": {
                    "show_progress": self.show_progress,
                    "similar_screen": self._similar_screen,
                },
                "handle": self._handle,
                "contents": self._handle.contents(self._session),
                "listeners": self._listeners,
            }

    def __setstate__(self: _Selector, state: dict[str, Any]) -> None:
        """Args:
        state: What `__getstate__` returned (a store is opened again)."""
        params = SelectorParams.from_json(state["params"], "the pickled selector")
        options, handle = state["options"], state["handle"]
        fingerprint = ModelFingerprint(state["embeddings"])
        session = handle.reopen(params, state["contents"], fingerprint, options["similar_screen"])
        self._setup(
            state["embeddings"],
            params,
            handle,
            session,
            listeners=state["listeners"],
            fingerprint=fingerprint,
            **options,
        )
