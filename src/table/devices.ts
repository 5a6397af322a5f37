/** Where a table's concurrent cells run: `--devices cuda:0,cuda:1` or `cpu`, shared round-robin by the `--jobs`
 * slots, so several cells may share one GPU (one run leaves an H100 mostly idle). A GPU is pinned with
 * CUDA_VISIBLE_DEVICES, which keeps the worker's own device "cuda"; CPU slots divide the cores. */

export interface Slot {
  /** What the user wrote: cpu, cuda or cuda:N. */
  label: string;
  device: "cpu" | "cuda";
  env: Record<string, string>;
  /** torch threads for a CPU slot; undefined leaves torch's choice. */
  threads?: number;
}

export class DeviceListError extends Error {}

export function parseDevices(list: string): string[] {
  const items = list.split(",").map((s) => s.trim());
  for (const d of items)
    if (!/^(auto|cpu|cuda(:\d+)?)$/.test(d)) throw new DeviceListError(`--devices: '${d}' is not a device; use auto, cpu, cuda or cuda:N, comma-separated (e.g. cuda:0,cuda:1)`);
  return items;
}

/** Refuses a `cuda:N` past the GPUs torch sees (`gpus`, counted under the inherited CUDA_VISIBLE_DEVICES): every
 * cell there would fail at its worker's start, one at a time. */
export function checkGpuIndices(devices: readonly string[], gpus: number): void {
  const past = devices.find((d) => d.startsWith("cuda:") && Number(d.split(":")[1]) >= gpus);
  if (past) throw new DeviceListError(`--devices: ${past}, but torch sees ${gpus} GPU${gpus === 1 ? "" : "s"} here (cuda:0${gpus > 1 ? ` to cuda:${gpus - 1}` : ""})`);
}

/** `auto` as the machine decides it: cuda when torch sees a GPU, else cpu. */
export const resolveAuto = (devices: readonly string[], cudaAvailable: boolean): string[] =>
  devices.map((d) => (d === "auto" ? (cudaAvailable ? "cuda" : "cpu") : d));

/** One slot per job, devices taken in turn; the cores are split evenly between the CPU slots. `cuda:N` is the
 * N-th GPU this process may use: under an inherited CUDA_VISIBLE_DEVICES (a scheduler's allocation) the N-th
 * entry of that list. */
export function assignSlots(devices: readonly string[], jobs: number, cores: number, visible = process.env.CUDA_VISIBLE_DEVICES): Slot[] {
  if (!Number.isInteger(jobs) || jobs < 1) throw new DeviceListError(`--jobs must be a positive integer, got ${jobs}`);
  const labels = Array.from({ length: jobs }, (_, i) => devices[i % devices.length]!);
  const cpuSlots = labels.filter((l) => l === "cpu").length;
  return labels.map((label): Slot => {
    if (label === "cpu") return { label, device: "cpu", env: {}, threads: Math.max(1, Math.floor(cores / cpuSlots)) };
    const index = label.split(":")[1];
    if (index === undefined) return { label, device: "cuda", env: {} };
    const allowed = visible?.split(",").map((s) => s.trim()).filter(Boolean);
    if (allowed && Number(index) >= allowed.length)
      throw new DeviceListError(`--devices: ${label}, but CUDA_VISIBLE_DEVICES=${visible} allows ${allowed.length} GPU(s) (cuda:0 to cuda:${allowed.length - 1})`);
    return { label, device: "cuda", env: { CUDA_VISIBLE_DEVICES: allowed ? allowed[Number(index)]! : index } };
  });
}
