"""XEP-0402 bookmarks through slixmpp's xep_0060, for the interop scripts:
slixmpp 1.8.3 has no xep_0402 plugin."""
import slixmpp

BOOKMARKS = "urn:xmpp:bookmarks:1"
# XEP-0402 §3.1: what a client requires of the node, as publish-options.
OPTIONS = [("persist_items", "true"), ("max_items", "max"), ("send_last_published_item", "never"), ("access_model", "whitelist")]


def publish_bookmark(xmpp, room, name, timeout):
    """Publishes a conference bookmark to the account's own node; returns the iq's future."""
    options = xmpp["xep_0004"].make_form(ftype="submit")
    options.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    for var, value in OPTIONS:
        options.add_field(var="pubsub#" + var, value=value)
    conference = slixmpp.xmlstream.ET.Element("{%s}conference" % BOOKMARKS, name=name, autojoin="true")
    return xmpp["xep_0060"].publish(xmpp.boundjid.bare, BOOKMARKS, id=room, payload=conference, options=options, timeout=timeout)
