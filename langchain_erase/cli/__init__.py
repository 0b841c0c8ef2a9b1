"""The ``langchain-erase`` command line (the top layer: it imports everything below it).

`main` parses and dispatches; the `demo` job lives in `cli.main`, the `eval` and `bench`
sub-commands in `cli.eval_commands`, argument helpers shared by both in `cli.args`.
"""

from langchain_erase.cli.main import build_parser, load_demo_examples, main

__all__ = ["build_parser", "load_demo_examples", "main"]
