// An sm's load report (protocol §1.6): every report period it tells the
// router its sessions, the messages it routed and its process figures, for
// `xfarm status` and the admin console. The front ends' balancers never see
// it: the router shares the front ends' loads only.
import { LOAD_REPORT_MS } from "../lib/link/control.js";
import type { LinkClient } from "../lib/link/link-client.js";
import { ProcessSampler } from "../lib/process-figures.js";
import type { SessionManager } from "./session-manager.js";

/** Starts reporting; the function it returns stops. */
export function reportSmLoad(link: LinkClient, sm: SessionManager, started: number): () => void {
  const sampler = new ProcessSampler(started);
  const timer = setInterval(() => {
    const { sessions, messages } = sm.load();
    link.sendControl({ op: "load", sessions, connections: 0, ...sampler.sample(), messages });
  }, LOAD_REPORT_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    sampler.stop();
  };
}
