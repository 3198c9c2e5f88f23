"""A scripted slixmpp client for the XEP-0191 test: with the xep_0191 plugin
it blocks --peer, lists its blocklist, sends the peer a message (which the
server must refuse with not-acceptable), unblocks it, lists again, says
"after unblock" to the peer and leaves. Every event is printed as one JSON
line on stdout for the test to read.
"""
import slixmpp
from slixmpp.exceptions import IqError

from slix_script import arguments, emit, run


class Blocking(slixmpp.ClientXMPP):
    def __init__(self, jid, password, peer):
        super().__init__(jid, password)
        self.peer = peer
        self.refused = None
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message_error", self.on_error)
        self.add_event_handler("disconnected", lambda _: emit(event="disconnected"))

    async def listed(self):
        iq = await self.plugin["xep_0191"].get_blocked(timeout=10)
        emit(event="blocklist", items=sorted(str(j) for j in iq["blocklist"]["items"]))

    def on_error(self, msg):
        if self.refused and not self.refused.done():
            self.refused.set_result(msg)

    async def start(self, _):
        try:
            await self.plugin["xep_0191"].block(self.peer, timeout=10)
            await self.listed()
            self.refused = self.loop.create_future()
            self.send_message(mto=self.peer, mbody="while blocked", mtype="chat")
            error = await self.refused
            emit(event="refused", condition=error["error"]["condition"], blocked=error.xml.find(".//{urn:xmpp:blocking:errors}blocked") is not None)
            await self.plugin["xep_0191"].unblock(self.peer, timeout=10)
            await self.listed()
            self.send_message(mto=self.peer, mbody="after unblock", mtype="chat")
        except IqError as e:
            emit(event="iq_error", condition=e.iq["error"]["condition"])
        self.disconnect()


def main():
    a = arguments("--peer")
    xmpp = Blocking(a.jid, a.password, a.peer)
    xmpp.register_plugin("xep_0030")
    xmpp.register_plugin("xep_0191")
    run(xmpp, a.port, a.ca)


if __name__ == "__main__":
    main()
