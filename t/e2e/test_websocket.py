"""A websocket goes through the gateway (Upgrade and Connection headers)."""

import asyncio

import websockets


async def echo(url, message):
    async with websockets.connect(url, open_timeout=5, close_timeout=2) as socket:
        await socket.send(message)
        return await asyncio.wait_for(socket.recv(), timeout=5)


def test_websocket_round_trip(gateway):
    url = gateway.url.replace("http://", "ws://", 1) + "/chat/ws"
    assert asyncio.run(echo(url, "hello")) == "chat: hello"
