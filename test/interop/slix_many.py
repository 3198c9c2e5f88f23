"""Many slixmpp clients in one process, for the load-sharing tests.

Each logs in, following <see-other-host/> as slixmpp does, prints one JSON
line when its session starts, and stays until standard input closes.
"""
import argparse
import asyncio
import json
import ssl
import sys

import slixmpp


class Following(slixmpp.ClientXMPP):
    """slixmpp 1.8.3 (Debian 12) handles <see-other-host/> by storing the new
    host and port in self.address and reconnecting, but its reconnect() calls
    connect() with no address and then dials the stored host on the default
    port, 5222. These clients always connect to an explicit address, so here
    the stored one is passed on, port included, as the handler means to."""

    def connect(self, address=None, *args, **kwargs):
        address = address or self.address
        self.default_port = address[1]
        return super().connect(address, *args, **kwargs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", required=True, help="first:last user numbers")
    p.add_argument("--prefix", default="user")
    p.add_argument("--password", required=True)
    p.add_argument("--ca", required=True)
    a = p.parse_args()
    first, last = (int(x) for x in a.users.split(":"))
    loop = asyncio.get_event_loop()
    clients = []

    def started(xmpp):
        return lambda _: print(json.dumps({"event": "online", "jid": str(xmpp.boundjid)}), flush=True)

    for i in range(first, last + 1):
        xmpp = Following(f"{a.prefix}{i}@localhost/slix", a.password)
        xmpp.ssl_context = ssl.create_default_context(cafile=a.ca)
        xmpp.add_event_handler("session_start", started(xmpp))
        xmpp.connect(("127.0.0.1", a.port))
        clients.append(xmpp)

    async def until_stdin_closes():
        await loop.run_in_executor(None, sys.stdin.read)
        for c in clients:
            c.disconnect()
        await asyncio.sleep(0.5)

    loop.run_until_complete(until_stdin_closes())


if __name__ == "__main__":
    main()
