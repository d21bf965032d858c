"""Protocol transcripts kept as evidence, with credentials masked at the source.

A line the client sends during an authentication exchange is recorded as ``[REDACTED]``
whatever it contains; everything else still goes through pattern redaction on write.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from probes.redaction import MASK, redact


@dataclass
class Transcript:
    name: str
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def client(self, text: str, secret: bool = False) -> None:
        self._add("C", MASK if secret else text)

    def server(self, text: str) -> None:
        self._add("S", text)

    def note(self, text: str) -> None:
        self._add("#", text)

    def _add(self, who: str, text: str) -> None:
        elapsed = time.monotonic() - self.started
        for line in text.rstrip("\r\n").splitlines() or [""]:
            self.lines.append(f"{elapsed:7.3f} {who}: {line.rstrip()}")

    def text(self) -> str:
        return redact("\n".join(self.lines) + "\n")

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.txt"
        path.write_text(self.text())
        return path
