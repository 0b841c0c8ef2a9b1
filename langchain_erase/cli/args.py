"""Argument parsing shared by every `langchain-erase` subcommand.

A command-line mistake is refused while the arguments are parsed, before any model is loaded
or any file is written: one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from langchain_erase.errors import ModelNotFoundError
from langchain_erase.llms import MODEL_NAMES, resolve_model_path

__all__ = [
    "OneLineParser",
    "check_model",
    "existing_dir",
    "int_at_least",
    "output_dir",
    "usage_error_line",
]


def usage_error_line(prog: str, message: object) -> str:
    """The single line a refused command prints: `prog: error: message`, newlines folded.

    Args:
        prog: The program (and subcommand) name.
        message: The error or message to show.

    Returns:
        The line, ending with a newline.
    """
    text = " ".join(str(message).split())
    return f"{prog}: error: {text}\n"


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr and exit code 2
    (argparse prints the whole usage block first); subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        """Print `prog: error: message (see --help)` and exit with status 2.

        Args:
            message: What is wrong with the arguments.

        Returns:
            Never; raises `SystemExit(2)`.
        """
        self.exit(2, usage_error_line(self.prog, f"{message} (see --help)"))


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type` accepting integers >= `minimum`.

    Args:
        minimum: The smallest accepted value.

    Returns:
        A converter that raises `argparse.ArgumentTypeError` for anything else.
    """

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    convert.__name__ = f"integer >= {minimum}"
    return convert


def output_dir(text: str) -> Path:
    """An argparse `type` for a directory the command will create or write into. It is
    checked, not created, so that a refused command leaves nothing behind.

    Args:
        text: The path as given.

    Returns:
        The path.

    Raises:
        argparse.ArgumentTypeError: It exists and is not a directory, a name in it is too
            long, or its nearest existing ancestor is not a directory we can write into.
    """
    path = Path(text)
    existing, missing = path, []
    try:
        while not existing.exists():
            missing.append(existing.name)
            existing = existing.parent
        if not existing.is_dir():
            reason = f"{existing} is not a directory"
        else:
            # a directory made and removed proves we may write there (permissions, read-only
            # mounts and pseudo file systems alike; os.access says yes to root everywhere)
            os.rmdir(tempfile.mkdtemp(prefix=".langchain-erase-probe-", dir=existing))
            name_max = os.pathconf(existing, "PC_NAME_MAX")
            too_long = [n for n in missing if len(os.fsencode(n)) > name_max]
            reason = f"a name is longer than {name_max} bytes" if too_long else ""
    except (OSError, ValueError) as exc:  # too long a path, a NUL byte, a loop of links
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if reason:
        raise argparse.ArgumentTypeError(f"cannot create output directory {text!r}: {reason}")
    return path


def existing_dir(text: str) -> Path:
    """An argparse `type` for a directory the command reads (`--data-dir`): it must exist,
    so that a mistyped path is refused instead of quietly reading something else.

    Args:
        text: The path as given.

    Returns:
        The path.

    Raises:
        argparse.ArgumentTypeError: Nothing is there, or it is not a directory.
    """
    path = Path(text).expanduser()
    if not path.is_dir():
        reason = "is not a directory" if path.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"{text!r} {reason}")
    return path


def check_model(model: str) -> None:
    """Refuse a `--model` that is neither a known model name nor a GGUF file, without
    loading it (the named models are fetched or assembled only when loaded).

    Args:
        model: The `--model` value.

    Raises:
        ModelNotFoundError: The name is unknown and no GGUF file is at that path (the
            message names the option).
    """
    if model not in MODEL_NAMES:
        try:
            resolve_model_path(model)
        except ModelNotFoundError as err:
            raise ModelNotFoundError(f"argument --model: {err}") from None
