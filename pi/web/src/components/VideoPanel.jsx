import { useEffect, useState } from "react";
import { withToken } from "../api.js";

/** The annotated MJPEG stream in a plain <img> (every browser shows it without plugins). */
export default function VideoPanel({ token, enabled, source }) {
  const [attempt, setAttempt] = useState(0);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    if (!failed) return undefined;
    const timer = setTimeout(() => {
      setFailed(false);
      setAttempt((n) => n + 1);
    }, 3000);
    return () => clearTimeout(timer);
  }, [failed]);

  const src = withToken(`stream.mjpg?v=${attempt}`, token);
  return (
    <section className="panel video-panel">
      <h2>
        Video <span className="muted source-name">{source}</span>
      </h2>
      <div className="video-frame">
        {enabled && !failed ? (
          <img
            key={attempt}
            id="live-video"
            data-testid="video"
            src={src}
            alt="annotated camera stream: boxes, labels and confidence per face"
            onError={() => setFailed(true)}
          />
        ) : (
          <div className="video-placeholder">{failed ? "video lost, retrying…" : "waiting for the runner…"}</div>
        )}
      </div>
    </section>
  );
}
