"""DKIM in tests: keys made by `mailer dkim keygen`, its printed records served to dkimpy
as DNS, and dkimpy's verdict on every signature of a message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dkim
from typer.testing import CliRunner

from mailer.cli import app

_STRING = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class MadeKey:
    selector: str
    path: Path
    zone_line: str  # what `mailer dkim keygen` printed

    @property
    def spec(self) -> str:
        """This key in MAILER_DKIM_KEYS."""
        return f"{self.selector}:{self.path}"


def keygen(directory: Path, selector: str, algorithm: str, domain: str = "example.org") -> MadeKey:
    """A key made the way an operator makes one: `mailer dkim keygen`."""
    path = directory / f"{selector}.pem"
    result = CliRunner().invoke(
        app,
        ["dkim", "keygen", "--selector", selector, "--domain", domain]
        + ["--algorithm", algorithm, "--out", str(path)],
    )
    assert result.exit_code == 0, result.output
    return MadeKey(selector, path, result.stdout.strip())


def zone(*keys: MadeKey) -> dict[bytes, bytes]:
    """The DNS as a resolver would read the printed zone lines: name -> TXT text, the
    character-strings (at most 255 bytes each) joined."""
    records = {}
    for key in keys:
        name, klass, kind, rest = key.zone_line.split(" ", 3)
        strings = _STRING.findall(rest)
        assert (klass, kind) == ("IN", "TXT") and strings, key.zone_line
        assert all(len(s.encode()) <= 255 for s in strings)
        records[name.encode()] = "".join(strings).encode()
    return records


def verdicts(data: bytes, records: Mapping[bytes, bytes]) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature field of `data`, top first."""

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name, b"")

    head = data.split(b"\r\n\r\n", 1)[0]
    count = len(re.findall(rb"(?im)^dkim-signature:", head))
    checker = dkim.DKIM(data)
    found = []
    for index in range(count):
        try:
            found.append(bool(checker.verify(idx=index, dnsfunc=dns)))
        except (dkim.DKIMException, ValueError):  # ValueError: PyNaCl on a wrong key type
            found.append(False)
    return found


def signed_names(data: bytes, index: int = 0) -> list[str]:
    """The h= names of the index-th DKIM-Signature field."""
    fields = re.findall(rb"(?ims)^dkim-signature:(.*?)\r\n(?![ \t])", data)
    tags = re.sub(rb"\s+", b"", fields[index]).decode()
    return tags.split("h=")[1].split(";")[0].split(":")
