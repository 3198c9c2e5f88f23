"""A scripted slixmpp client for the interop tests.

It logs in over STARTTLS (verifying the test CA), fetches the roster, sends
presence, says hello to a peer, answers "ping N" with "pong N", accepts
subscriptions (slixmpp's defaults), and leaves when told "bye". With
--carbons it enables XEP-0280 carbons before it reports the session started,
and reports the copies it gets. With --last JID it asks instead, with the
xep_0012 plugin, the server's uptime and JID's last activity, reports them
and leaves. With --new-password it changes its password with XEP-0077
(slixmpp's xep_0077) once the session started. Told "mam", it queries its
XEP-0313 archive for its chat with the peer with slixmpp's xep_0313 plugin
and reports it. Every event is printed as one JSON line on stdout for the
test to read.
"""
import asyncio

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError

from slix_script import arguments, emit, run


class Scripted(slixmpp.ClientXMPP):
    def __init__(self, jid, password, peer, carbons, last, new_password):
        super().__init__(jid, password)
        self.peer = peer
        self.carbons = carbons
        self.last = last
        self.new_password = new_password
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_available", self.on_presence)
        self.add_event_handler("failed_auth", lambda _: (emit(event="failed_auth"), self.disconnect()))
        self.add_event_handler("disconnected", lambda _: emit(event="disconnected"))
        self.add_event_handler("carbon_received", lambda msg: self.on_carbon("received", msg["carbon_received"]))
        self.add_event_handler("carbon_sent", lambda msg: self.on_carbon("sent", msg["carbon_sent"]))

    async def ask_last(self, name, jid):
        try:
            iq = await self.plugin["xep_0012"].get_last_activity(jid, timeout=10)
            emit(event=name, seconds=str(iq["last_activity"]["seconds"]), status=iq["last_activity"]["status"])
        except IqError as e:
            emit(event=name, error=e.iq["error"]["condition"])

    async def start(self, _):
        if self.last:
            await self.ask_last("uptime", self.boundjid.domain)
            await self.ask_last("last", self.last)
            self.disconnect()
            return
        await self.get_roster()
        self.send_presence()
        if self.carbons:
            await self.plugin["xep_0280"].enable()
        emit(event="session_start", jid=str(self.boundjid), mech=self.plugin["feature_mechanisms"].mech.name)
        self.send_message(mto=self.peer, mbody="hello from slixmpp", mtype="chat")
        if self.new_password:
            await self.plugin["xep_0077"].change_password(self.new_password, jid=self.boundjid.domain)
            emit(event="password_changed")

    def on_presence(self, pres):
        emit(event="presence", frm=str(pres["from"]))

    def on_carbon(self, kind, copied):
        emit(event="carbon_" + kind, frm=str(copied["from"]), to=str(copied["to"]), body=copied["body"])

    async def report_archive(self):
        iq = await self.plugin["xep_0313"].retrieve(jid=self.boundjid.bare, with_jid=JID(self.peer), timeout=10)
        results = [r["mam_result"] for r in iq["mam"]["results"]]
        emit(event="mam", bodies=[r["forwarded"]["stanza"]["body"] for r in results], ids=[r["id"] for r in results])

    def on_message(self, msg):
        body = msg["body"]
        sid = msg.xml.find("{urn:xmpp:sid:0}stanza-id")
        emit(event="message", frm=str(msg["from"]), body=body, type=msg["type"], stanza_id=sid.get("id") if sid is not None else None)
        if body.startswith("ping "):
            msg.reply("pong " + body[5:]).send()
        elif body == "mam":
            asyncio.ensure_future(self.report_archive())
        elif body == "bye":
            self.disconnect()


def main():
    a = arguments("--peer", flags=("--carbons",), optional=("--last", "--new-password"))
    xmpp = Scripted(a.jid, a.password, a.peer, a.carbons, a.last, a.new_password)
    xmpp.register_plugin("xep_0030")
    xmpp.register_plugin("xep_0199")
    xmpp.register_plugin("xep_0280")
    xmpp.register_plugin("xep_0012")
    xmpp.register_plugin("xep_0077")
    xmpp.register_plugin("xep_0313")
    run(xmpp, a.port, a.ca)


if __name__ == "__main__":
    main()
