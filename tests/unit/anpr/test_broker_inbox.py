"""The consumer's inbox (``anpr/broker.Inbox``): every message the client receives lands
in its deque, in order, and wakes the batch loop; aiomqtt's own queue stays empty."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from ctplhub.anpr.broker import Broker, Inbox, inbox


def test_a_persistent_clients_messages_go_to_its_inbox_in_order() -> None:
    async def go() -> None:
        client = Broker("127.0.0.1", 1, False).client("c", persistent=True)  # never connected
        box = inbox(client)
        assert isinstance(box, Inbox) and not box.arrived.is_set()
        for n in range(3):
            box.put_nowait(aiomqtt.Message(f"t/{n}", b"read", 1, False, n + 1, None))
        assert [str(m.topic) for m in box.waiting] == ["t/0", "t/1", "t/2"]
        assert box.arrived.is_set()
        assert len(client.messages) == 0  # the iterator only watches the connection

    asyncio.run(go())


def test_only_a_persistent_client_has_an_inbox() -> None:
    async def go() -> None:
        with pytest.raises(TypeError):
            inbox(Broker("127.0.0.1", 1, False).client(None))

    asyncio.run(go())
