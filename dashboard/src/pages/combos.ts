// Combos: create, reorder targets by drag (or the arrow buttons), set the
// strategy, dry-run diff, save, test every target, roll back, audit history.
import { get, put, post, del, qs, ComboView, Combo, Step, UpsertResult, ComboTest, AuditEntry, ModelView } from "../api";
import { h, clear, table, errorBox, time, ms, pill } from "../dom";
import { STRATEGIES } from "../strategies";

const stepLabel = (s: Step): string =>
  typeof s === "string" ? s
    : "combo" in s ? `combo ${s.combo}`
    : `${s.model}${s.account ? ` @${s.account}` : ""}${s.weight != null ? ` ×${s.weight}` : ""}`;

export async function combos(root: HTMLElement, selected: string) {
  const [list, models] = await Promise.all([get<ComboView[]>("/api/combos"), get<ModelView[]>("/api/models").catch(() => [])]);
  const side = h("div", { class: "panel list", id: "combo-list" },
    h("a", { href: "#/combos/", class: selected ? "" : "active", "data-combo": "" }, "+ New combo"),
    list.map((c) => h("a", { href: `#/combos/${encodeURIComponent(c.combo.name)}`, class: c.combo.name === selected ? "active" : "", "data-combo": c.combo.name },
      c.combo.name, " ", h("span", { class: "muted" }, `${c.combo.strategy}${c.builtin ? " (built-in)" : ` v${c.version}`}`))));
  const editor = h("div", { class: "panel", id: "combo-editor" });
  clear(root, h("h1", {}, "Combos"), h("div", { class: "split" }, side, editor));
  const current = list.find((c) => c.combo.name === selected);
  const combo: Combo = current ? structuredClone(current.combo) : { name: "", strategy: "priority", models: [], sticky: false };
  const builtin = current?.builtin ?? false;

  const name = h("input", { name: "name", placeholder: "name clients send as model", value: combo.name, "aria-label": "Combo name", readonly: !!current }) as HTMLInputElement;
  const strategy = h("select", { name: "strategy", "aria-label": "Strategy" }, STRATEGIES.map((s) => h("option", { value: s }, s))) as HTMLSelectElement;
  strategy.value = combo.strategy;
  const sticky = h("input", { type: "checkbox", name: "sticky" }) as HTMLInputElement;
  sticky.checked = !!combo.sticky;
  const targets = h("ul", { class: "targets", id: "combo-targets" });
  const datalist = h("datalist", { id: "model-names" }, models.map((m) => h("option", { value: m.id })), list.map((c) => h("option", { value: c.combo.name })));
  const addInput = h("input", { list: "model-names", placeholder: "prefix/model or combo", "aria-label": "Add target", name: "add-target" }) as HTMLInputElement;
  const out = h("div", { id: "combo-result" });
  const history = h("div", { id: "combo-history" });

  let dragFrom = -1;
  function renderTargets() {
    clear(targets, combo.models.map((s, i) => {
      const li = h("li", { draggable: "true", "data-index": String(i), "data-target": stepLabel(s) },
        h("span", { class: "handle", "aria-hidden": "true" }, "⋮⋮"),
        h("span", { class: "name" }, stepLabel(s)),
        h("button", { type: "button", title: "Move up", "aria-label": `Move ${stepLabel(s)} up`, disabled: i === 0, onclick: () => move(i, i - 1) }, "↑"),
        h("button", { type: "button", title: "Move down", "aria-label": `Move ${stepLabel(s)} down`, disabled: i === combo.models.length - 1, onclick: () => move(i, i + 1) }, "↓"),
        h("button", { type: "button", class: "danger", "aria-label": `Remove ${stepLabel(s)}`, onclick: () => { combo.models.splice(i, 1); renderTargets(); } }, "✕"));
      li.addEventListener("dragstart", (e) => { dragFrom = i; li.classList.add("dragging"); e.dataTransfer?.setData("text/plain", String(i)); });
      li.addEventListener("dragend", () => li.classList.remove("dragging"));
      li.addEventListener("dragover", (e) => { e.preventDefault(); li.classList.add("over"); });
      li.addEventListener("dragleave", () => li.classList.remove("over"));
      li.addEventListener("drop", (e) => { e.preventDefault(); li.classList.remove("over"); if (dragFrom >= 0) move(dragFrom, i); dragFrom = -1; });
      return li;
    }));
  }
  function move(from: number, to: number) {
    if (to < 0 || to >= combo.models.length || from === to) return;
    const [s] = combo.models.splice(from, 1);
    combo.models.splice(to, 0, s);
    renderTargets();
  }

  const body = (dry: boolean) => {
    combo.name = name.value.trim();
    combo.strategy = strategy.value;
    combo.sticky = sticky.checked;
    return { combo, dry_run: dry };
  };
  async function save(dry: boolean) {
    try {
      const r = await put<UpsertResult>(`/api/combos/${encodeURIComponent(name.value.trim())}`, body(dry));
      clear(out,
        h("div", { class: "notice", "data-saved": String(r.saved) },
          r.saved ? `Saved ${r.name} (version ${r.version}).` : dry ? "Dry run: nothing saved." : "No change.",
          r.diff.length ? h("ul", { class: "diff" }, r.diff.map((d) => h("li", { class: "mono" }, d))) : h("div", { class: "muted" }, "No differences."),
          r.warnings.map((w) => h("div", { class: "warn" }, `warning: ${w}`))));
      if (r.saved) {
        if (!current) location.hash = `#/combos/${encodeURIComponent(r.name)}`;
        else {
          const now = await get<ComboView>(`/api/combos/${encodeURIComponent(r.name)}`);
          title.textContent = `${now.combo.name} · version ${now.version}`;
          flat.textContent = `Flattened: ${now.targets.join(" → ") || "(none)"}`;
          await loadHistory();
        }
      }
    } catch (e) {
      clear(out, errorBox(e));
    }
  }
  async function test() {
    clear(out, h("p", { class: "muted" }, "Testing every target…"));
    try {
      const t = await post<ComboTest>(`/api/combos/${encodeURIComponent(combo.name)}/test`);
      clear(out, h("div", { id: "combo-test" }, h("p", {}, `${t.ok} ok, ${t.failed} failed`),
        table(["Target", "Result", "Latency", "Error"], t.results.map((r) => [h("span", { class: "mono" }, r.target), r.ok ? pill("ok", "ok") : pill(`failed${r.status ? ` ${r.status}` : ""}`, "bad"), ms(r.latency_ms), r.error ?? ""]))));
    } catch (e) {
      clear(out, errorBox(e));
    }
  }
  async function rollback() {
    try {
      const r = await post<{ restored: Combo | null }>(`/api/combos/${encodeURIComponent(combo.name)}/rollback`);
      if (r.restored) window.dispatchEvent(new HashChangeEvent("hashchange"));
      else location.hash = "#/combos/";
    } catch (e) {
      clear(out, errorBox(e));
    }
  }
  async function remove() {
    if (!confirm(`Delete combo ${combo.name}?`)) return;
    try { await del(`/api/combos/${encodeURIComponent(combo.name)}`); location.hash = "#/combos/"; } catch (e) { clear(out, errorBox(e)); }
  }
  async function loadHistory() {
    if (!current || builtin) return;
    try {
      const entries = await get<AuditEntry[]>(`/api/audit${qs({ entity: "combo", entity_id: combo.name, limit: 20 })}`);
      const brief = (v: unknown) => {
        const c = v as Combo | null;
        return c ? `${c.strategy}: ${c.models.map(stepLabel).join(", ")}` : "(none)";
      };
      clear(history, h("h2", {}, "History"), table(["When", "Who", "What", "Before", "After"],
        entries.map((e) => [time(e.ts_ms), e.actor, e.action, h("span", { class: "mono" }, brief(e.before)), h("span", { class: "mono" }, brief(e.after))])));
    } catch (e) {
      clear(history, errorBox(e));
    }
  }

  const title = h("h2", { id: "combo-title" }, current ? `${combo.name}${builtin ? " (built-in, read only)" : ` · version ${current.version}`}` : "New combo");
  const flat = h("p", { class: "muted" }, current ? `Flattened: ${current.targets.join(" → ") || "(none)"}` : "");
  clear(editor,
    title,
    h("div", { class: "row" }, name, strategy, h("label", {}, sticky, " sticky sessions")),
    h("h2", {}, "Targets (drag to reorder; first is tried first within a tier)"),
    targets,
    h("form", {
      class: "inline",
      onsubmit: (e: Event) => { e.preventDefault(); const v = addInput.value.trim(); if (v) { combo.models.push(v); addInput.value = ""; renderTargets(); } },
    }, addInput, h("button", { type: "submit" }, "Add target"), datalist),
    flat,
    builtin ? null : h("div", { class: "row", style: "margin-top:10px" },
      h("button", { type: "button", onclick: () => save(true) }, "Dry run"),
      h("button", { type: "button", class: "primary", onclick: () => save(false) }, "Save"),
      current ? h("button", { type: "button", onclick: test }, "Test") : null,
      current ? h("button", { type: "button", onclick: rollback }, "Roll back") : null,
      current ? h("button", { type: "button", class: "danger", onclick: remove }, "Delete") : null),
    builtin ? h("button", { type: "button", onclick: test }, "Test") : null,
    out, history);
  renderTargets();
  await loadHistory();
}
