import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { finalMetric, runStatus, statusOrUnreadable, type RunStatus } from "../run/run-status.js";
import { cellKeys, TableSpec } from "../table/spec.js";
import { changesText } from "../config/config-changes.js";
import { cliName, UsageError } from "./args.js";
import { subdirectories } from "../files.js";

/** `ddst ls [DIR]` lists the runs and tables under DIR; `ddst show RUN|TABLE` prints one. Both only read files. */

const isTable = (dir: string) => existsSync(join(dir, "table-spec.json"));

/** Each cell directory's status; null for one whose config.json cannot be read. */
function cellStatuses(table: string): { dir: string; status: RunStatus | null; unreadable?: string }[] {
  const cells = join(table, "cells");
  return subdirectories(cells).map((c) => ({ dir: c.dir, ...statusOrUnreadable(c.dir) }));
}

/** The statuses that could be read. */
const readable = (cells: { status: RunStatus | null }[]): RunStatus[] => cells.flatMap((c) => (c.status ? [c.status] : []));

/** The ids of the table's cells, started or not (its spec, as its last command recorded it); null when the
 * spec cannot be read. */
export function plannedCells(table: string): Set<string> | null {
  try {
    const parsed = TableSpec.safeParse((JSON.parse(readFileSync(join(table, "table-spec.json"), "utf8")) as { spec?: unknown }).spec);
    return parsed.success ? new Set(cellKeys(parsed.data).map((k) => k.id)) : null;
  } catch {
    return null;
  }
}

/** A directory that holds a config.json nobody can read as an experiment: listed, not skipped, so a damaged
 * run does not vanish from view. */
const damagedRun = (dir: string) => existsSync(join(dir, "config.json"));

function statusText(s: RunStatus): string {
  const edited = s.edited.length ? "; config.json edited since its checkpoint" : "";
  if (s.kind === "running") return `running (pid ${s.pid})${edited}`;
  if (s.kind === "damaged") return `damaged: ${s.damage}${edited}`;
  return s.kind + edited;
}

export function tableName(dir: string): string {
  try {
    return (JSON.parse(readFileSync(join(dir, "table-spec.json"), "utf8")) as { spec: { name: string } }).spec.name;
  } catch {
    return dir;
  }
}

export async function cmdLs(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length > 1) throw new UsageError("ddst ls takes at most one directory");
  const root = positionals[0] ?? "runs";
  if (positionals.length === 0 && !existsSync(root)) {
    console.log("no ddst runs or tables here yet: runs/ does not exist (ddst ls DIR lists another directory)");
    return 0;
  }
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new UsageError(`${root} is not a directory (ddst ls [DIR], default runs/)`);
  const rows: string[][] = [];
  // A run or table directory itself is listed as itself (a table with its cells after it), not searched.
  const entries = isTable(root)
    ? [{ name: root, dir: root }, ...subdirectories(join(root, "cells"))]
    : statusOrUnreadable(root).status || damagedRun(root)
      ? [{ name: root, dir: root }]
      : subdirectories(root);
  for (const { name, dir } of entries) {
    if (isTable(dir)) {
      // Cell directories the table file no longer names (it was edited since) are not its cells.
      const planned = plannedCells(dir);
      const onDisk = cellStatuses(dir);
      const all = planned ? onDisk.filter((c) => planned.has(basename(c.dir))) : onDisk;
      const cells = readable(all);
      // A cell whose config.json cannot be read has no status of its own, but is started and damaged.
      const unreadable = all.filter((c) => c.status === null && damagedRun(c.dir)).length;
      const count = (k: RunStatus["kind"]) => cells.filter((c) => c.kind === k).length + (k === "damaged" ? unreadable : 0);
      const started = cells.length + unreadable;
      const total = Math.max(planned?.size ?? 0, started);
      const status = [
        ...(["finished", "diverged", "running", "interrupted", "failed", "damaged"] as const).map((k) => [k, count(k)] as const),
        ["not started", total - started + count("unstarted")] as const,
        ["more in cells/ that the table file no longer names", onDisk.length - all.length] as const,
      ]
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${n} ${k}`)
        .join(", ");
      const spec = planned ? (status || "no cells") : `damaged: ${join(dir, "table-spec.json")} unreadable${status ? `; ${status}` : ""}`;
      rows.push([name, "table", tableName(dir), "", `${count("finished")}/${total} cells`, spec, ""]);
      continue;
    }
    const { status: s, unreadable } = statusOrUnreadable(dir);
    if (!s) {
      if (damagedRun(dir)) rows.push([name, "run", "?", "", "", `damaged: ${unreadable ?? "config.json unreadable"}`, ""]);
      continue;
    }
    rows.push([name, "run", s.experiment.method, String(s.experiment.density), `${s.iter}/${s.planned}`, statusText(s), finalMetric(s.summary) ?? ""]);
  }
  if (rows.length === 0) {
    console.log(`no ddst runs or tables in ${root}`);
    return 0;
  }
  const header = ["NAME", "KIND", "METHOD", "d_G", "ITERATIONS", "STATUS", "FINAL"];
  const shown = rows.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...shown.map((r) => r[i]!.length)));
  for (const r of [header, ...shown]) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
  return 0;
}

/** A name from the disk as the terminal should show it: control characters (an escape sequence in a directory
 * name could rewrite the screen) as \x escapes. */
const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

export async function cmdShow(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError("ddst show takes one run or table directory");
  const dir = positionals[0]!;
  if (isTable(dir)) {
    const md = join(dir, "table.md");
    console.log(existsSync(md) ? readFileSync(md, "utf8").trimEnd() : `table ${tableName(dir)}: no finished cell yet`);
    for (const c of cellStatuses(dir)) {
      if (c.unreadable) console.log(`  ${c.dir}: damaged: ${c.unreadable}`);
      else if (c.status && c.status.kind !== "finished") console.log(`  ${c.dir}: ${statusText(c.status)} at ${c.status.iter}/${c.status.planned}`);
    }
    return 0;
  }
  const s = runStatus(dir);
  if (!s && damagedRun(dir))
    throw new UsageError(`${dir}/config.json cannot be read as a ddst experiment (cut short or edited): the run's settings are lost; its metrics.jsonl and checkpoints are still there`);
  if (!s) throw new UsageError(`${dir} is not a ddst run or table directory (no config.json or table-spec.json)`);
  const e = s.experiment;
  const lines = [
    `${e.name}: ${e.method} (d_G ${e.density}) on ${e.data.name} with ${e.model.name}, seed ${e.seed}, device ${e.device}`,
    `status: ${statusText(s)}, iteration ${s.iter} of ${s.planned}`,
    ...(s.edited.length
      ? [`config.json was edited after its checkpoint (${changesText(s.edited)}); shown here is what was trained, and --resume refuses the edit`]
      : []),
  ];
  if (s.kind === "failed" || s.kind === "diverged") lines.push(`${s.kind}${s.failure.iter === null ? "" : ` after the checkpoint at ${s.failure.iter}`}: ${s.failure.error.split("\n")[0]}`);
  const sum = s.summary;
  if (sum) {
    const f = sum.final;
    lines.push(`final: d_G ${f.densityG.toFixed(3)}, d_D ${f.densityD.toFixed(3)}, BR ${f.br === null ? "n/a" : f.br.toFixed(3)}`);
    lines.push(`training FLOPs: ${sum.flops.total.toExponential(3)}, ${(100 * sum.flops.ratio).toFixed(2)}% of dense (paper convention)`);
    if (sum.eval?.final) lines.push(`eval at ${sum.eval.final.iter}: ${Object.entries(sum.eval.final.metrics).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(", ")}`);
    if (sum.eval?.best && sum.eval.primary && sum.eval.best.metrics[sum.eval.primary] !== undefined) lines.push(`best ${sum.eval.primary}: ${sum.eval.best.metrics[sum.eval.primary]!.toFixed(4)} at ${sum.eval.best.iter}`);
    lines.push(`wall time ${(sum.wallSeconds / 60).toFixed(1)} min, ${sum.restarts} worker restart(s); python ${sum.worker.python}, torch ${sum.worker.torch}`);
  } else if (s.kind === "interrupted") lines.push(`continue with: ${cliName()} run --resume ${dir}`);
  console.log(lines.join("\n"));
  return 0;
}
