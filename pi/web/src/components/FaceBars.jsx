import { colourOf } from "../colours.js";

const MAX_FACES = 8;

function Face({ face, classes, colours }) {
  const smoothed = face.smoothed ?? face.probabilities ?? {};
  // A held face was missed by the detector on this frame: its last box and probabilities,
  // no output of this frame (no tick).
  const held = face.held === true;
  const raw = held ? {} : (face.probabilities ?? {});
  return (
    <div className={held ? "face face-held" : "face"} data-testid="face" data-held={held ? "true" : undefined}>
      <div className="face-head" style={{ borderColor: colourOf(colours, face.label) }}>
        <span className="face-id">{face.track === null || face.track === undefined ? "face" : `#${face.track}`}</span>
        <strong style={{ color: colourOf(colours, face.label) }}>{face.label}</strong>
        <span className="muted">{(100 * (face.confidence ?? 0)).toFixed(0)}%</span>
        {held && (
          <span className="held-badge" title="missed by the detector on this frame: shown at its last box with its last probabilities">
            held
          </span>
        )}
      </div>
      {classes.map((name) => {
        const value = smoothed[name] ?? 0;
        const rawValue = raw[name];
        return (
          <div className="bar-row" key={name} title={`${name}: smoothed ${(100 * value).toFixed(1)}%, this frame ${rawValue === undefined ? "?" : (100 * rawValue).toFixed(1)}%`}>
            <span className="bar-label">{name}</span>
            <span className="bar-track">
              <span className="bar-fill" style={{ width: `${100 * value}%`, background: colourOf(colours, name) }} />
              {rawValue !== undefined && <span className="bar-raw" style={{ left: `${100 * rawValue}%` }} />}
            </span>
            <span className="bar-value">{(100 * value).toFixed(0)}</span>
          </div>
        );
      })}
    </div>
  );
}

/** Current class probabilities of every face of the newest frame (smoothed bars, raw ticks). */
export default function FaceBars({ record, classes, colours }) {
  const faces = [...(record?.faces ?? [])].sort((a, b) => (a.box?.[0] ?? 0) - (b.box?.[0] ?? 0));
  return (
    <section className="panel faces-panel">
      <h2>
        Faces <span className="muted">smoothed probabilities; tick: this frame's output; held: missed by the detector just now</span>
      </h2>
      {faces.length === 0 ? (
        <p className="muted">no face in this frame</p>
      ) : (
        <div className="faces">
          {faces.slice(0, MAX_FACES).map((face, i) => (
            <Face key={face.track ?? `i${i}`} face={face} classes={classes} colours={colours} />
          ))}
          {faces.length > MAX_FACES && <p className="muted">+{faces.length - MAX_FACES} more</p>}
        </div>
      )}
    </section>
  );
}
