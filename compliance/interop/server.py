"""Python `websockets` echo server with compression (its default); prints `listening on ADDR`."""
import asyncio

import websockets


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None, compression="deflate") as server:
        host, port = list(server.sockets)[0].getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
