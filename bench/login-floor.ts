// What a login of the Tsung anchors' scenario costs a bare node server: one
// process, no XML parser, no links, no store. It answers each of the
// client's steps (stream header, SASL PLAIN, the restarted header, bind,
// session, initial presence, roster get, the stream's end) with the bytes
// the c2s sends for it, one write each as the c2s writes them. Its CPU a
// login, read by `../shared/anchors/run.sh` like the farm's, is the floor
// under any node server's on this machine (docs/bench.md, "What a login
// costs at the least").
// Run: FARM_START="node dist/bench/login-floor.js --port 31010" FARM_PORT=31010 run.sh farm login 400
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

/** The id attribute of the first element in `chunk` that has one. */
function idOf(chunk: string): string {
  const m = /id=['"]([^'"]*)['"]/.exec(chunk);
  return m ? m[1]! : "";
}

let streams = 0;
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.setEncoding("utf8");
  let authenticated = false;
  let user = "";
  socket.on("error", () => socket.destroy());
  socket.on("data", (chunk: string) => {
    // Each step's request arrives in a read of its own, except presence and
    // the roster get, which the client sends back to back: answered in turn.
    if (chunk.includes("<stream:stream")) {
      socket.write(header(++streams) + (authenticated ? bindFeatures : saslFeatures));
      return;
    }
    if (chunk.includes("<auth")) {
      const m = /<auth[^>]*>([^<]*)</.exec(chunk);
      user = m ? Buffer.from(m[1]!, "base64").toString("utf8").split("\0")[1] ?? "" : "";
      authenticated = true;
      socket.write("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
      return;
    }
    if (chunk.includes("urn:ietf:params:xml:ns:xmpp-bind")) {
      socket.write(`<iq type='result' id='${idOf(chunk)}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>${user}@${domain}/r${streams}</jid></bind></iq>`);
      return;
    }
    if (chunk.includes("urn:ietf:params:xml:ns:xmpp-session")) {
      socket.write(`<iq type='result' id='${idOf(chunk)}'/>`);
      return;
    }
    const presence = chunk.indexOf("<presence");
    const roster = chunk.indexOf("jabber:iq:roster");
    if (presence >= 0) socket.write(`<presence from='${user}@${domain}/r${streams}' to='${user}@${domain}/r${streams}'/>`);
    if (roster >= 0) socket.write(`<iq type='result' id='${idOf(chunk.slice(chunk.lastIndexOf("<iq", roster)))}'><query xmlns='jabber:iq:roster' ver='1'/></iq>`);
    if (chunk.includes("</stream:stream>")) socket.end("</stream:stream>");
  });
});
server.listen(Number(values.port), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
