"""Local llama.cpp models: per-context locks, LangChain wrappers, GGUF conversion.

Imports only `errors` and the libraries it wraps; never the adapters above it (eviction on
delete is wired from the adapter side).
"""
