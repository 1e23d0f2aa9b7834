// Live figures over the last hour or day, refreshed every 5 seconds.
import { get, qs, Overview } from "../api";
import { h, clear, ms, usd, pct, num, errorBox } from "../dom";
import { TimeChart } from "../chart";

const REFRESH_MS = 5000;

export const money = (v: number) => (v === 0 ? "$0" : v < 0.01 ? `$${v.toPrecision(2)}` : `$${v.toFixed(2)}`);

export async function overview(root: HTMLElement) {
  let windowName = "1h";
  const tiles = h("div", { class: "tiles", id: "overview-tiles" });
  const err = h("div");
  const pick = h("select", { "aria-label": "Window", id: "overview-window" },
    h("option", { value: "1h" }, "Last hour"), h("option", { value: "24h" }, "Last day")) as HTMLSelectElement;
  const box = (title: string, id: string) => {
    const host = h("div", { class: "chart-host" });
    return [h("div", { class: "panel chart", id }, h("h3", {}, title), host), host] as const;
  };
  const [reqBox, reqHost] = box("Requests per minute", "chart-requests");
  const [latBox, latHost] = box("Latency and gateway overhead (ms)", "chart-latency");
  const [rateBox, rateHost] = box("Error rate and cache hit rate", "chart-rates");
  const [costBox, costHost] = box("Spend per interval (USD)", "chart-spend");
  clear(root,
    h("div", { class: "row" }, h("h1", { style: "flex:1" }, "Overview"), pick),
    err, tiles,
    h("div", { class: "charts" }, reqBox, latBox, rateBox, costBox));
  const charts = {
    req: new TimeChart(reqHost, [{ label: "requests/min", color: "#2f6fde" }], (v) => v.toFixed(v < 10 ? 1 : 0)),
    lat: new TimeChart(latHost, [
      { label: "p50", color: "#2f6fde" }, { label: "p95", color: "#b7791f" }, { label: "p99", color: "#c53030" },
      { label: "overhead p50", color: "#1f8f4e" }, { label: "overhead p99", color: "#7b3fb5" },
    ], (v) => (v < 10 ? v.toFixed(2) : v.toFixed(0))),
    rate: new TimeChart(rateHost, [{ label: "errors", color: "#c53030" }, { label: "cache hits", color: "#1f8f4e" }], (v) => `${(v * 100).toFixed(0)}%`),
    cost: new TimeChart(costHost, [{ label: "USD", color: "#7b3fb5" }], money, true),
  };
  const tile = (label: string, value: string, id: string) =>
    h("div", { class: "tile", "data-tile": id }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));

  async function refresh() {
    try {
      const o = await get<Overview>(`/api/overview${qs({ window: windowName })}`);
      const t = o.totals;
      const last = o.points[o.points.length - 1];
      const perMin = t.requests / Math.max(1, o.points.length * (o.step_s / 60));
      clear(tiles,
        tile("Requests/min (now)", last ? last.requests_per_min.toFixed(1) : "0", "rpm"),
        tile(`Requests (${o.window})`, num(t.requests), "requests"),
        tile("Latency p50 / p95 / p99", `${ms(t.latency_p50_ms)} / ${ms(t.latency_p95_ms)} / ${ms(t.latency_p99_ms)}`, "latency"),
        tile("Overhead p50 / p99", `${ms(t.overhead_p50_ms)} / ${ms(t.overhead_p99_ms)}`, "overhead"),
        tile("Error rate", pct(t.error_rate), "errors"),
        tile("Cache hit rate", pct(t.cache_hit_rate), "cache"),
        tile("Spend today", usd(o.spend_today_usd), "today"),
        tile("Spend this month", usd(o.spend_month_usd), "month"),
        tile("Avg requests/min", perMin.toFixed(2), "avg"));
      tiles.dataset.totalRequests = String(t.requests);
      const xs = o.points.map((p) => p.ts_ms);
      charts.req.set(xs, [o.points.map((p) => p.requests_per_min)]);
      // what the requests chart now plots, for tests and the curious
      reqBox.dataset.plotted = String(o.points.reduce((n, p) => n + p.requests, 0));
      charts.lat.set(xs, [
        o.points.map((p) => p.latency_p50_ms), o.points.map((p) => p.latency_p95_ms), o.points.map((p) => p.latency_p99_ms),
        o.points.map((p) => p.overhead_p50_ms), o.points.map((p) => p.overhead_p99_ms),
      ]);
      charts.rate.set(xs, [o.points.map((p) => p.error_rate), o.points.map((p) => p.cache_hit_rate)]);
      charts.cost.set(xs, [o.points.map((p) => p.cost_usd)]);
      root.dataset.updated = String(Date.now());
      clear(err);
    } catch (e) {
      clear(err, errorBox(e));
    }
  }
  pick.addEventListener("change", () => { windowName = pick.value; refresh(); });
  const onResize = () => {
    for (const [c, host] of [[charts.req, reqHost], [charts.lat, latHost], [charts.rate, rateHost], [charts.cost, costHost]] as const) c.resize(host.clientWidth);
  };
  window.addEventListener("resize", onResize);
  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => {
    clearInterval(timer);
    window.removeEventListener("resize", onResize);
    Object.values(charts).forEach((c) => c.destroy());
  };
}
