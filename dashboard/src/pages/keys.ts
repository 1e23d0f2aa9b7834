// Client keys: create with scopes (the value is shown once, with a copy
// button), list, change a key's scopes, revoke.
import { get, post, put, del, KeyRow, CreatedKey, Scope, SCOPES } from "../api";
import { h, clear, table, time, errorBox, pill } from "../dom";

export async function keys(root: HTMLElement) {
  const err = h("div");
  const created = h("div", { id: "created-key" });
  const list = h("div", { class: "panel", id: "keys-list" });
  const label = h("input", { name: "label", placeholder: "label, e.g. laptop", "aria-label": "Key label" }) as HTMLInputElement;
  // What a new key may do: inference only unless more is ticked.
  const boxes = SCOPES.map((sc) => h("input", {
    type: "checkbox", name: "scope", value: sc, "aria-label": `Scope ${sc}`, checked: sc === "inference",
  }) as HTMLInputElement);
  const picked = () => boxes.filter((b) => b.checked).map((b) => b.value as Scope);

  /// A key's scopes as checkboxes that save when changed.
  function scopeEditor(k: KeyRow): HTMLElement {
    if (k.revoked_ms) return h("span", { class: "mono" }, k.scopes.join(", "));
    const own = SCOPES.map((sc) => h("input", {
      type: "checkbox", value: sc, "aria-label": `${k.id} scope ${sc}`, checked: k.scopes.includes(sc),
      onchange: async () => {
        const scopes = own.filter((b) => b.checked).map((b) => b.value as Scope);
        try { await put(`/api/keys/${encodeURIComponent(k.id)}/scopes`, { scopes }); await load(); }
        catch (e) { clear(err, errorBox(e)); await load(); }
      },
    }) as HTMLInputElement);
    return h("span", { class: "row", "data-scopes": k.id },
      ...SCOPES.map((sc, i) => h("label", { class: "muted" }, own[i], ` ${sc} `)));
  }

  async function load() {
    try {
      const rows = await get<KeyRow[]>("/api/keys");
      clear(list, table(["Id", "Hint", "Label", "Scopes", "Source", "Created", "Status", ""], rows.map((k) => [
        h("span", { class: "mono" }, k.id), h("span", { class: "mono" }, k.hint), k.label, scopeEditor(k), k.source, time(k.created_ms),
        k.revoked_ms ? pill("revoked", "bad") : pill("active", "ok"),
        k.revoked_ms ? "" : h("button", {
          class: "danger", "data-revoke": k.id,
          onclick: async () => {
            if (!confirm(`Revoke ${k.hint} (${k.label})? Clients using it stop working at once.`)) return;
            try { await del(`/api/keys/${encodeURIComponent(k.id)}`); await load(); } catch (e) { clear(err, errorBox(e)); }
          },
        }, "Revoke"),
      ])));
      list.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-key", rows[i].id));
      clear(err);
    } catch (e) {
      clear(err, errorBox(e));
    }
  }

  const form = h("form", {
    class: "inline", id: "create-key",
    onsubmit: async (e: Event) => {
      e.preventDefault();
      try {
        const k = await post<CreatedKey>("/api/keys", { label: label.value.trim() || undefined, scopes: picked() });
        label.value = "";
        const value = h("div", { class: "secret", id: "new-key-value" }, k.key);
        const copied = h("span", { class: "muted" });
        clear(created, h("div", { class: "notice" },
          h("p", {}, `Key ${k.id} (${k.label}, ${k.scopes.join(" + ")}) — shown only now; copy it:`), value,
          h("div", { class: "row", style: "margin-top:6px" },
            h("button", {
              type: "button", class: "primary", id: "copy-key",
              onclick: async () => {
                try { await navigator.clipboard.writeText(k.key); copied.textContent = "Copied."; }
                catch { copied.textContent = "Copy failed: select the key and copy it by hand."; }
              },
            }, "Copy"),
            h("button", { type: "button", onclick: () => clear(created) }, "Done, hide it"), copied)));
        await load();
      } catch (e) {
        clear(created, errorBox(e));
      }
    },
  }, label, ...SCOPES.map((sc, i) => h("label", { class: "muted" }, boxes[i], ` ${sc} `)),
    h("button", { class: "primary", type: "submit" }, "Create key"));

  clear(root, h("h1", {}, "Keys"),
    h("div", { class: "panel" }, h("h2", {}, "Create a client key"), form,
      h("p", { class: "muted" }, "inference: model requests (/v1, smart routing); read: health, quota and this key's own usage; admin: every change, and logging in here. The first-start key is admin."), created),
    err, list);
  await load();
}
