#!/usr/bin/python3
"""hang.py PORTFILE: a service that accepts connections and never answers.

Listens on a free port of 127.0.0.1 (written to PORTFILE once listening),
reads and discards whatever a client sends and closes only when the client
does: every poll of it runs into the poller's timeout.
"""

import asyncio
import sys


async def hold(reader, writer):
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    writer.close()


async def main(portfile):
    server = await asyncio.start_server(hold, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    with open(portfile + ".tmp", "w") as f:
        f.write(f"{port}\n")
    # rename: the reader never sees a half-written file
    import os
    os.rename(portfile + ".tmp", portfile)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
