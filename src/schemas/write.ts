import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateSchemas } from "./generate.js";

// `npm run schemas`: regenerate schemas/ from the zod source.
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const dir = join(root, "schemas");
mkdirSync(dir, { recursive: true });
for (const [name, text] of Object.entries(generateSchemas())) {
  writeFileSync(join(dir, name), text);
  console.log(`wrote schemas/${name}`);
}
