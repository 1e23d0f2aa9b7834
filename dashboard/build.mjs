// Builds dist/ from src/ with esbuild: one script, one stylesheet, the page.
// The output is deterministic for a given lock file, so the test command
// rebuilds it and fails when the checked-in dist/ differs.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

// OUT=dir builds elsewhere (the test command compares that build with dist/).
const out = process.env.OUT ?? "dist";
mkdirSync(out, { recursive: true });
const common = { bundle: true, minify: true, legalComments: "eof", logLevel: "warning" };
await build({ ...common, entryPoints: ["src/main.ts"], outfile: `${out}/app.js`, format: "iife", target: "es2020" });
await build({ ...common, entryPoints: ["src/style.css"], outfile: `${out}/app.css` });
copyFileSync("src/index.html", `${out}/index.html`);
