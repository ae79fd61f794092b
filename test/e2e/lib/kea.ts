// kea-dhcp4 started inside the server namespace from test/e2e/kea-dhcp4.json.tmpl.
import { ChildProcess, spawn } from "node:child_process";
import { createConnection } from "node:net";
import { existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Net } from "./netns";
import { Pg } from "./pg";
import { onCleanup, stopChild, waitFor } from "./proc";

const TEMPLATE = join(__dirname, "..", "kea-dhcp4.json.tmpl");
const HOOKS_DIR = ["/usr/lib/x86_64-linux-gnu/kea/hooks", "/usr/lib/aarch64-linux-gnu/kea/hooks", "/usr/lib/kea/hooks"].find((d) =>
  existsSync(join(d, "libdhcp_lease_cmds.so")),
) ?? "/usr/lib/x86_64-linux-gnu/kea/hooks";

export interface KeaOpts {
  dir: string;
  net: Net;
  pg: Pg;
  backend: "postgresql" | "memfile";
  lfcInterval?: number; // memfile only
  multiThreading?: boolean;
  severity?: "INFO" | "WARN" | "DEBUG";
}

export interface Kea {
  proc: ChildProcess;
  leaseFile: string;
  logFile: string;
  ctrlSock: string;
  command(cmd: string, args?: Record<string, unknown>): Promise<{ result: number; text?: string; arguments?: Record<string, unknown> }>;
  leases(): Promise<{ mac: string; ip: string; subnet: number; state: number }[]>;
  stop(): Promise<void>;
}

export async function startKea(o: KeaOpts): Promise<Kea> {
  const leaseFile = join(o.dir, "kea-leases4.csv");
  const logFile = join(o.dir, "kea-dhcp4.log");
  const ctrlSock = join(o.dir, "kea4-ctrl.sock");
  const leaseDb =
    o.backend === "memfile"
      ? { type: "memfile", name: leaseFile, persist: true, "lfc-interval": o.lfcInterval ?? 3600 }
      : { type: "postgresql", name: o.pg.database, host: o.pg.host, port: o.pg.port, user: o.pg.user };
  const vars: Record<string, string> = {
    IFACE: o.net.srvIf,
    LEASE_DB: JSON.stringify(leaseDb),
    DB_NAME: o.pg.database,
    DB_HOST: o.pg.host,
    DB_PORT: String(o.pg.port),
    DB_USER: o.pg.user,
    CTRL_SOCK: ctrlSock,
    HOOKS_DIR,
    MT: String(o.multiThreading ?? false),
    SUBNET: o.net.subnet,
    POOL: o.net.pool,
    SEVERITY: o.severity ?? "INFO",
    LOG_FILE: logFile,
  };
  const cfg = readFileSync(TEMPLATE, "utf8").replace(/@([A-Z_]+)@/g, (_, k: string) => {
    if (!(k in vars)) throw new Error(`template variable ${k} not set`);
    return vars[k]!;
  });
  JSON.parse(cfg); // fail here, not in Kea, on a bad template
  const cfgFile = join(o.dir, "kea-dhcp4.json");
  writeFileSync(cfgFile, cfg);
  const out = openSync(join(o.dir, "kea-dhcp4.stdout"), "a");
  const proc = spawn("ip", ["netns", "exec", o.net.srv, "kea-dhcp4", "-c", cfgFile], {
    env: { ...process.env, KEA_PIDFILE_DIR: o.dir, KEA_LOCKFILE_DIR: o.dir },
    stdio: ["ignore", out, out],
  });
  const undo = onCleanup("kea-dhcp4", () => stopChild(proc));

  async function command(cmd: string, args?: Record<string, unknown>) {
    return new Promise<{ result: number; text?: string; arguments?: Record<string, unknown> }>((resolve, reject) => {
      const s = createConnection(ctrlSock);
      let buf = "";
      s.on("data", (d) => (buf += d));
      s.on("error", reject);
      s.on("end", () => {
        try {
          resolve(JSON.parse(buf));
        } catch (e) {
          reject(e);
        }
      });
      s.write(JSON.stringify(args ? { command: cmd, arguments: args } : { command: cmd }));
    });
  }

  await waitFor(
    "kea-dhcp4 control socket",
    async () => {
      if (proc.exitCode !== null) throw new Error(`kea-dhcp4 exited ${proc.exitCode}: ${tail(logFile)} ${tail(join(o.dir, "kea-dhcp4.stdout"))}`);
      if (!existsSync(ctrlSock)) return false;
      return (await command("status-get")).result === 0;
    },
    20000,
    100,
  );

  return {
    proc,
    leaseFile,
    logFile,
    ctrlSock,
    command,
    async leases() {
      const r = await command("lease4-get-all");
      const list = (r.arguments?.leases ?? []) as { "hw-address": string; "ip-address": string; "subnet-id": number; state: number }[];
      return list.map((l) => ({ mac: l["hw-address"], ip: l["ip-address"], subnet: l["subnet-id"], state: l.state }));
    },
    async stop() {
      await stopChild(proc);
      undo();
    },
  };
}

function tail(f: string): string {
  try {
    return readFileSync(f, "utf8").split("\n").slice(-5).join(" | ");
  } catch {
    return "";
  }
}
