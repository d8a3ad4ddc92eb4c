// Vite build of the live page. The output goes straight into the Python package
// (src/face_sentiment/live/web/), where the runner's server finds it and the wheel carries it;
// scripts/build-info.mjs then writes build-info.json (hash of these sources + of each output).
// `npm run dev` serves the source with hot reload and forwards the API to a runner started
// with `python pi/run.py --source demo --serve 8080`.
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const outDir = fileURLToPath(new URL("../../src/face_sentiment/live/web", import.meta.url));
const runner = process.env.LIVE_RUNNER ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  base: "./", // relative URLs: the page also works behind a reverse proxy's sub-path
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    reportCompressedSize: false,
    target: "es2020",
  },
  server: {
    proxy: {
      "/api": runner,
      "/stream.mjpg": runner,
      "/snapshot.jpg": runner,
    },
  },
});
