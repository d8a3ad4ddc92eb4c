// Writes build-info.json into the built bundle: the SHA-256 of the page's sources and of every
// built file, so a test can tell that the committed bundle was built from the committed source
// (tests/test_live_server.py recomputes the source hash with the same rule, in Python).
//
// Sources: index.html, package.json, package-lock.json, vite.config.js and every file under
// src/ and scripts/ (dot files left out). Hash: SHA-256 of the lines "<sha256>  <path>\n"
// (sha256sum's format) sorted by path.
//
//   node scripts/build-info.mjs          after `vite build` (npm run build does both)
//   node scripts/build-info.mjs --check  exit 1 when the bundle is not built from these sources
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));
const bundle = fileURLToPath(new URL("../../../src/face_sentiment/live/web", import.meta.url));
const TOP_FILES = ["index.html", "package.json", "package-lock.json", "vite.config.js"];
const FOLDERS = ["src", "scripts"];
const INFO = "build-info.json";

const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const posix = (path) => path.split(sep).join("/");

function walk(folder) {
  const found = [];
  for (const name of readdirSync(folder)) {
    if (name.startsWith(".")) continue;
    const path = join(folder, name);
    const info = statSync(path);
    if (info.isDirectory()) found.push(...walk(path));
    else if (info.isFile()) found.push(path);
  }
  return found;
}

function digest(root, paths) {
  const entries = paths
    .map((path) => [posix(relative(root, path)), sha256(readFileSync(path))])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const listing = entries.map(([path, hash]) => `${hash}  ${path}\n`).join("");
  return { hash: sha256(listing), files: Object.fromEntries(entries) };
}

export function sourceDigest() {
  const paths = [...TOP_FILES.map((name) => join(here, name)), ...FOLDERS.flatMap((f) => walk(join(here, f)))];
  return digest(here, paths);
}

const sources = sourceDigest();
if (process.argv.includes("--check")) {
  let built = null;
  try {
    built = JSON.parse(readFileSync(join(bundle, INFO), "utf8"));
  } catch (error) {
    console.error(`no ${INFO} in ${bundle}: run npm run build (${error.message})`);
    process.exit(1);
  }
  if (built.source_sha256 !== sources.hash) {
    console.error(`the bundle in ${bundle} was built from other sources: run npm run build`);
    process.exit(1);
  }
  console.log(`bundle matches the sources (${sources.hash.slice(0, 12)})`);
} else {
  const outputs = digest(bundle, walk(bundle).filter((path) => posix(relative(bundle, path)) !== INFO));
  const vite = JSON.parse(readFileSync(join(here, "node_modules", "vite", "package.json"), "utf8")).version;
  const info = {
    source_sha256: sources.hash,
    sources: sources.files,
    files: outputs.files,
    bytes: Object.keys(outputs.files).reduce((sum, path) => sum + statSync(join(bundle, path)).size, 0),
    built_with: { vite },
  };
  writeFileSync(join(bundle, INFO), `${JSON.stringify(info, null, 2)}\n`);
  console.log(`${INFO}: sources ${sources.hash.slice(0, 12)}, ${Object.keys(outputs.files).length} files, ${info.bytes} bytes`);
}
