import { useCallback, useEffect, useRef, useState } from "react";
import { followEvents, initialToken, saveToken } from "./api.js";
import FaceBars from "./components/FaceBars.jsx";
import { Stages, System } from "./components/Stats.jsx";
import Timeline from "./components/Timeline.jsx";
import TokenPrompt from "./components/TokenPrompt.jsx";
import VideoPanel from "./components/VideoPanel.jsx";
import { TimelineStore } from "./timeline.js";

const FALLBACK_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const RENDER_EVERY_MS = 100; // records arrive at the pipeline's rate; the page redraws at 10 Hz
const STATES = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "runner unreachable, retrying…",
  token: "access token needed",
  busy: "too many viewers, retrying…",
};

export default function App() {
  const [token, setToken] = useState(initialToken);
  const [state, setState] = useState("connecting");
  const [tokenTried, setTokenTried] = useState(false);
  const [info, setInfo] = useState(null);
  const [stats, setStats] = useState(null);
  const [record, setRecord] = useState(null);
  const [received, setReceived] = useState(0);
  const [version, setVersion] = useState(0);
  const store = useRef(null);
  const pending = useRef({ record: null, count: 0, timer: null });

  const flush = useCallback(() => {
    const current = pending.current;
    current.timer = null;
    if (current.record) setRecord(current.record);
    setReceived(current.count);
    setVersion((v) => v + 1);
  }, []);

  useEffect(() => {
    const stop = followEvents(token, {
      state: setState,
      hello: (hello) => {
        const classes = hello.info?.classes ?? hello.timeline?.classes ?? FALLBACK_CLASSES;
        store.current = new TimelineStore(classes, hello.timeline?.seconds ?? 600);
        store.current.seed(hello.timeline);
        setInfo(hello.info ?? {});
        if (hello.stats) setStats(hello.stats);
        if (hello.latest) setRecord(hello.latest);
        setVersion((v) => v + 1);
      },
      frame: (frame) => {
        store.current?.add(frame);
        const current = pending.current;
        current.record = frame;
        current.count += 1;
        if (current.timer === null) current.timer = setTimeout(flush, RENDER_EVERY_MS);
      },
      stats: setStats,
    });
    return () => {
      stop();
      clearTimeout(pending.current.timer);
      pending.current.timer = null;
    };
  }, [token, flush]);

  const classes = info?.classes ?? FALLBACK_CLASSES;
  const colours = info?.colours;
  const faces = record?.faces?.length ?? 0;
  const fps = stats?.fps;

  if (state === "token") {
    return (
      <main className="app">
        <Header state={state} />
        <TokenPrompt
          wrong={tokenTried}
          onToken={(value) => {
            saveToken(value);
            setTokenTried(true);
            setToken(value);
          }}
        />
      </main>
    );
  }

  return (
    <main className="app">
      <Header state={state} info={info}>
        <Metric label="FPS" value={fps === null || fps === undefined ? "—" : fps.toFixed(1)} testid="fps" />
        <Metric label="faces" value={record ? faces : "—"} testid="face-count" />
        <Metric label="frame" value={record?.frame ?? "—"} testid="frame" />
        <Metric label="records received" value={received} testid="received" />
      </Header>
      <div className="grid">
        <VideoPanel token={token} enabled={state !== "token"} source={record?.source ?? info?.source ?? ""} />
        <FaceBars record={record} classes={classes} colours={colours} />
        <Timeline store={store.current} classes={classes} colours={colours} version={version} />
        <Stages stages={stats?.stages_ms} />
        <System stats={stats} />
      </div>
      <footer className="muted">
        {info?.detector && `${info.detector} · `}
        {info?.model && `${info.model} · `}
        records: <a href="api/frames">api/frames</a> (JSON lines) · <a href="api/status">api/status</a>
      </footer>
    </main>
  );
}

function Header({ state, info, children }) {
  return (
    <header>
      <h1 title={info?.source ?? undefined}>
        Face sentiment <span className="muted" data-testid="source">live{info?.source ? ` · ${info.source}` : ""}</span>
      </h1>
      <span className={`state state-${state}`} data-testid="state">
        {STATES[state] ?? state}
      </span>
      <div className="metrics">{children}</div>
    </header>
  );
}

function Metric({ label, value, testid }) {
  return (
    <div className="metric">
      <span className="metric-value" data-testid={testid}>
        {value}
      </span>
      <span className="metric-label">{label}</span>
    </div>
  );
}
