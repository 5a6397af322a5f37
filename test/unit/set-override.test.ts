import { describe, expect, it } from "vitest";
import { applySets, parseSet, SetOverrideError } from "../../src/config/set-override.js";

describe("--set path=value", () => {
  it("parses JSON values and keeps bare strings", () => {
    expect(parseSet("density=0.3")).toEqual({ path: ["density"], value: 0.3 });
    expect(parseSet("method=adapt-strict")).toEqual({ path: ["method"], value: "adapt-strict" });
    expect(parseSet("train.betas=[0.5,0.9]")).toEqual({ path: ["train", "betas"], value: [0.5, 0.9] });
    expect(parseSet("generator.dst=null").value).toBeNull();
  });
  it("creates intermediate objects and leaves the input untouched", () => {
    const input = { density: 0.1, train: { lrG: 1 } };
    const out = applySets(input, ["discriminator.controller.lower=0.4", "train.lrD=0.5", "density=0.2"]);
    expect(out).toEqual({ density: 0.2, train: { lrG: 1, lrD: 0.5 }, discriminator: { controller: { lower: 0.4 } } });
    expect(input).toEqual({ density: 0.1, train: { lrG: 1 } });
  });
  it("names what is wrong", () => {
    expect(() => parseSet("density")).toThrow(SetOverrideError);
    expect(() => parseSet("a..b=1")).toThrow(/dotted path/);
    expect(() => parseSet("__proto__.x=1")).toThrow(/dotted path/);
    expect(() => applySets({ density: 0.1 }, ["density.x=1"])).toThrow(/'density' is not an object/);
    expect(() => applySets({ train: { betas: [0.5, 0.9] } }, ["train.betas.2=1"])).toThrow(/'train\.betas' is a list of 2: give an index from 0 to 1/);
    expect(() => applySets({ train: { betas: [0.5, 0.9] } }, ["train.betas.x=1"])).toThrow(/is a list of 2/);
    // A list the file leaves to its default: its elements are not known before the defaults are filled in.
    expect(() => applySets({}, ["train.betas.0=0.3"])).toThrow(/train\.betas\.0: 'train\.betas' is not in the experiment, so it holds its default: set the whole list: --set 'train\.betas=\[\.\.\.\]'/);
  });
  it("sets an element of a list by its index", () => {
    const input = { train: { betas: [0.5, 0.9] } };
    expect(applySets(input, ["train.betas.0=0.3"])).toEqual({ train: { betas: [0.3, 0.9] } });
    expect(input.train.betas).toEqual([0.5, 0.9]);
  });
});
