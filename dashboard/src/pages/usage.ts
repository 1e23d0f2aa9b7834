// Spend by provider, model, key and day, with savings suggestions.
import { get, qs, CostReport, UsageLine } from "../api";
import { h, clear, table, usd, num, ms, errorBox } from "../dom";
import { TimeChart } from "../chart";
import { money } from "./overview";

export async function usage(root: HTMLElement) {
  const since = h("select", { "aria-label": "Period", id: "usage-since" },
    [["24h", "Last 24 hours"], ["7d", "Last 7 days"], ["30d", "Last 30 days"]].map(([v, t]) => h("option", { value: v }, t))) as HTMLSelectElement;
  since.value = "7d";
  const out = h("div", { id: "usage-report" });
  const chartHost = h("div");
  clear(root, h("div", { class: "row" }, h("h1", { style: "flex:1" }, "Usage & cost"), since),
    h("div", { class: "panel chart" }, h("h3", {}, "Spend per day (USD)"), chartHost), out);
  const chart = new TimeChart(chartHost, [{ label: "USD", color: "#7b3fb5" }], money, true);
  const lines = (title: string, rows: UsageLine[]) => h("div", { class: "panel" }, h("h2", {}, title),
    rows.length ? table(["", "Requests", "Errors", "Input tok", "Output tok", "Cost", "Avg latency"],
      rows.map((l) => [h("span", { class: "mono" }, l.group), num(l.requests), num(l.errors), num(l.input_tokens), num(l.output_tokens), usd(l.cost_usd), ms(l.avg_latency_ms)]), [1, 2, 3, 4, 5, 6])
      : h("p", { class: "muted" }, "No traffic in this period."));

  async function load() {
    try {
      const r = await get<CostReport>(`/api/usage${qs({ since: since.value })}`);
      // every day of the period, idle ones as 0, so one busy day is not a lone bar
      const day = 86_400_000;
      const days = { "24h": 2, "7d": 7, "30d": 30 }[since.value] ?? 7;
      const today = Math.floor(Date.now() / day) * day;
      const xs = Array.from({ length: days }, (_, i) => today - (days - 1 - i) * day);
      const cost = new Map(r.by_day.map((d) => [Date.parse(`${d.group}T00:00:00Z`), d.cost_usd]));
      chart.set(xs, [xs.map((x) => cost.get(x) ?? 0)]);
      clear(out,
        h("div", { class: "tiles" },
          h("div", { class: "tile" }, h("div", { class: "label" }, "Requests"), h("div", { class: "value" }, num(r.total_requests))),
          h("div", { class: "tile" }, h("div", { class: "label" }, "Errors"), h("div", { class: "value" }, num(r.total_errors))),
          h("div", { class: "tile" }, h("div", { class: "label" }, "Tokens in / out"), h("div", { class: "value" }, `${num(r.total_input_tokens)} / ${num(r.total_output_tokens)}`)),
          h("div", { class: "tile" }, h("div", { class: "label" }, "Spend"), h("div", { class: "value", id: "usage-total" }, usd(r.total_cost_usd)))),
        h("div", { class: "panel", id: "savings" }, h("h2", {}, "Savings suggestions"),
          r.suggestions.length ? table(["Used", "Spent", "Instead", "Kind", "Would cost", "Saving"],
            r.suggestions.map((s) => [h("span", { class: "mono" }, s.model), usd(s.spent_usd), h("span", { class: "mono" }, s.alternative), s.kind, usd(s.estimated_cost_usd), usd(s.estimated_saving_usd)]), [1, 4, 5])
            : h("p", { class: "muted" }, "Nothing cheaper among the usable providers for what was used.")),
        lines("By provider", r.by_provider), lines("By model", r.by_model), lines("By key", r.by_key), lines("By day", r.by_day));
    } catch (e) {
      clear(out, errorBox(e));
    }
  }
  since.addEventListener("change", load);
  await load();
  return () => chart.destroy();
}
