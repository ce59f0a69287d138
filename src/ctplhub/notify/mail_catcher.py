"""A local mail catcher for ``ctplhub demo``: an SMTP server (aiosmtpd) on 127.0.0.1 that
keeps every message it receives as an ``.eml`` file, so a newcomer can open a reminder
the demo sent. Never a relay: it accepts everything and delivers nothing."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class _KeepEachMessage:
    def __init__(self, folder: Path, announce: Callable[[Path, str], None] | None) -> None:
        self._folder = folder
        self._announce = announce
        self._lock = threading.Lock()
        self._numbers = itertools.count(len(list(folder.glob("*.eml"))) + 1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self._lock:
            path = self._folder / f"{next(self._numbers):05d}.eml"
        path.write_bytes(content)
        if self._announce is not None:
            subject = message_from_bytes(content, policy=policy.default).get("Subject", "")
            self._announce(path, str(subject))
        return "250 OK: kept"


class MailCatcher:
    """``start()`` serves on ``host:port`` in a thread of its own; ``stop()`` ends it."""

    def __init__(
        self,
        folder: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 1025,
        announce: Callable[[Path, str], None] | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.host, self.port = folder, host, port
        self._controller = Controller(
            _KeepEachMessage(folder, announce), hostname=host, port=port, enable_SMTPUTF8=True
        )

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
