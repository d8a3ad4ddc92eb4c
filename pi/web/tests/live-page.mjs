// Headless-browser check of the live page (tests/test_live_page.py runs it against a runner
// started with --serve --token). Drives Debian's Chromium through playwright-core (no browser
// download). Prints one JSON object with what it saw; exit 1 with the reason on failure.
//
//   node tests/live-page.mjs --url http://127.0.0.1:8080/ --token T --screenshot reports/live-page.png
//
// Checks: without the token the API and the stream answer 401 and the page asks for it; with
// it the page goes live, the MJPEG <img> shows frames that change, the face count and the
// timeline follow the pushed records, and the token leaves the address bar. On a phone-sized
// page fed a canned record (a long source name, a face marked held) nothing overflows the
// screen and the held face is marked.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { launchChromium } from "./chromium.mjs";

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

const base = option("url", "http://127.0.0.1:8080/");
const token = option("token", "");
const screenshot = option("screenshot", "");
const executablePath = option("chromium", process.env.CHROMIUM ?? "/usr/bin/chromium");
const timeout = Number(option("timeout", "20000"));
const result = { url: base, checks: {} };

function check(name, ok, detail) {
  result.checks[name] = { ok: Boolean(ok), detail };
  if (!ok) throw new Error(`${name}: ${JSON.stringify(detail)}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let browser;
try {
  browser = await launchChromium(executablePath);

  // 1. The token is enforced: API and stream refuse requests without it, the page asks for it.
  const anonymous = await browser.newContext();
  const api = await anonymous.request.get(new URL("api/status", base).href);
  const stream = await anonymous.request.get(new URL("stream.mjpg", base).href, { timeout: 5000 });
  const events = await anonymous.request.get(new URL("api/events", base).href, { timeout: 5000 });
  check("api refuses without token", api.status() === 401, api.status());
  check("stream refuses without token", stream.status() === 401, stream.status());
  check("events refuse without token", events.status() === 401, events.status());
  const wrong = await anonymous.request.get(new URL("api/frames?token=wrong", base).href);
  check("wrong token refused", wrong.status() === 401, wrong.status());
  const page0 = await anonymous.newPage();
  await page0.goto(base);
  await page0.getByTestId("token-prompt").waitFor({ timeout });
  check("page asks for the token", true, await page0.getByTestId("state").textContent());
  await anonymous.close();

  // 2. With the token the page goes live.
  const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  await page.goto(`${base}?token=${encodeURIComponent(token)}`);
  await page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.textContent === "live", null, { timeout });
  check("token left the address bar", !page.url().includes("token="), page.url());

  // 3. The MJPEG stream shows frames, and they change.
  const video = page.getByTestId("video");
  await page.waitForFunction(() => document.querySelector("#live-video")?.naturalWidth > 0, null, { timeout });
  const size = await video.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  check("stream shows a frame", size[0] > 0 && size[1] > 0, size);
  const shots = [];
  for (let i = 0; i < 4; i += 1) {
    shots.push(await video.screenshot());
    await sleep(700);
  }
  const distinct = new Set(shots.map((shot) => shot.toString("base64"))).size;
  check("stream frames change", distinct >= 2, { distinct, of: shots.length });

  // 4. Face count and timeline follow the pushed records.
  const read = () =>
    page.evaluate(() => ({
      received: Number(document.querySelector('[data-testid="received"]').textContent),
      frame: document.querySelector('[data-testid="frame"]').textContent,
      faces: document.querySelector('[data-testid="face-count"]').textContent,
      timelineRecords: Number(document.querySelector('[data-testid="timeline"]').dataset.records),
      timelineFaces: Number(document.querySelector('[data-testid="timeline"]').dataset.faces),
      version: Number(document.querySelector('[data-testid="timeline"]').dataset.version),
      bars: document.querySelectorAll('[data-testid="face"]').length,
      fps: document.querySelector('[data-testid="fps"]').textContent,
    }));
  const first = await read();
  const seenFaces = new Set([first.faces]);
  let last = first;
  for (let i = 0; i < 10; i += 1) {
    await sleep(300);
    last = await read();
    seenFaces.add(last.faces);
  }
  check("records are pushed", last.received > first.received, { first: first.received, last: last.received });
  check("frame number follows", last.frame !== first.frame, { first: first.frame, last: last.frame });
  check("face count shown", [...seenFaces].some((v) => /^\d+$/.test(v) && Number(v) > 0), [...seenFaces]);
  check("timeline counts pushed records", last.timelineRecords > first.timelineRecords && last.timelineFaces > 0, {
    first: first.timelineRecords,
    last: last.timelineRecords,
    faces: last.timelineFaces,
  });
  check("timeline redrawn", last.version > first.version, { first: first.version, last: last.version });
  const filled = await page.evaluate(
    () => [...document.querySelectorAll('[data-testid="timeline"] polygon')].filter((p) => p.getBBox().height > 0).length,
  );
  check("timeline has areas", filled > 0, filled);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="face"]').length > 0, null, { timeout });
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-testid="fps"]').textContent), null, { timeout });
  result.page = await read();
  result.console_errors = consoleErrors;
  check("no console errors", consoleErrors.length === 0, consoleErrors);

  // 5. A phone (360 px): a long source name and a held face. The events are canned (the demo
  // clip has one face that is never missed); the video and the API are the runner's.
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 360, height: 740 });
  const classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
  const probabilities = Object.fromEntries(classes.map((name) => [name, name === "happy" ? 0.7 : 0.05]));
  const face = (track, x, held) => ({
    track, box: [x, 40, x + 60, 100], score: 0.9, label: "happy", confidence: 0.7,
    probabilities, smoothed: probabilities, ...(held ? { held: true } : {}),
  });
  const longName = "party-recording-of-the-lab-open-day-2026-12-01-camera-two-full-length.mp4";
  const hello = {
    info: { source: longName, classes, model: "face_sentiment_int8.tflite", detector: "blazeface-full" },
    timeline: { bucket_s: 1, classes, seconds: 600, buckets: [], sequence: 0, last_frame: null },
    stats: null, latest: null, time: Date.now() / 1000,
  };
  const record = { frame: 7, time: Date.now() / 1000, source: `${longName}#7`, faces: [face(1, 20, false), face(2, 200, true)] };
  await phone.route("**/api/events**", (route) =>
    route.fulfill({
      status: 200,
      headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-store" },
      body: `retry: 60000\n\nevent: hello\ndata: ${JSON.stringify(hello)}\n\nevent: frame\ndata: ${JSON.stringify(record)}\n\n`,
    }),
  );
  await phone.goto(base);
  await phone.waitForFunction(() => document.querySelector('[data-testid="face-count"]')?.textContent === "2", null, { timeout });
  const held = await phone.evaluate(() =>
    [...document.querySelectorAll('[data-testid="face"][data-held="true"]')].map((card) => card.textContent),
  );
  check("held face marked", held.length === 1 && held[0].includes("held") && held[0].includes("#2"), held);
  const widths = await phone.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    screen: window.innerWidth,
    source: document.querySelector('[data-testid="source"]').textContent,
  }));
  check("nothing overflows a phone screen", widths.page <= widths.screen, widths);
  check("header names the source", widths.source.includes(longName), widths.source);
  result.phone = widths;
  await phone.close();

  if (screenshot) {
    mkdirSync(dirname(screenshot), { recursive: true });
    await sleep(500);
    await page.screenshot({ path: screenshot, fullPage: true });
    result.screenshot = screenshot;
  }
  result.ok = true;
  console.log(JSON.stringify(result));
} catch (error) {
  result.ok = false;
  result.error = String(error?.message ?? error);
  console.log(JSON.stringify(result));
  process.exitCode = 1;
} finally {
  await browser?.close();
}
