// Debian's Chromium through playwright-core, with the flags this machine needs (no sandbox as
// root; no background networking, whose connections the closed network refuses): the one
// launch of the page tests (live-page.mjs) and the reports' print check (print-layout.mjs).
// playwright's launch() gives Chromium a fresh, temporary --user-data-dir itself.
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

export async function launchChromium(executablePath) {
  if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}`);
  return chromium.launch({
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
