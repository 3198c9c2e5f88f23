// The key under which a client's address is counted (connections not yet
// authenticated, failed logins): an IPv4 address itself, also when it came
// mapped into IPv6 on a dual-stack listener; an IPv6 address by its /64, the
// block one host or one home is usually given, so that an attacker's 2^64
// addresses count as one.

export function addressKey(ip: string): string {
  const addr = ip.replace(/%.*$/, "").toLowerCase();
  if (!addr.includes(":")) return addr;
  if (addr.startsWith("::ffff:") && addr.includes(".")) return addr.slice(7);
  const [head = "", tail = ""] = addr.split("::");
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const front = groups(head);
  // A trailing dotted quad holds the last two groups, never any of the first four.
  const back = groups(tail).flatMap((g) => (g.includes(".") ? ["0", "0"] : [g]));
  const all = addr.includes("::") ? [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill("0"), ...back] : front;
  return `${all
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(":")}::/64`;
}
