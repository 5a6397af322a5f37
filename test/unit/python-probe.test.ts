import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { probePython } from "../../src/worker/discover.js";
import { tempDir } from "../integration/helpers.js";

describe("probing an interpreter", () => {
  it("gives up at its time limit even when a wrapper's child keeps the pipes open", async () => {
    // A wrapper that leaves a child holding stdout (a hung `module load`, say) and never answers.
    const wrapper = join(tempDir(), "python");
    writeFileSync(wrapper, "#!/bin/sh\nsleep 30 &\nwait\n", { mode: 0o755 });
    const started = Date.now();
    const c = await probePython(wrapper, "DDST_PYTHON", false, 1000);
    expect(c).toMatchObject({ ok: false, reason: "gave no answer within 1 s (looking for its packages)" });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
