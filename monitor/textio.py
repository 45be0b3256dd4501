"""Reading user-supplied text and JSON Lines files, with one-line errors that name the file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import BinaryIO

from monitor.errors import ConfigError, InputError


def read_toml(path: Path, missing: str) -> dict:
    """A TOML file the config names; ConfigError naming the file (and `missing` when absent)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        raise ConfigError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text from bytes; InputError for binary data or another encoding."""
    if b"\x00" in data[:65536]:
        raise InputError(f"{name}: binary data, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > max(8, len(text[:65536]) // 100):
        raise InputError(f"{name}: binary data, not text")
    return text


def read_file_bytes(path: Path) -> bytes:
    with open_binary(path) as handle:
        return handle.read()


def open_binary(path: Path) -> BinaryIO:
    """The file opened for reading bytes; InputError naming it when it cannot be."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_json_objects(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL file."""
    objects = []
    for number, line in enumerate(decode_text(read_file_bytes(path), str(path)).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InputError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: not a JSON object")
        objects.append((number, row))
    return objects


def write_problem(exc: OSError, path: Path) -> str:
    """Why writing `path` failed, in words: names a regular file standing where a folder
    of the path should be (the OS only says "File exists" or "Not a directory")."""
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    return f"{blocker} is a file, not a folder" if blocker else exc.strerror or str(exc)
