// The overlay's colours (runner.COLOURS, sent in the hello event); these are the fallback.
export const FALLBACK_COLOURS = {
  angry: "#dc2828",
  disgust: "#288c28",
  fear: "#a03ca0",
  happy: "#f0c828",
  sad: "#2878c8",
  surprise: "#28c8f0",
  neutral: "#c8c8c8",
  contempt: "#287878",
};

export function colourOf(colours, name) {
  return colours?.[name] ?? FALLBACK_COLOURS[name] ?? "#a0a0a0";
}
