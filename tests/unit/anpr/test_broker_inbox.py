"""The consumer's inbox (``anpr/broker.Inbox``): every message the client receives lands
in its deque, in order, and wakes the batch loop; aiomqtt's own queue stays empty."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from ctplhub.anpr.broker import Broker, Delivered, Inbox, inbox


def test_a_persistent_clients_messages_go_to_its_inbox_in_order() -> None:
    async def go() -> None:
        client = Broker("127.0.0.1", 1, False).client("c", persistent=True)  # never connected
        box = inbox(client)
        assert isinstance(box, Inbox) and not box.arrived.is_set()
        for n in range(3):
            box.put_nowait(aiomqtt.Message(f"t/{n}", f"read {n}".encode(), 1, False, n + 1, None))
        assert list(box.waiting) == [
            Delivered(1, 1, b"read 0"),
            Delivered(2, 1, b"read 1"),
            Delivered(3, 1, b"read 2"),
        ]
        assert box.arrived.is_set()
        assert len(client.messages) == 0  # the iterator only watches the connection

    asyncio.run(go())


def test_only_a_persistent_client_has_an_inbox() -> None:
    async def go() -> None:
        with pytest.raises(TypeError):
            inbox(Broker("127.0.0.1", 1, False).client(None))

    asyncio.run(go())
