"""A slixmpp client that registers its account in-band (XEP-0077) and logs in with it.

Over STARTTLS (verifying the test CA): if the server offers registration,
it fetches the form and registers the JID's localpart with the password,
then authenticates as that account. Every event is printed as one JSON line
on stdout for the test to read.
"""
import slixmpp
from slixmpp.exceptions import IqError

from slix_script import arguments, emit, run


class Registering(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        # slixmpp 1.8 holds every stanza but bind and session until the session starts
        # (XMLStream.send), XEP-0077's own iqs too: let them through until registered,
        # as slixmpp's own test harness does.
        self._always_send_everything = True
        self.add_event_handler("register", self.register)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", lambda _: (emit(event="failed_auth"), self.disconnect()))
        self.add_event_handler("stream_error", lambda e: emit(event="stream_error", text=str(e)))
        self.add_event_handler("disconnected", lambda _: emit(event="disconnected"))

    async def register(self, form):
        emit(event="form", fields=sorted(field for field in ("username", "password") if form["register"].xml.find("{jabber:iq:register}" + field) is not None))
        iq = self.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = self.boundjid.user
        iq["register"]["password"] = self.password
        try:
            await iq.send()
            emit(event="registered")
        except IqError as e:
            emit(event="register_error", condition=e.condition, text=e.text)
            self.disconnect()
        finally:
            self._always_send_everything = False

    async def start(self, _):
        emit(event="session_start", jid=str(self.boundjid))
        self.disconnect()


def main():
    a = arguments()
    xmpp = Registering(a.jid, a.password)
    xmpp.register_plugin("xep_0077")
    run(xmpp, a.port, a.ca)


if __name__ == "__main__":
    main()
