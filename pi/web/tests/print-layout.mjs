// Does a report print without cuts? Opens rendered report HTML files in Debian's Chromium
// (playwright-core; the project's Node tooling lives in pi/web), emulates print media at the
// width of an A4 page's printable area, and lists every table, figure or text block whose
// right edge passes it, and any markdown cell (the report's prose) that does not show. Used by face_sentiment.reports (make reports) and its tests.
//
//   node tests/print-layout.mjs REPORT.html [...]   -> JSON {"file": [offenders...]} on stdout
import { pathToFileURL } from "node:url";
import { launchChromium } from "./chromium.mjs";

// A4 is 210 mm wide; the reports print with 12 mm margins (reports.READER_STYLE): 186 mm.
const PAGE_WIDTH_PX = Math.floor((186 / 25.4) * 96);
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

const files = process.argv.slice(2);
if (!files.length) {
  console.error("usage: node tests/print-layout.mjs REPORT.html [...]");
  process.exit(2);
}
let browser;
try {
  browser = await launchChromium(executablePath);
  const page = await browser.newPage({ viewport: { width: PAGE_WIDTH_PX, height: 1100 } });
  await page.emulateMedia({ media: "print" });
  const found = {};
  for (const file of files) {
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    found[file] = await page.evaluate((limit) => {
      const describe = (el) => {
        const text = (el.innerText || el.getAttribute("alt") || "").trim().replace(/\s+/g, " ");
        return `${el.tagName.toLowerCase()} ${Math.round(el.getBoundingClientRect().width)} px` +
          ` wide: ${text.slice(0, 80)}`;
      };
      const offenders = [];
      for (const el of document.querySelectorAll("table, img, svg, pre, .jp-OutputArea-output")) {
        if (el.closest(".jp-CodeCell .jp-Cell-inputWrapper")) continue; // code: never printed
        const box = el.getBoundingClientRect();
        if (box.width === 0) continue;
        if (box.right > limit + 1 || el.scrollWidth > el.clientWidth + 1) offenders.push(describe(el));
      }
      // prose must print: a markdown cell with text but no height was hidden by the style
      for (const cell of document.querySelectorAll(".jp-MarkdownCell")) {
        if (cell.textContent.trim() && cell.getBoundingClientRect().height === 0) {
          offenders.push(`markdown cell not shown: ${cell.textContent.trim().slice(0, 60)}`);
        }
      }
      return offenders;
    }, PAGE_WIDTH_PX);
  }
  console.log(JSON.stringify(found));
} catch (error) {
  console.error(`print-layout: ${error.message}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
}
