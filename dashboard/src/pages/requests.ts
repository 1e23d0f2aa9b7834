// Recent requests with how each was routed; filter by key, model and status.
import { get, qs, RequestsPage, RequestRecord } from "../api";
import { h, clear, ms, usd, time, errorBox, pill } from "../dom";

export async function requests(root: HTMLElement) {
  const key = h("input", { name: "key", placeholder: "key id", "aria-label": "Key" }) as HTMLInputElement;
  const model = h("input", { name: "model", placeholder: "model", "aria-label": "Model" }) as HTMLInputElement;
  const status = h("select", { name: "status", "aria-label": "Status" },
    ["", "ok", "error", "2xx", "4xx", "5xx", "429"].map((s) => h("option", { value: s }, s || "any status"))) as HTMLSelectElement;
  const live = h("input", { type: "checkbox", checked: true, name: "live" }) as HTMLInputElement;
  const err = h("div");
  const body = h("tbody");
  const more = h("button", { type: "button" }, "Older");
  let before: number | null = null;
  const open = new Set<number>();

  const row = (r: RequestRecord): HTMLElement[] => {
    const served = r.provider ? `${r.provider}/${r.model ?? ""}` : "–";
    const tr = h("tr", { class: "clickable", "data-request": r.request_id, onclick: () => { open.has(r.id) ? open.delete(r.id) : open.add(r.id); detail.hidden = !open.has(r.id); } },
      h("td", {}, time(r.ts_ms)), h("td", { class: "mono" }, r.key_id ?? "–"), h("td", {}, r.requested_model), h("td", { class: "mono" }, served),
      h("td", {}, pill(String(r.status), r.outcome === "ok" ? "ok" : "bad")), h("td", { class: "num" }, ms(r.latency_ms)),
      h("td", { class: "num" }, ms(r.overhead_ms)), h("td", { class: "num" }, usd(r.cost_usd)), h("td", { class: "num" }, String(r.route?.attempts ?? "–")));
    const t = r.route;
    const detail = h("tr", { class: "detail" }, h("td", { colspan: "9" },
      h("div", { class: "route" },
        h("div", {}, `${r.endpoint}${r.stream ? " (stream)" : ""} · ${r.outcome} · request ${r.request_id}`),
        t ? h("div", {}, `combo: ${t.combo ?? "–"} · strategy: ${t.strategy ?? "–"} · tier: ${t.tier ?? "–"} · attempts: ${t.attempts}`) : h("div", { class: "muted" }, "no route recorded"),
        t?.failed.length ? h("div", {}, h("b", {}, "Failed attempts"), h("ul", {}, t.failed.map((f) => h("li", { class: "mono" }, f)))) : null,
        t?.spans?.length ? h("div", {}, h("b", {}, "Attempts"), h("ul", {}, t.spans.map((a) =>
          h("li", { class: "mono" }, `+${ms(a.start_ms)} ${a.target}: ${a.status ?? "no answer"} in ${ms(a.duration_ms)}${a.error ? ` (${a.error})` : ""}`)))) : null,
        t?.skipped.length ? h("div", {}, h("b", {}, "Skipped"), h("ul", {}, t.skipped.map((f) => h("li", { class: "mono" }, f)))) : null,
        t?.translation ? h("div", {}, `translation: ${t.translation}`) : null,
        t?.translation_notes.length ? h("div", {}, h("b", {}, "Translation notes"), h("ul", {}, t.translation_notes.map((f) => h("li", {}, f)))) : null,
        t?.context_relay ? h("div", {}, `context relay: ${t.context_relay}`) : null,
        h("div", {}, `tokens: ${r.input_tokens} in (${r.cached_tokens} cached), ${r.output_tokens} out · upstream ${ms(r.upstream_ms)}`),
        r.error ? h("div", { class: "error" }, r.error) : null)));
    detail.hidden = !open.has(r.id);
    return [tr, detail];
  };

  async function load(append = false) {
    try {
      const page = await get<RequestsPage>(`/api/requests${qs({ key: key.value.trim(), model: model.value.trim(), status: status.value, limit: 50, before: append ? before : null })}`);
      const rows = page.requests.flatMap(row);
      if (append) body.append(...rows); else body.replaceChildren(...rows);
      before = page.next_before;
      more.hidden = before === null;
      body.dataset.count = String(body.querySelectorAll("tr[data-request]").length);
      clear(err);
    } catch (e) {
      clear(err, errorBox(e));
    }
  }
  more.addEventListener("click", () => load(true));
  const filters = h("form", { class: "inline", id: "request-filters", onsubmit: (e: Event) => { e.preventDefault(); load(); } },
    key, model, status, h("button", { type: "submit", class: "primary" }, "Filter"), h("label", {}, live, " live"));
  status.addEventListener("change", () => load());
  clear(root, h("h1", {}, "Requests"), filters, err,
    h("div", { class: "panel" }, h("table", { id: "requests-table" },
      h("thead", {}, h("tr", {}, ["Time", "Key", "Model", "Served by", "Status", "Latency", "Overhead", "Cost", "Attempts"].map((t, i) => h("th", { class: i >= 5 ? "num" : undefined }, t)))),
      body), more));
  await load();
  const timer = setInterval(() => { if (live.checked && open.size === 0) load(); }, 3000);
  return () => clearInterval(timer);
}
