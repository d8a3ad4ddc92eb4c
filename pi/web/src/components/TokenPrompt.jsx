import { useState } from "react";

/** Shown when the runner answers 401: it was started with a token (or bound to the network). */
export default function TokenPrompt({ onToken, wrong }) {
  const [value, setValue] = useState("");
  return (
    <section className="panel token-panel" data-testid="token-prompt">
      <h2>Access token needed</h2>
      <p>
        This runner serves its camera feed only with its access token. Open the address it printed
        (<code>…/?token=…</code>) or paste the token here.
      </p>
      {wrong && <p className="warning">That token was not accepted.</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (value.trim()) onToken(value.trim());
        }}
      >
        <input type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} placeholder="token" aria-label="access token" />
        <button type="submit">Open</button>
      </form>
    </section>
  );
}
