import type { MetricRecord } from "../run/records.js";

/** One line per controller decision and about twenty progress lines per run. */
export function progressPrinter(total: number): (r: MetricRecord) => void {
  const stride = Math.max(1, Math.round(total / 20));
  let br: number | null = null;
  let dD = NaN;
  let dG = NaN;
  let nextLine = stride;
  return (r) => {
    if (r.kind === "br") br = r.br;
    if (r.kind === "density") {
      dG = r.generator;
      dD = r.discriminator;
    }
    const brText = br === null ? "  n/a" : br.toFixed(3);
    if (r.kind === "restart") console.log(`  iter ${String(r.iter).padStart(7)}  worker restarted (attempt ${r.attempt}) from the checkpoint at ${r.fromCheckpoint}: ${r.reason}`);
    if (r.kind === "eval")
      console.log(
        `  iter ${String(r.iter).padStart(7)}  eval: ` +
          Object.entries(r.metrics)
            .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
            .join(", ") +
          (r.picture ? `  -> ${r.picture}` : ""),
      );
    if (r.kind === "controller")
      console.log(`  iter ${String(r.iter).padStart(7)}  controller: BR ${r.br.toFixed(3)} in (${r.lower}, ${r.upper})? -> ${r.decision}, d_D ${r.densityD.toFixed(3)}`);
    if (r.kind === "loss" && (r.iter >= nextLine || r.iter === total)) {
      nextLine = r.iter + stride;
      console.log(
        `  iter ${String(r.iter).padStart(7)}/${total}  BR ${brText}  d_G ${dG.toFixed(3)}  d_D ${dD.toFixed(3)}  loss D ${r.d.toFixed(4)} G ${r.g.toFixed(4)}`,
      );
    }
  };
}
