import { execa, execaSync, type ResultPromise } from "execa";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, hostname } from "node:os";
import { join } from "node:path";
import { tempDir, waitFor } from "./helpers.js";

/** A one-node Slurm for the tests: munged, slurmctld and slurmd started as child processes in a temp dir, with
 * their own ports, state and munge socket (no systemd, no cgroups, no accounting database), stopped at the end.
 * Missing Debian packages are installed first where root and apt-get allow (scripts/test-deps.sh). */

export interface Cluster {
  /** Environment for every Slurm command and for ddst: SLURM_CONF points at this cluster. */
  env: Record<string, string>;
  dir: string;
  stop(): Promise<void>;
}

const BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel"];
const missing = () => BINARIES.filter((b) => execaSync("sh", ["-c", `command -v ${b}`], { reject: false }).exitCode !== 0);

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The cluster, or why there can be none here (Slurm not installable); one that is installed but does not come
 * up is an error, not a skip. */
export async function startCluster(): Promise<Cluster | { skip: string }> {
  if (missing().length) await execa("bash", [join(import.meta.dirname, "..", "..", "scripts", "test-deps.sh")], { reject: false, stdio: "inherit" });
  const absent = missing();
  if (absent.length) return { skip: `Slurm is not installed here (missing ${absent.join(", ")}; scripts/test-deps.sh needs root and apt-get)` };
  if (process.getuid?.() !== 0) return { skip: "a private slurmd must run as root to start jobs; run the tests as root for the Slurm tests" };

  const dir = tempDir("ddst-slurm-");
  for (const d of ["state", "spool", "munge"]) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  const key = join(dir, "munge.key");
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  const socket = join(dir, "munge", "munge.socket");
  const node = hostname().split(".")[0]!;
  const conf = join(dir, "slurm.conf");
  writeFileSync(
    conf,
    [
      "ClusterName=ddsttest",
      `SlurmctldHost=${node}(127.0.0.1)`,
      "SlurmUser=root",
      "SlurmdUser=root",
      `SlurmctldPort=${await freePort()}`,
      `SlurmdPort=${await freePort()}`,
      "AuthType=auth/munge",
      `AuthInfo=socket=${socket}`,
      "CredType=cred/munge",
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      // No cgroups in a container: track processes by parentage, bind nothing.
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_CPU",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "MpiDefault=none",
      "ReturnToService=2",
      "KillWait=30",
      "MinJobAge=600",
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus().length} State=UNKNOWN`,
      "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    ].join("\n") + "\n",
  );
  const env = { SLURM_CONF: conf };
  const daemons: ResultPromise[] = [];
  const start = (cmd: string, args: string[]) => {
    const p = execa(cmd, args, { env, reject: false, stdio: ["ignore", "pipe", "pipe"], all: true, buffer: { all: true } });
    daemons.push(p);
    return p;
  };
  const stop = async () => {
    await execa("scancel", ["--me"], { env, reject: false });
    // Cancelled tasks get TERM, then KILL after KillWait: wait for the queue to drain before the daemons go.
    await waitFor(() => String(execaSync("squeue", ["--me", "-h"], { env, reject: false }).stdout).trim() === "", 40_000, 250);
    for (const p of daemons.reverse()) {
      p.kill("SIGTERM");
      await Promise.race([p, new Promise((r) => setTimeout(r, 5000))]);
      p.kill("SIGKILL");
    }
  };

  const munged = start("munged", ["-F", "-f", `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${dir}/munged.pid`, `--log-file=${dir}/munged.log`, `--seed-file=${dir}/munged.seed`]);
  if (!(await waitFor(() => existsSync(socket), 10_000))) {
    await stop();
    throw new Error(`munged did not start: ${(await munged).all}`);
  }
  start("slurmctld", ["-D", "-c", "-f", conf]);
  start("slurmd", ["-D", "-f", conf]);
  const idle = () => /^(idle|mix|alloc)/.test(String(execaSync("sinfo", ["-h", "-o", "%t"], { env, reject: false }).stdout).trim());
  if (!(await waitFor(idle, 30_000, 250))) {
    const logs = ["slurmctld.log", "slurmd.log"].map((f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8").slice(-1500) : "")).join("\n");
    await stop();
    throw new Error(`the private Slurm did not come up within 30 s:\n${logs}`);
  }
  return { env, dir, stop };
}
