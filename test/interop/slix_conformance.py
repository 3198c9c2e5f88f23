"""A conformance run with slixmpp: what a modern client finds and uses.

It logs in over STARTTLS, then for each extension looks where a client looks
(the server's or the account's disco#info, or the stream features) and, when
it is advertised, uses it through slixmpp's own plugin. It prints one JSON
line per check: {"xep", "name", "result": "pass" | "skip" | "fail", "detail"}
and a last line {"done": true}. "skip" means not advertised, as a client
would see it: the feature is off or missing.
"""
import asyncio
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from slix_bookmarks import BOOKMARKS, publish_bookmark
from slix_script import arguments, emit

NS_INFO = "http://jabber.org/protocol/disco#info"
NS_CSI = "urn:xmpp:csi:0"
NS_SM = "urn:xmpp:sm:3"
NS_ROSTERVER = "urn:xmpp:features:rosterver"
TIMEOUT = 10



class Conformance(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.password_in_use = password
        # Every stream feature offered after authentication, by "{ns}name".
        self.offered = set()
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", lambda _: (emit(done=True, error="failed_auth"), self.disconnect()))

    async def _handle_stream_features(self, features):
        if self.authenticated:
            self.offered.update(child.tag for child in features.xml)
        return await super()._handle_stream_features(features)

    async def start(self, _):
        try:
            await self.get_roster()
            self.send_presence()
            server = await self["xep_0030"].get_info(jid=self.boundjid.domain, timeout=TIMEOUT)
            account = await self["xep_0030"].get_info(jid=self.boundjid.bare, timeout=TIMEOUT)
            self.server_features = set(server["disco_info"]["features"])
            self.account_features = set(account["disco_info"]["features"])
            # XEP-0128 forms, read from the XML: slixmpp parses them only with plugins this run need not load.
            self.server_forms = [
                value.text
                for field in server.xml.findall("{%s}query/{jabber:x:data}x/{jabber:x:data}field" % NS_INFO)
                if field.get("var") == "FORM_TYPE"
                for value in field.findall("{jabber:x:data}value")
            ]
            for check in CHECKS:
                await self.run(check)
        except Exception as err:  # the run itself broke: say so, do not hang
            emit(done=True, error=repr(err))
            self.disconnect()
            return
        emit(done=True)
        self.disconnect()

    async def run(self, check):
        xep, name, advertised, use = check
        if not advertised(self):
            emit(xep=xep, name=name, result="skip", detail="not advertised")
            return
        try:
            detail = await use(self)
            emit(xep=xep, name=name, result="pass", detail=detail or "")
        except (IqError, IqTimeout, AssertionError, ValueError) as err:
            text = err.iq["error"]["condition"] if isinstance(err, IqError) else repr(err)
            emit(xep=xep, name=name, result="fail", detail=text)


def on_server(feature):
    return lambda c: feature in c.server_features


def on_account(feature):
    return lambda c: feature in c.account_features


def in_stream(tag):
    return lambda c: tag in c.offered


async def use_ping(c):
    await c["xep_0199"].ping(jid=c.boundjid.domain, timeout=TIMEOUT)


async def use_version(c):
    iq = await c["xep_0092"].get_version(c.boundjid.domain, timeout=TIMEOUT)
    assert iq["software_version"]["name"], "no software name"
    return iq["software_version"]["name"]


async def use_time(c):
    iq = await c["xep_0202"].get_entity_time(c.boundjid.domain, timeout=TIMEOUT)
    # Read as sent: slixmpp 1.8's get_utc appends a second "Z" to the
    # XEP-0082 UTC form that XEP-0202 requires, and fails to parse it.
    utc = iq.xml.find("{urn:xmpp:time}time/{urn:xmpp:time}utc").text
    assert utc.endswith("Z"), "utc not in UTC: %s" % utc
    return utc


async def use_last(c):
    iq = await c["xep_0012"].get_last_activity(c.boundjid.domain, timeout=TIMEOUT)
    return "uptime %s s" % iq["last_activity"]["seconds"]


async def use_items(c):
    await c["xep_0030"].get_items(jid=c.boundjid.domain, timeout=TIMEOUT)


async def use_vcard(c):
    card = c["xep_0054"].make_vcard()
    card["FN"] = "Conformance"
    await c["xep_0054"].publish_vcard(card, timeout=TIMEOUT)
    got = await c["xep_0054"].get_vcard(c.boundjid.bare, timeout=TIMEOUT)
    assert got["vcard_temp"]["FN"] == "Conformance", "vCard not stored"


async def use_private(c):
    # Raw iqs: slixmpp's xep_0049 retrieves only payloads it has a plugin for.
    fromstring = slixmpp.xmlstream.ET.fromstring
    store = c.make_iq_set()
    store.set_payload(fromstring("<query xmlns='jabber:iq:private'><note xmlns='urn:xfarm:conformance'>kept</note></query>"))
    await store.send(timeout=TIMEOUT)
    get = c.make_iq_get()
    get.set_payload(fromstring("<query xmlns='jabber:iq:private'><note xmlns='urn:xfarm:conformance'/></query>"))
    iq = await get.send(timeout=TIMEOUT)
    found = iq.xml.find(".//{urn:xfarm:conformance}note")
    assert found is not None and found.text == "kept", "private XML not stored"


async def use_pep(c):
    payload = slixmpp.xmlstream.ET.Element("{urn:xfarm:conformance}state")
    payload.text = "published"
    await c["xep_0163"].publish(slixmpp.xmlstream.ElementBase(payload), node="urn:xfarm:conformance", timeout=TIMEOUT)
    iq = await c["xep_0060"].get_items(c.boundjid.bare, "urn:xfarm:conformance", timeout=TIMEOUT)
    assert len(iq["pubsub"]["items"]) == 1, "published item not returned"


async def use_pubsub_nodes(c):
    # The node use_pep published to is listed on the account (XEP-0060 §5.2) and described (§5.3).
    items = await c["xep_0060"].get_nodes(jid=c.boundjid.bare, timeout=TIMEOUT)
    nodes = {node for (_, node, _) in items["disco_items"]["items"]}
    assert "urn:xfarm:conformance" in nodes, "published node not listed: %s" % sorted(nodes)
    info = await c["xep_0030"].get_info(jid=c.boundjid.bare, node="urn:xfarm:conformance", timeout=TIMEOUT)
    assert ("pubsub", "leaf", None, None) in info["disco_info"]["identities"], "node is no pubsub leaf"
    return "%d nodes" % len(nodes)


async def use_avatar(c):
    data = b"\x89PNG conformance avatar" * 1000
    avatar_id = c["xep_0084"].generate_id(data)
    await c["xep_0084"].publish_avatar(data, timeout=TIMEOUT)
    await c["xep_0084"].publish_avatar_metadata({"id": avatar_id, "type": "image/png", "bytes": len(data)}, timeout=TIMEOUT)
    iq = await c["xep_0084"].retrieve_avatar(c.boundjid.bare, avatar_id, timeout=TIMEOUT)
    assert iq["pubsub"]["items"]["item"]["avatar_data"]["value"] == data, "avatar data not returned"


async def use_bookmarks(c):
    room = "conformance@muc." + c.boundjid.domain
    await publish_bookmark(c, room, "Conformance", TIMEOUT)
    iq = await c["xep_0060"].get_items(c.boundjid.bare, BOOKMARKS, timeout=TIMEOUT)
    assert [item["id"] for item in iq["pubsub"]["items"]] == [room], "bookmark not returned"
    await c["xep_0060"].retract(c.boundjid.bare, BOOKMARKS, room, notify=True, timeout=TIMEOUT)


async def use_carbons(c):
    await c["xep_0280"].enable(timeout=TIMEOUT)
    await c["xep_0280"].disable(timeout=TIMEOUT)


async def use_mam(c):
    iq = await c["xep_0313"].retrieve(jid=c.boundjid.bare, timeout=TIMEOUT)
    assert iq["type"] == "result", "no result"
    return "%d archived" % len(iq["mam"]["results"])


async def use_blocking(c):
    other = "blocked@" + c.boundjid.domain
    await c["xep_0191"].block(other, timeout=TIMEOUT)
    iq = await c["xep_0191"].get_blocked(timeout=TIMEOUT)
    assert other in {str(j) for j in iq["blocklist"]["items"]}, "blocked JID not listed"
    await c["xep_0191"].unblock(other, timeout=TIMEOUT)


async def use_csi(c):
    assert c["xep_0352"].enabled, "slixmpp did not see CSI"
    c["xep_0352"].send_inactive()
    c["xep_0352"].send_active()
    # The stream must stay up: a round trip after the two nonzas.
    await c["xep_0199"].ping(jid=c.boundjid.domain, timeout=TIMEOUT)


async def use_sm(c):
    assert "stream_management" in c.features, "slixmpp did not enable stream management"


async def use_rosterver(c):
    assert "rosterver" in c.features, "slixmpp did not see roster versioning"


async def use_password(c):
    await c["xep_0077"].change_password(c.password_in_use, jid=c.boundjid.domain, timeout=TIMEOUT)


async def use_contacts(c):
    return "serverinfo form present"


# (xep, name, advertised?, use)
CHECKS = [
    ("0030", "service discovery items", lambda c: "http://jabber.org/protocol/disco#items" in c.server_features, use_items),
    ("0199", "ping", on_server("urn:xmpp:ping"), use_ping),
    ("0092", "software version", on_server("jabber:iq:version"), use_version),
    ("0202", "entity time", on_server("urn:xmpp:time"), use_time),
    ("0012", "last activity", on_server("jabber:iq:last"), use_last),
    ("0054", "vcard-temp", on_server("vcard-temp"), use_vcard),
    ("0049", "private XML storage", on_server("jabber:iq:private"), use_private),
    ("0163", "personal eventing (PEP)", on_account("http://jabber.org/protocol/pubsub#publish"), use_pep),
    ("0060", "publish-subscribe node discovery (PEP)", on_account("http://jabber.org/protocol/pubsub#publish"), use_pubsub_nodes),
    ("0084", "user avatar", on_account("http://jabber.org/protocol/pubsub#publish"), use_avatar),
    ("0402", "PEP native bookmarks", on_account("http://jabber.org/protocol/pubsub#publish-options"), use_bookmarks),
    ("0280", "message carbons", on_server("urn:xmpp:carbons:2"), use_carbons),
    ("0313", "message archive management", on_account("urn:xmpp:mam:2"), use_mam),
    ("0191", "blocking command", on_server("urn:xmpp:blocking"), use_blocking),
    ("0352", "client state indication", in_stream("{%s}csi" % NS_CSI), use_csi),
    ("0198", "stream management", in_stream("{%s}sm" % NS_SM), use_sm),
    ("0237", "roster versioning", in_stream("{%s}ver" % NS_ROSTERVER), use_rosterver),
    ("0077", "password change", on_server("jabber:iq:register"), use_password),
    ("0157", "contact addresses", lambda c: "http://jabber.org/network/serverinfo" in c.server_forms, use_contacts),
]


def main():
    a = arguments()
    xmpp = Conformance(a.jid, a.password)
    xmpp.ssl_context = ssl.create_default_context(cafile=a.ca)
    for plugin in ["xep_0030", "xep_0199", "xep_0092", "xep_0202", "xep_0012", "xep_0054", "xep_0049", "xep_0004", "xep_0060", "xep_0163", "xep_0084", "xep_0280", "xep_0313", "xep_0191", "xep_0352", "xep_0198", "xep_0077"]:
        xmpp.register_plugin(plugin)
    xmpp.connect(("127.0.0.1", a.port))
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(xmpp.disconnected, 120))
    except asyncio.TimeoutError:
        emit(done=True, error="timeout")
        sys.exit(1)


if __name__ == "__main__":
    main()
