"""What the scripted slixmpp clients share: events as JSON lines, and a run to the end."""
import argparse
import asyncio
import json
import ssl
import sys


def emit(**event):
    """One event, one JSON line on stdout, for the test to read."""
    print(json.dumps(event), flush=True)


def run(xmpp, port, ca):
    """Connects over STARTTLS to 127.0.0.1:port (verifying the CA) and runs until disconnected, 60 s at most."""
    xmpp.ssl_context = ssl.create_default_context(cafile=ca)
    xmpp.connect(("127.0.0.1", port))
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(xmpp.disconnected, 60))
    except asyncio.TimeoutError:
        emit(event="timeout")
        sys.exit(1)


def arguments(*extra, flags=(), optional=()):
    """--port, --jid, --password and --ca (the CA file), each required, any `extra` ones, the on/off `flags`, and `optional` ones."""
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    for name in ("--jid", "--password", "--ca", *extra):
        p.add_argument(name, required=True)
    for name in flags:
        p.add_argument(name, action="store_true")
    for name in optional:
        p.add_argument(name)
    return p.parse_args()
