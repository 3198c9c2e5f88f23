// Debian's Profanity (a libstrophe console client) driven as a person would:
// typed into through tmux, read off its screen with `tmux capture-pane`.
// Each Profanity has its own HOME and XDG directories, and all of them run
// in one private tmux server (its own socket), which stop() ends.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export const PROFANITY = "/usr/bin/profanity";
export const TMUX = "/usr/bin/tmux";

export interface ProfanityAccount {
  /** Profanity's name for the account, and its tmux session's. */
  name: string;
  jid: string;
  password: string;
  resource: string;
  port: number;
}

export class ProfanityDriver {
  private readonly socket: string;

  /**
   * `dir`: the test's own directory. `ca`: the certificate Profanity trusts
   * (through OpenSSL's SSL_CERT_FILE): it verifies the farm's as a real one.
   */
  constructor(
    private readonly dir: string,
    private readonly ca: string,
  ) {
    this.socket = path.join(dir, "tmux.sock");
  }

  /** Starts Profanity logging in to `account` (its accounts file written first, as `/account set` writes it). */
  start(account: ProfanityAccount): ProfanityScreen {
    const home = path.join(this.dir, account.name);
    const data = path.join(home, "data", "profanity");
    fs.mkdirSync(data, { recursive: true });
    fs.writeFileSync(
      path.join(data, "accounts"),
      [
        `[${account.name}]`,
        "enabled=true",
        `jid=${account.jid}`,
        `password=${account.password}`,
        `resource=${account.resource}`,
        "server=127.0.0.1",
        `port=${account.port}`,
        // TLS or nothing, the certificate verified.
        "tls.policy=force",
        "",
      ].join("\n"),
    );
    const env = [`HOME=${home}`, `XDG_CONFIG_HOME=${path.join(home, "config")}`, `XDG_DATA_HOME=${path.join(home, "data")}`];
    this.tmux(["new-session", "-d", "-s", account.name, "-x", "160", "-y", "40", ...env.flatMap((e) => ["-e", e]), `${PROFANITY} -a ${account.name}`]);
    return new ProfanityScreen(account.name, (args) => this.tmux(args));
  }

  /** Ends every Profanity started here, and the tmux server. */
  stop(): void {
    spawnSync(TMUX, ["-S", this.socket, "kill-server"]);
  }

  private tmux(args: string[]): string {
    const r = spawnSync(TMUX, ["-S", this.socket, ...args], {
      encoding: "utf8",
      // The tmux server, started by the first call, passes these on to every Profanity.
      env: { PATH: "/usr/bin:/bin", TERM: "xterm-256color", LANG: "C.UTF-8", SSL_CERT_FILE: this.ca },
    });
    if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  }
}

/** One Profanity's terminal. */
export class ProfanityScreen {
  constructor(
    readonly name: string,
    private readonly tmux: (args: string[]) => string,
  ) {}

  /** Types a line (a command or a message to the open chat) and presses Enter. */
  type(line: string): void {
    this.tmux(["send-keys", "-t", this.name, "-l", line]);
    this.tmux(["send-keys", "-t", this.name, "Enter"]);
  }

  /** What the terminal shows now. */
  text(): string {
    return this.tmux(["capture-pane", "-p", "-t", this.name]);
  }

  /** Resolves with the screen once it shows `expected`; rejects with the screen after `timeoutMs`. */
  async shows(expected: string | RegExp, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.text();
      if (typeof expected === "string" ? screen.includes(expected) : expected.test(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`${this.name}'s screen never showed ${String(expected)}:\n${screen}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
