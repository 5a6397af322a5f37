import { surveyPythons } from "../worker/discover.js";

/** `ddst doctor`: which Python ddst would use, and why the others were rejected. */
export async function cmdDoctor(): Promise<number> {
  const found = await surveyPythons();
  // An explicit DDST_PYTHON is the only choice when set: a broken one is not replaced by another.
  let chosen = Boolean(process.env.DDST_PYTHON) && !found[0]?.ok;
  for (const c of found) {
    const mark = c.ok && !chosen ? "->" : "  ";
    if (c.ok && !chosen) chosen = true;
    console.log(
      `${mark} ${c.path} (${c.source}): ` +
        (c.ok ? `python ${c.python}, torch ${c.torch}, pyzmq ${c.zmq}, cuda ${c.cuda ? "yes" : "no"}` : `rejected: ${c.reason}`),
    );
  }
  if (!chosen) {
    console.log("no usable Python: run `npm run setup`, or set DDST_PYTHON to an interpreter with torch, pyzmq and jsonschema");
    return 1;
  }
  if (process.env.DDST_PYTHON && !found[0]?.ok) {
    console.log("DDST_PYTHON is set but unusable: ddst will refuse to run until it is fixed or unset");
    return 1;
  }
  return 0;
}
