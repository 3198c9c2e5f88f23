// Reads a password from the terminal without echoing it, or one line from a pipe.

/**
 * A new password: typed twice on a terminal, where a typo would go unseen,
 * and refused when the two differ; one line from a pipe (a script's).
 */
export async function readNewPassword(prompt: string): Promise<string> {
  const password = await readPassword(prompt);
  if (!process.stdin.isTTY) return password;
  if ((await readPassword("Again: ")) !== password) throw new Error("the two passwords differ; nothing was changed");
  return password;
}

/** What was typed after the Enter that ended the last password (typed ahead), for the next. */
let typedAhead = "";

export function readPassword(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) return firstLine(input);
  return new Promise((resolve) => {
    process.stderr.write(prompt);
    let value = "";
    /** Takes characters until Enter; true once the password is complete. */
    const take = (text: string): boolean => {
      for (const [i, ch] of [...text].entries()) {
        if (ch === "\r" || ch === "\n") {
          typedAhead = [...text].slice(i + 1).join("").replace(/^\n/, "");
          process.stderr.write("\n");
          resolve(value);
          return true;
        }
        if (ch === "\u0003") process.exit(130);
        if (ch === "\u007f") value = value.slice(0, -1);
        else value += ch;
      }
      return false;
    };
    const ahead = typedAhead;
    typedAhead = "";
    if (take(ahead)) return;
    input.setRawMode(true);
    input.resume();
    const onData = (buf: Buffer) => {
      if (!take(buf.toString("utf8"))) return;
      input.setRawMode(false);
      input.pause();
      input.off("data", onData);
    };
    input.on("data", onData);
  });
}

async function firstLine(input: NodeJS.ReadStream): Promise<string> {
  let text = "";
  for await (const chunk of input) {
    text += String(chunk);
    if (text.includes("\n")) break;
  }
  return text.split(/\r?\n/)[0] ?? "";
}
