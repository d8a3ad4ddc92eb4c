const STAGES = ["capture", "detect", "align", "classify", "draw"];
const STAGE_COLOURS = ["#6c7a89", "#e07b39", "#4aa3a2", "#8e6bbf", "#b9b04b"];

function fmt(value, digits = 1, unit = "") {
  return value === null || value === undefined ? "—" : `${Number(value).toFixed(digits)}${unit}`;
}

/** Per-stage latency (mean ms over the last second) as one stacked bar. */
export function Stages({ stages }) {
  const total = stages?.total ?? 0;
  return (
    <section className="panel">
      <h2>
        Latency per stage <span className="muted">mean of the last second, {fmt(total, 1, " ms")} per frame</span>
      </h2>
      <div className="stage-bar" data-testid="stages">
        {STAGES.map((stage, i) => (
          <span
            key={stage}
            style={{ width: total ? `${(100 * (stages?.[stage] ?? 0)) / total}%` : 0, background: STAGE_COLOURS[i] }}
            title={`${stage}: ${fmt(stages?.[stage], 2, " ms")}`}
          />
        ))}
      </div>
      <div className="legend">
        {STAGES.map((stage, i) => (
          <span key={stage}>
            <i style={{ background: STAGE_COLOURS[i] }} />
            {stage} {fmt(stages?.[stage], 1, " ms")}
          </span>
        ))}
      </div>
    </section>
  );
}

function throttleText(throttled) {
  if (!throttled) return null;
  const now = Object.entries(throttled)
    .filter(([key, value]) => value === true && !key.startsWith("occurred"))
    .map(([key]) => key.replaceAll("_", " "));
  return now.length ? now.join(", ") : "none";
}

/** CPU, memory, SoC temperature and throttling (the last two on a Raspberry Pi), the stream. */
export function System({ stats }) {
  const system = stats?.system ?? {};
  const stream = stats?.stream ?? {};
  const clients = stats?.clients ?? {};
  const throttled = throttleText(system.throttled);
  return (
    <section className="panel">
      <h2>System</h2>
      <dl className="facts">
        <dt>CPU, this process</dt>
        <dd data-testid="cpu">{fmt(system.cpu_percent_process, 0, " %")}</dd>
        <dt>CPU, whole machine</dt>
        <dd>{fmt(system.cpu_percent_system, 0, " %")}</dd>
        <dt>memory (RSS)</dt>
        <dd>{fmt(system.rss_mb, 0, " MB")}</dd>
        <dt>SoC temperature</dt>
        <dd>{system.temperature_c === null || system.temperature_c === undefined ? <span className="muted">not read here (a Pi only)</span> : fmt(system.temperature_c, 1, " °C")}</dd>
        {throttled !== null && (
          <>
            <dt>throttling</dt>
            <dd>{throttled}</dd>
          </>
        )}
        <dt>stream</dt>
        <dd>
          {fmt(stream.fps, 0, " fps")}, JPEG {fmt(stream.encode_ms_mean, 1, " ms")}
        </dd>
        <dt>viewers</dt>
        <dd>
          {clients.video ?? 0} video, {clients.records ?? 0} records (max {clients.max ?? "?"} connections)
        </dd>
      </dl>
    </section>
  );
}
