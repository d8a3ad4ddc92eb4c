// Talking to the runner's server: the access token, URLs, the Server-Sent Events feed.
// Every URL is relative, so the page also works behind a reverse proxy's sub-path.

const TOKEN_KEY = "face-sentiment-live-token";

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the token then lives in memory only
  }
}

/** The token from ?token= (then removed from the address bar) or from this tab's storage. */
export function initialToken() {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    storage()?.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return storage()?.getItem(TOKEN_KEY) ?? "";
}

export function saveToken(token) {
  if (token) storage()?.setItem(TOKEN_KEY, token);
  else storage()?.removeItem(TOKEN_KEY);
}

export function withToken(path, token) {
  if (!token) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

/** GET a JSON endpoint; resolves to {status, body}. */
export async function getJson(path, token) {
  const response = await fetch(withToken(path, token), { cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

/**
 * Follow api/events. handlers: hello(payload), frame(record), stats(stats), state(name)
 * with name in connecting | live | reconnecting | token | busy. Returns a function that
 * closes the feed. After an error it asks api/status why (401: the token is wrong or missing,
 * 503: too many viewers) and reconnects after a pause unless the token is the problem.
 */
export function followEvents(token, handlers) {
  let source = null;
  let timer = null;
  let closed = false;

  const open = () => {
    if (closed) return;
    handlers.state?.("connecting");
    source = new EventSource(withToken("api/events", token));
    source.addEventListener("hello", (event) => {
      handlers.state?.("live");
      handlers.hello?.(JSON.parse(event.data));
    });
    source.addEventListener("frame", (event) => handlers.frame?.(JSON.parse(event.data)));
    source.addEventListener("stats", (event) => handlers.stats?.(JSON.parse(event.data)));
    source.onerror = async () => {
      if (closed) return;
      source.close();
      let status = 0;
      try {
        status = (await getJson("api/status", token)).status;
      } catch {
        status = 0; // the runner is gone or restarting
      }
      if (closed) return;
      if (status === 401) {
        handlers.state?.("token");
        return;
      }
      handlers.state?.(status === 503 ? "busy" : "reconnecting");
      timer = setTimeout(open, status === 503 ? 10000 : 2000);
    };
  };

  open();
  return () => {
    closed = true;
    clearTimeout(timer);
    source?.close();
  };
}
