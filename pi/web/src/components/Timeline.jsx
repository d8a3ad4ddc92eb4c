import { useState } from "react";
import { colourOf } from "../colours.js";

const RANGES = [
  { label: "1 min", seconds: 60, bins: 60 },
  { label: "5 min", seconds: 300, bins: 60 },
  { label: "10 min", seconds: 600, bins: 60 },
];
const WIDTH = 600;
const HEIGHT = 150;

/** Stacked areas: the share of each expression among the faces seen, per bin. */
export default function Timeline({ store, classes, colours, version }) {
  const [range, setRange] = useState(RANGES[1]);
  const bins = store ? store.bins(range.seconds, range.bins) : [];
  const step = bins.length > 1 ? WIDTH / (bins.length - 1) : WIDTH;
  const x = (i) => i * step;
  const y = (share) => HEIGHT - share * HEIGHT;
  const bottoms = bins.map(() => 0);
  const areas = classes.map((name, c) => {
    const lower = bins.map((_, i) => bottoms[i]);
    const upper = bins.map((bin, i) => (bottoms[i] += bin.shares[c]));
    const top = upper.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    const bottom = lower.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).reverse();
    return { name, points: [...top, ...bottom].join(" ") };
  });
  const totals = classes.map((_, c) => bins.reduce((sum, bin) => sum + bin.counts[c], 0));
  const faces = totals.reduce((a, b) => a + b, 0);
  return (
    <section className="panel timeline-panel">
      <h2>
        Expressions over time{" "}
        <span className="muted">share of the faces seen, {range.label}</span>
        <span className="range-buttons">
          {RANGES.map((r) => (
            <button key={r.label} type="button" className={r === range ? "on" : ""} onClick={() => setRange(r)}>
              {r.label}
            </button>
          ))}
        </span>
      </h2>
      <svg
        className="timeline"
        data-testid="timeline"
        data-records={store?.records ?? 0}
        data-faces={faces}
        data-version={version}
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        preserveAspectRatio="none"
        role="img"
        aria-label="stacked shares of each expression over time"
      >
        <rect x="0" y="0" width={WIDTH} height={HEIGHT} className="timeline-bg" />
        {areas.map((area) => (
          <polygon key={area.name} points={area.points} fill={colourOf(colours, area.name)} data-class={area.name} />
        ))}
      </svg>
      <div className="timeline-axis muted">
        <span>−{range.label}</span>
        <span>now</span>
      </div>
      <div className="legend">
        {classes.map((name, c) => (
          <span key={name}>
            <i style={{ background: colourOf(colours, name) }} />
            {name} {faces ? `${((100 * totals[c]) / faces).toFixed(0)}%` : ""}
          </span>
        ))}
        <span className="muted">{faces} faces; grey: none seen</span>
      </div>
    </section>
  );
}
