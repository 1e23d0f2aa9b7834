// Builds dist/ from src/ with esbuild: one script, one stylesheet, the page.
// The output is deterministic for a given lock file, so the test command
// rebuilds it and fails when the checked-in dist/ differs.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
const common = { bundle: true, minify: true, legalComments: "eof", logLevel: "warning" };
await build({ ...common, entryPoints: ["src/main.ts"], outfile: "dist/app.js", format: "iife", target: "es2020" });
await build({ ...common, entryPoints: ["src/style.css"], outfile: "dist/app.css" });
copyFileSync("src/index.html", "dist/index.html");
