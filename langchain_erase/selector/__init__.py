"""The example selector's parts, each with one concern; `ERASEExampleSelector`
(`langchain_erase.example_selectors`) validates, embeds, locks and delegates to them.

- `params`: `SelectorParams`, the frozen, validated parameters (JSON of stores/snapshots).
- `embedder`: `Embedder`, embedding with the user's model and checking the vectors.
- `fingerprint`: `ModelFingerprint`, which embedding model built a store or snapshot.
- `audit`: logging of changes by keyed hashes, receipts, and deletion listeners.
- `snapshots`: `save_snapshot` / `load_snapshot`.
- `stores`: opening a store-backed session (`open_session`).

Layer: above `replication`, `storage`, `core`; beside the top-level `inputs`, `receipts`
and `selections`; below `example_selectors` (see docs/architecture.md).
"""
