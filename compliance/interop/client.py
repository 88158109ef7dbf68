"""Python `websockets` client against a Herald echo server: compression on (its default)."""
import asyncio
import sys

import websockets

from messages import messages


async def main(url):
    async with websockets.connect(url, max_size=None, compression="deflate") as ws:
        negotiated = [type(e).__name__ for e in ws.protocol.extensions]
        if not any("Deflate" in name for name in negotiated):
            sys.exit(f"python client: permessage-deflate not negotiated ({negotiated})")
        count = 0
        for text, binary in messages():
            for message in (text, binary):
                await ws.send(message)
                echo = await ws.recv()
                if echo != message:
                    sys.exit(f"python client: echo of {len(message)} bytes differs")
                count += 1
        print(f"python websockets client -> herald server: {count} messages echoed byte for byte")


asyncio.run(main(sys.argv[1]))
