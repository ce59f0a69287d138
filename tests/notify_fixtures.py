"""Helpers for the delivery tests (tests/unit/notify, tests/integration/test_delivery_*,
test_worker): a message as ``Outbox.claim`` returns it, and small real servers (an SMTP
server from aiosmtpd and an HTTP receiver) that can fail, stall and come back."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ctplhub.services.reminder_ports import OutboxMessage

DAYTIME = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing: not quiet hours


def outbox_message(**overrides: Any) -> OutboxMessage:
    base: dict[str, Any] = {
        "id": 41,
        "subscription_id": 7,
        "channel": "email",
        "address": "zhang.wei@example.cn",
        "language": "zh-CN",
        "kind": "before_30d",
        "rule_days": 30,
        "plate": "苏E·12345",
        "vin_masked": "LSVAU2180N2******",
        "insurer_code": "PICC",
        "insurer_name": "中国人民财产保险",
        "policy_no_masked": "…0001",
        "covered_until": datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
        "unsubscribe_token": "tok-abc",
        "unsubscribe_url": "http://127.0.0.1:8000/v1/subscriptions/7/unsubscribe?token=tok-abc",
        "attempts": 1,
        "due_at": datetime(2026, 12, 1, 16, 0, tzinfo=UTC),
    }
    base.update(overrides)
    return OutboxMessage(**base)


def with_id(message: OutboxMessage, message_id: int) -> OutboxMessage:
    return replace(message, id=message_id)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- SMTP ------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What a real aiosmtpd server received; ``refuse_with`` makes it answer RCPT with an
    error code (e.g. 451 try later, 550 no such mailbox)."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse_with: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def ids(self) -> list[str]:
        with self.lock:
            return [str(m["X-CTPL-Message-Id"]) for m in self.messages]


class SmtpServer:
    """aiosmtpd on 127.0.0.1:``port`` in its own thread; stop() and start() again to
    simulate a relay that goes down and comes back on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(
            self.mailbox, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- HTTP ------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpBehaviour:
    """How the receiver answers: ``statuses`` are used up one per request (then
    ``default``); ``delay_s`` stalls each answer (a slow receiver)."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay_s: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default 5 drops SYNs when 8+ clients connect at once


class HttpReceiver:
    """A real HTTP/1.1 server (keep-alive) recording every POST it answers."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.behaviour = HttpBehaviour()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    b = receiver.behaviour
                    status = b.statuses.pop(0) if b.statuses else b.default
                    delay = b.delay_s
                if delay:
                    time.sleep(delay)
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers.items()), body, status))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a timeout test, a killed worker)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def acknowledged_ids(self) -> list[str]:
        with self.lock:
            return [r.headers["X-CTPL-Message-Id"] for r in self.received if 200 <= r.status < 300]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- an in-memory Outbox (the port's fake, for unit tests of the delivery pass) --------


@dataclass
class MemoryRow:
    message: OutboxMessage
    state: str = "pending"
    next_attempt_at: datetime = DAYTIME
    attempts: int = 0
    claimed_until: datetime | None = None
    last_error: str | None = None


class MemoryOutbox:
    """Keeps rows in a dict and follows the contract of ``Outbox`` (one lock, so the
    delivery pass's thread and the test see the same rows)."""

    def __init__(self, messages: list[OutboxMessage], *, due: datetime = DAYTIME) -> None:
        self.rows = {m.id: MemoryRow(m, next_attempt_at=due) for m in messages}
        self.lock = threading.Lock()
        self.fail_calls: set[str] = set()  # method names that raise (a database gone)
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail_calls:
            raise ConnectionError(f"{name}: the database does not answer")

    def claim(self, at: datetime, limit: int, worker_id: str, lease: Any) -> list[OutboxMessage]:
        with self.lock:
            self._call("claim")
            from ctplhub.domain.reminders import in_quiet_hours

            if in_quiet_hours(at):
                return []
            due = [
                r
                for r in self.rows.values()
                if r.state == "pending"
                and r.next_attempt_at <= at
                and (r.claimed_until is None or r.claimed_until <= at)
            ][:limit]
            for row in due:
                row.attempts += 1
                row.claimed_until = at + lease
            return [replace(r.message, attempts=r.attempts) for r in due]

    def mark_sent(self, message_id: int, at: datetime) -> None:
        with self.lock:
            self._call("mark_sent")
            row = self.rows[message_id]
            row.state, row.claimed_until = "sent", None

    def mark_sent_many(self, message_ids: Sequence[int], at: datetime) -> None:
        with self.lock:
            self._call("mark_sent")
            for message_id in message_ids:
                row = self.rows[message_id]
                row.state, row.claimed_until = "sent", None

    def mark_failed(
        self, message_id: int, at: datetime, error_code: str, next_attempt_at: datetime | None
    ) -> None:
        with self.lock:
            self._call("mark_failed")
            row = self.rows[message_id]
            row.last_error, row.claimed_until = error_code, None
            if next_attempt_at is None:
                row.state = "dead"
            else:
                row.next_attempt_at = next_attempt_at

    def defer(self, message_id: int, until: datetime) -> None:
        with self.lock:
            self._call("defer")
            row = self.rows[message_id]
            row.attempts -= 1
            row.next_attempt_at, row.claimed_until = until, None

    def states(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for row in self.rows.values():
                out[row.state] = out.get(row.state, 0) + 1
            return out


# --- a TCP proxy that can be cut (a database that goes away and comes back) ------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; ``stop()`` closes the listener and
    every connection (the database is gone for its clients), ``start()`` listens again
    on the same port."""

    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with suppress(OSError):  # shutdown wakes the accepting thread
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._sockets:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()
