"""A slixmpp client for the PEP interop tests, driven over stdin.

XEP-0084 avatars go through slixmpp's own xep_0084 plugin (which announces
"urn:xmpp:avatar:metadata+notify" in its entity capabilities); XEP-0402
bookmarks, for which slixmpp 1.8.3 has no plugin, through its xep_0060 and
xep_0163 plugins, with XEP-0402's publish-options. It logs in over STARTTLS,
announces its capabilities in its first presence, then reads one JSON
command a line from stdin and prints every event and result as one JSON line
on stdout.
"""
import asyncio
import base64
import hashlib
import json
import os
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from slix_bookmarks import BOOKMARKS, publish_bookmark
from slix_script import arguments, emit

AVATAR_DATA = "urn:xmpp:avatar:data"
TIMEOUT = 10



class Pep(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("avatar_metadata_publish", self.on_avatar)
        self.add_event_handler("bookmarks_publish", self.on_bookmark)
        self.add_event_handler("bookmarks_retract", self.on_bookmark_retract)
        self.add_event_handler("failed_auth", lambda _: (emit(event="failed_auth"), self.disconnect()))
        self.add_event_handler("disconnected", lambda _: emit(event="disconnected"))

    async def start(self, _):
        await self.get_roster()
        self["xep_0060"].map_node_event(BOOKMARKS, "bookmarks")
        self["xep_0163"].add_interest(BOOKMARKS)
        # The first presence carries the caps that name the nodes wanted.
        await self["xep_0115"].update_caps(broadcast=False)
        self.send_presence()
        emit(event="session_start", jid=str(self.boundjid))

    def on_avatar(self, msg):
        item = msg["pubsub_event"]["items"]["item"]
        delayed = msg.xml.find("{urn:xmpp:delay}delay") is not None
        emit(event="avatar_metadata", frm=str(msg["from"]), id=item["id"], delayed=delayed)

    def on_bookmark(self, msg):
        emit(event="bookmark", frm=str(msg["from"]), id=msg["pubsub_event"]["items"]["item"]["id"])

    def on_bookmark_retract(self, msg):
        emit(event="bookmark_retract", frm=str(msg["from"]), id=msg["pubsub_event"]["items"]["retract"]["id"])

    async def run_command(self, line):
        command = json.loads(line)
        name = command["cmd"]
        try:
            result = await getattr(self, "cmd_" + name)(command)
            emit(event="done", cmd=name, **(result or {}))
        except (IqError, IqTimeout) as err:
            detail = err.iq["error"]["condition"] if isinstance(err, IqError) else "timeout"
            emit(event="failed", cmd=name, condition=detail)

    async def cmd_publish_avatar(self, command):
        data = base64.b64decode(command["b64"])
        avatar_id = self["xep_0084"].generate_id(data)
        await self["xep_0084"].publish_avatar(data, timeout=TIMEOUT)
        info = {"id": avatar_id, "type": "image/png", "bytes": len(data)}
        await self["xep_0084"].publish_avatar_metadata(info, timeout=TIMEOUT)
        return {"id": avatar_id}

    async def cmd_fetch_avatar(self, command):
        iq = await self["xep_0084"].retrieve_avatar(command["jid"], command["id"], timeout=TIMEOUT)
        data = iq.xml.find(".//{%s}data" % AVATAR_DATA)
        return {"sha1": hashlib.sha1(base64.b64decode(data.text)).hexdigest()}

    async def cmd_publish_bookmark(self, command):
        await publish_bookmark(self, command["room"], command["name"], TIMEOUT)

    async def cmd_get_bookmarks(self, command):
        iq = await self["xep_0060"].get_items(command.get("jid", self.boundjid.bare), BOOKMARKS, timeout=TIMEOUT)
        return {"ids": [item["id"] for item in iq["pubsub"]["items"]]}

    async def cmd_retract_bookmark(self, command):
        await self["xep_0060"].retract(self.boundjid.bare, BOOKMARKS, command["room"], notify=True, timeout=TIMEOUT)

    async def cmd_bye(self, _):
        self.disconnect()


def main():
    a = arguments()
    xmpp = Pep(a.jid, a.password)
    xmpp.ssl_context = ssl.create_default_context(cafile=a.ca)
    for plugin in ["xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0084"]:
        xmpp.register_plugin(plugin)
    loop = asyncio.get_event_loop()
    # Commands run in the order they come, each after the one before.
    pending = asyncio.Queue()

    async def commands():
        while True:
            await xmpp.run_command(await pending.get())

    # Read raw: a buffered readline could keep lines that came in one chunk where the reader no longer fires.
    buffered = [b""]

    def readable():
        chunk = os.read(sys.stdin.fileno(), 65536)
        if not chunk:
            loop.remove_reader(sys.stdin.fileno())
            return
        *lines, buffered[0] = (buffered[0] + chunk).split(b"\n")
        for line in lines:
            pending.put_nowait(line.decode())

    loop.add_reader(sys.stdin.fileno(), readable)
    loop.create_task(commands())
    xmpp.connect(("127.0.0.1", a.port))
    try:
        loop.run_until_complete(asyncio.wait_for(xmpp.disconnected, 120))
    except asyncio.TimeoutError:
        emit(event="timeout")
        sys.exit(1)


if __name__ == "__main__":
    main()
