// Health: store, overhead, providers' recent traffic, breakers, cooldowns.
import { get, Health } from "../api";
import { h, clear, table, ms, pct, dur, errorBox, pill } from "../dom";

export async function health(root: HTMLElement) {
  const out = h("div", { id: "health" });
  clear(root, h("h1", {}, "Health"), out);
  async function load() {
    try {
      const x = await get<Health>("/api/health");
      clear(out,
        h("div", { class: "tiles" },
          h("div", { class: "tile" }, h("div", { class: "label" }, "Status"), h("div", { class: "value" }, pill(x.status, x.status === "ok" ? "ok" : "bad"))),
          h("div", { class: "tile" }, h("div", { class: "label" }, "Version · pid"), h("div", { class: "value" }, `${x.version} · ${x.pid}`)),
          h("div", { class: "tile" }, h("div", { class: "label" }, "Uptime"), h("div", { class: "value" }, dur(x.uptime_s))),
          h("div", { class: "tile" }, h("div", { class: "label" }, "Store"), h("div", { class: "value" }, x.store.ok ? `ok (schema ${x.store.schema_version})` : x.store.error ?? "down")),
          h("div", { class: "tile" }, h("div", { class: "label" }, "Overhead p50 / p95 / p99"), h("div", { class: "value" }, `${ms(x.overhead.p50_ms)} / ${ms(x.overhead.p95_ms)} / ${ms(x.overhead.p99_ms)}`)),
          h("div", { class: "tile" }, h("div", { class: "label" }, "Usable providers"), h("div", { class: "value" }, String(x.usable_providers)))),
        h("div", { class: "panel" }, h("h2", {}, `Providers (last ${dur(x.recent_window_s)})`),
          table(["Provider", "Usable", "Accounts", "Requests", "Errors", "Error rate", "Avg latency", "Breakers", "Last error"],
            x.providers.map((p) => {
              const b = x.routing.providers.find((r) => r.provider === p.id);
              return [h("b", {}, p.id), p.usable ? pill("yes", "ok") : pill("no", "bad"), `${p.usable_accounts}/${p.accounts}`, String(p.requests), String(p.errors), pct(p.error_rate), ms(p.avg_latency_ms),
                b ? pill(b.state, b.state === "closed" ? "ok" : b.state === "open" ? "bad" : "warn") : "–", p.last_error ?? ""];
            }), [3, 4, 5, 6])),
        h("div", { class: "panel" }, h("h2", {}, "Targets"),
          x.routing.targets.length ? table(["Target", "Breaker", "Cooldown", "Requests", "Errors", "p50", "p95", "p99"],
            x.routing.targets.map((t) => [h("span", { class: "mono" }, t.target), pill(t.breaker, t.breaker === "closed" ? "ok" : "bad"),
              t.cooldown_s ? `${dur(t.cooldown_s)} ${t.cooldown_reason ?? ""}` : "–", String(t.requests), String(t.errors), ms(t.latency_p50_ms), ms(t.latency_p95_ms), ms(t.latency_p99_ms)]), [3, 4, 5, 6, 7])
            : h("p", { class: "muted" }, "No target has carried traffic since start.")),
        x.routing.accounts.some((a) => a.cooldown_s) ? h("div", { class: "panel" }, h("h2", {}, "Account cooldowns"),
          table(["Account", "Cooldown", "Reason"], x.routing.accounts.filter((a) => a.cooldown_s).map((a) => [h("span", { class: "mono" }, a.account), dur(a.cooldown_s), a.reason ?? ""]))) : null);
    } catch (e) {
      clear(out, errorBox(e));
    }
  }
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
