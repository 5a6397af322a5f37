import { z } from "zod";

/** The Slurm side of `ddst table --slurm`, as the flags give it. */

/** Slurm's --time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S. */
const TIME = /^(?:(\d+)-(\d+)(?::(\d+)(?::(\d+))?)?|(\d+)(?::(\d+)(?::(\d+))?)?)$/;

/** Seconds in a Slurm time limit, or null when `text` is not one. */
export function timeLimitSeconds(text: string): number | null {
  const m = TIME.exec(text);
  if (!m) return null;
  const n = (s: string | undefined) => (s === undefined ? 0 : Number(s));
  if (m[1] !== undefined) return ((n(m[1]) * 24 + n(m[2])) * 60 + n(m[3])) * 60 + n(m[4]);
  // M, M:S, H:M:S
  if (m[7] !== undefined) return (n(m[5]) * 60 + n(m[6])) * 60 + n(m[7]);
  if (m[6] !== undefined) return n(m[5]) * 60 + n(m[6]);
  return n(m[5]) * 60;
}

const oneLine = (what: string) => z.string().min(1).regex(/^[^\n\r]*$/, `${what} must be one line`);

/** Slurm names (partitions, accounts): no spaces or anything a #SBATCH line would read differently. */
const slurmName = (what: string) => z.string().regex(/^[\w.,:+-]+$/, `${what} must be a Slurm name (letters, digits and . , : + - _)`);

/** sbatch options the script sets itself and depends on (a second one would win or conflict), each with what
 * to do instead: [long names, short letters, why]. */
const OWN_OPTIONS: [string[], string, string][] = [
  [["array"], "a", "ddst writes the array from the cells to submit"],
  [["signal"], "", "ddst signals the task before --time runs out, to checkpoint and requeue it"],
  [["output", "error", "open-mode"], "oe", "ddst writes each task's log to DIR/slurm/logs, where --status finds it"],
  [["requeue", "no-requeue"], "", "ddst requeues its tasks to resume their cells"],
  [["ntasks"], "n", "a task is one ddst process"],
  [["export"], "", "a task needs the submitting environment (PATH, and the variables the cells' paths name)"],
  [["partition"], "p", "use --partition"],
  [["account"], "A", "use --account"],
  [["time"], "t", "use --time (ddst times its checkpoint before it)"],
];

/** Why `arg` is one of OWN_OPTIONS, or null. sbatch reads long options as getopt_long does, an unambiguous
 * prefix included (--sig=...), so a prefix of two letters or more counts. */
function ownOption(arg: string): string | null {
  const long = /^--([\w-]+)/.exec(arg)?.[1];
  const short = /^-(\w)/.exec(arg)?.[1];
  const hit = OWN_OPTIONS.find(([names, letters]) => (long !== undefined ? long.length >= 2 && names.some((n) => n.startsWith(long)) : short !== undefined && letters.includes(short)));
  return hit ? hit[2] : null;
}

/** A GPU request among --sbatch-arg (--gres=gpu[:type][:N], --gpus[-per-task|-per-node]=[type:]N, -G N): the
 * number of GPUs it asks for, or null when `arg` asks for none. A task trains its cells on one GPU, so the script
 * leaves its own --gres=gpu:1 out when the user names the GPU (a type, say) this way. */
export function gpuRequest(arg: string): number | null {
  const m = /^(?:--gres|--gpus(?:-per-(?:task|node))?|-G)(?:=|\s+|(?<=^-G))(\S+)$/.exec(arg.trim());
  if (!m) return null;
  const isGres = arg.startsWith("--gres");
  const spec = isGres ? m[1]!.split(",").find((g) => /^gpu(:|$)/.test(g)) : m[1];
  if (spec === undefined) return null; // --gres=shard:2 and such: not a GPU
  const last = spec.split(":").at(-1)!;
  if (/^\d+$/.test(last)) return Number(last);
  return isGres || spec.includes(":") ? 1 : NaN; // gres "gpu[:type]" means one; "--gpus=a100" names no count
}

export const SlurmOptions = z
  .strictObject({
  partition: slurmName("--partition").optional(),
  account: slurmName("--account").optional(),
  time: oneLine("--time")
    .refine((t) => (timeLimitSeconds(t) ?? 0) > 0, "--time must be a Slurm time limit: minutes, H:M:S or D-H:M:S (e.g. 24:00:00)")
    .optional(),
  /** A cell trains on one device: one GPU, or none for a CPU partition. */
  gpusPerCell: z.union([z.literal(0), z.literal(1)], {
    error: "--gpus-per-cell must be 1 (a cell trains on one GPU) or 0 (a CPU partition); to share a GPU, use --cells-per-gpu",
  }),
  /** Cells that share one array task and its GPU (or its CPUs when gpusPerCell is 0). */
  cellsPerGpu: z.number().int().min(1, "--cells-per-gpu must be at least 1").max(64, "--cells-per-gpu above 64 is surely a mistake"),
  sbatchArgs: z.array(
    oneLine("--sbatch-arg")
      .regex(/^-/, "--sbatch-arg takes an sbatch option such as --mem=32G")
      .superRefine((arg, ctx) => {
        const why = ownOption(arg);
        if (why) ctx.addIssue({ code: "custom", message: `--sbatch-arg ${arg}: ddst sets this option itself (${why})` });
      }),
  ),
  })
  .superRefine((o, ctx) => {
    const asked = o.sbatchArgs.flatMap((arg) => {
      const n = gpuRequest(arg);
      return n === null ? [] : [{ arg, n }];
    });
    for (const { arg, n } of asked) {
      if (o.gpusPerCell === 0)
        ctx.addIssue({ code: "custom", path: ["sbatchArgs"], message: `--sbatch-arg ${arg}: --gpus-per-cell 0 trains on the CPU, so a GPU would sit idle; leave it out, or train on GPUs` });
      else if (n !== 1)
        ctx.addIssue({ code: "custom", path: ["sbatchArgs"], message: `--sbatch-arg ${arg}: a task trains its cells on one GPU (--cells-per-gpu says how many share it); ask for one, e.g. --gres=gpu:a100:1` });
    }
    if (asked.length > 1)
      ctx.addIssue({ code: "custom", path: ["sbatchArgs"], message: `--sbatch-arg: ${asked.map((a) => a.arg).join(" and ")} both ask for the task's GPU; give one` });
  });
export type SlurmOptions = z.infer<typeof SlurmOptions>;

/** Seconds before the time limit at which a task is told to checkpoint and requeue itself: two minutes, or a
 * fifth of a short limit. */
export function signalLead(time: string | undefined): number {
  const limit = time === undefined ? null : timeLimitSeconds(time);
  return limit === null ? 120 : Math.max(5, Math.min(120, Math.floor(limit / 5)));
}
