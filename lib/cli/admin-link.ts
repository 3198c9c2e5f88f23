// A one-shot admin link to the router (protocol §1.7): what `xfarm status`
// and `xfarm c2s drain`/`undrain` use. The admin secret is secrets.admin.
import { pino } from "pino";
import type { Config } from "../config.js";
import type { ControlMessage } from "../link/control.js";
import { LinkClient } from "../link/link-client.js";

export const ADMIN_NAME = "admin";

/** Sends one request and resolves with the first answer of op `answer`. */
export function adminRequest<Op extends ControlMessage["op"]>(
  config: Config,
  request: ControlMessage,
  answer: Op,
  timeoutMs = 5_000,
): Promise<Extract<ControlMessage, { op: Op }>> {
  const secret = config.secrets.get(ADMIN_NAME);
  if (!secret) return Promise.reject(new Error(`no admin secret: set secrets.admin in the config (xfarm start generates it in ${config.data_dir}/secrets.toml)`));
  // Link trouble is reported as this command's error, not as log lines.
  const log = pino({ level: "silent" });
  const link = new LinkClient({ name: ADMIN_NAME, role: "admin", secret, routers: config.router.addresses, info: {}, log });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      link.stop();
      reject(new Error(`no answer from the router at ${config.router.addresses.join(" or ")} within ${timeoutMs / 1000} s (is it running, with the same secrets.admin?)`));
    }, timeoutMs);
    link.once("up", () => link.sendControl(request));
    link.on("control", (msg) => {
      if (msg.op !== answer) return;
      clearTimeout(timer);
      link.stop();
      resolve(msg as Extract<ControlMessage, { op: Op }>);
    });
    link.start();
  });
}
