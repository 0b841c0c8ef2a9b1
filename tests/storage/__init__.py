"""The storage conformance suite: one set of tests that every storage backend runs."""
