// Bar charts drawn as SVG by hand: one bar per day, a few gridlines, the peak labelled, and
// every bar titled with its date and value for hover and screen readers.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The smallest 1, 2 or 5 × 10^k at or above `value` (0 stays 0), so gridlines fall on round
 * numbers. */
export function niceCeiling(value) {
  if (value <= 0) return 0;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find((f) => f * power >= value * (1 - 1e-9));
  return step * power;
}

/** A figure of `points` ([{date, value}]) titled `title`, values shown with `format`. */
export function barChart(title, points, format) {
  const peak = niceCeiling(Math.max(0, ...points.map((p) => p.value)));
  const labels = [0, 0.5, 1].map((share) => {
    const value = peak * share;
    // no label on a line between two whole numbers of whole things (2.5 requests)
    const whole = points.every((p) => Number.isInteger(p.value));
    return (share && !peak) || (whole && !Number.isInteger(value)) ? "" : format(value);
  });
  const width = 360;
  const height = 150;
  const left = Math.max(36, Math.ceil(Math.max(...labels.map((l) => l.length)) * 6.4) + 10);
  const bottom = 20;
  const top = 8;
  const plotW = width - left - 4;
  const plotH = height - bottom - top;
  const total = points.reduce((sum, p) => sum + p.value, 0);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${title} per day: ${format(total)} in total, at most ${format(peak)} a day` });
  [0, 0.5, 1].forEach((share, i) => {
    const y = top + plotH * (1 - share);
    chart.append(svg("line", { class: share ? "grid-line" : "axis", x1: left, x2: width, y1: y, y2: y }));
    if (labels[i]) chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, labels[i]));
  });
  const step = plotW / Math.max(points.length, 1);
  const barW = Math.max(step * 0.7, 1);
  points.forEach((point, i) => {
    const barH = peak ? (point.value / peak) * plotH : 0;
    const x = left + i * step + (step - barW) / 2;
    const bar = svg("rect", { class: "bar", x, y: top + plotH - barH, width: barW,
      height: Math.max(barH, point.value ? 1 : 0) });
    bar.append(svg("title", {}, `${point.date}: ${format(point.value)}`));
    chart.append(bar);
  });
  if (points.length) {
    const first = points[0].date.slice(5);
    const last = points[points.length - 1].date.slice(5);
    chart.append(svg("text", { x: left, y: height - 4 }, first));
    chart.append(svg("text", { x: width, y: height - 4, "text-anchor": "end" }, last));
  }
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = `${title} · ${format(total)}`;
  figure.append(caption, chart);
  const wrap = document.createElement("div");
  wrap.className = "chart";
  wrap.append(figure);
  return wrap;
}

/** Requests, tokens and cost per day, side by side, from a /v1/usage/daily list. */
export function usageCharts(days, { num, usd }) {
  const series = (key) => days.map((d) => ({ date: d.date, value: Number(d[key] || 0) }));
  const compact = (n) => (n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${Math.round(n / 1e3)}k`
    : Number.isInteger(n) ? num(n) : n.toFixed(1));
  const money = (n) => (n && n < 0.01 ? `$${+n.toPrecision(2)}` : usd(n).replace(/(\.\d\d)\d+$/, "$1"));
  const wrap = document.createElement("div");
  wrap.className = "charts";
  wrap.append(barChart("Requests", series("requests"), compact),
    barChart("Tokens", series("total_tokens"), compact),
    barChart("Cost", series("cost_usd"), money));
  return wrap;
}
