// What a login and a chat message of the Tsung anchors' scenarios cost a
// bare node server: one process, no XML parser, no links, no store. It
// answers each of a login's steps (stream header, SASL PLAIN, the
// restarted header, bind, session, initial presence, roster get, the
// stream's end) with the elements the c2s answers it with (its stream
// features abridged: no limits, sm, csi or roster versioning), one write
// each as the c2s writes them, and writes each message to its recipient's
// socket with the sender's JID as 'from'. Its CPU, read by
// `../shared/anchors/run.sh` like the farm's, is the floor under any node
// server's on this machine, and the rates it reaches what Tsung can offer
// here (docs/bench.md, "The floor").
// Run: FARM_START="node dist/bench/tsung-floor.js --port 31010" FARM_PORT=31010 run.sh farm login 400 (or msg 8000)
import net from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { port: { type: "string", default: "5222" }, domain: { type: "string", default: "localhost" } } });
const domain = values.domain;

const header = (id: number) =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='${id}' from='${domain}' version='1.0' xml:lang='en'>`;
const saslFeatures =
  "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
const bindFeatures =
  "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>";

const MESSAGE_END = "</message>";

const ATTRIBUTES = { id: /\sid=['"]([^'"]*)['"]/, to: /\sto=['"]([^'"]*)['"]/ };

/** The value of attribute `name` in the first tag of `xml` that has it. */
function attr(xml: string, name: keyof typeof ATTRIBUTES): string {
  return ATTRIBUTES[name].exec(xml)?.[1] ?? "";
}

/** Bound sessions by bare JID, for messages. */
const bound = new Map<string, net.Socket>();
let streams = 0;

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.setEncoding("utf8");
  let bare = "";
  let jid = "";
  /** What came after the last whole message. */
  let rest = "";
  socket.on("error", () => socket.destroy());
  socket.on("close", () => {
    if (bound.get(bare) === socket) bound.delete(bare);
  });
  socket.on("data", (chunk: string) => {
    // A login's requests arrive in reads of their own, but for presence and
    // the roster get, which the client sends back to back: answered in turn.
    if (chunk.includes("<stream:stream")) return void socket.write(header(++streams) + (bare ? bindFeatures : saslFeatures));
    if (!bare && chunk.includes("<auth")) {
      const plain = /<auth[^>]*>([^<]*)</.exec(chunk)?.[1] ?? "";
      bare = `${Buffer.from(plain, "base64").toString("utf8").split("\0")[1] ?? ""}@${domain}`;
      return void socket.write("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    }
    if (chunk.includes("urn:ietf:params:xml:ns:xmpp-bind")) {
      jid = `${bare}/r${streams}`;
      bound.set(bare, socket);
      return void socket.write(`<iq type='result' id='${attr(chunk, "id")}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>${jid}</jid></bind></iq>`);
    }
    if (chunk.includes("urn:ietf:params:xml:ns:xmpp-session")) return void socket.write(`<iq type='result' id='${attr(chunk, "id")}'/>`);
    const data = rest + chunk;
    let at = 0;
    for (let end = data.indexOf(MESSAGE_END); end >= 0; end = data.indexOf(MESSAGE_END, at)) {
      const message = data.slice(data.indexOf("<message", at), end + MESSAGE_END.length);
      at = end + MESSAGE_END.length;
      bound.get(attr(message, "to").split("/")[0]!)?.write(message.replace("<message", `<message from='${jid}'`));
    }
    rest = data.slice(at);
    if (rest.length > 65_536) return void socket.destroy();
    if (data.includes("<presence")) socket.write(`<presence from='${jid}' to='${jid}'/>`);
    const roster = data.indexOf("jabber:iq:roster");
    if (roster >= 0) socket.write(`<iq type='result' id='${attr(data.slice(data.lastIndexOf("<iq", roster)), "id")}'><query xmlns='jabber:iq:roster' ver='1'/></iq>`);
    if (data.includes("</stream:stream>")) socket.end("</stream:stream>");
  });
});
server.listen(Number(values.port), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
