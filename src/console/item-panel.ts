/**
 * One item: its JSON pretty-printed with revision, offset and last-write time, kept up to
 * date while it changes; and, for a user who may write, an editor whose save is
 * conditional on the revision shown (a concurrent change is reported, never
 * overwritten), an update operation, and a delete that asks first.
 */
import { ErrorCode, StreamError, type JsonValue, type UpdateOperation, type ViewItem } from "../client/browser.js";
import { fill, formatTime, h } from "./dom.js";
import { describeError, type Session } from "./session.js";

export interface ShownItem {
  itemId: string;
  /** Undefined once deleted. */
  item: ViewItem | undefined;
  /** The offset of its last change when the page saw it; undefined when it predates the page. */
  offset: number | undefined;
  /** The group offset the page loaded at, bounding an older item's offset. */
  loadedAt: number | undefined;
}

const OP_TYPES: Array<UpdateOperation["type"]> = ["set", "merge", "increment", "decrement", "append", "remove"];

export class ItemPanel {
  readonly element: HTMLElement;
  private shown: ShownItem | undefined;
  /** The revision the editor's text came from, while editing. */
  private editingRevision: number | undefined;
  /** The shown item's expiry (live views do not carry it): read with `get` once per revision shown. */
  private expiry: { itemId: string; revision: number; expiresAtMs: number | undefined } | undefined;
  private readonly heading = h("h3", { tabIndex: -1 });
  private readonly facts = h("dl", { class: "facts" });
  private readonly json = h("pre", { class: "json", "aria-label": "item JSON" });
  private readonly editor = h("textarea", { class: "editor", "aria-label": "item JSON to save", spellcheck: "false", rows: "12", hidden: true });
  private readonly message = h("p", { class: "message", role: "status" });
  private readonly actions = h("div", { class: "actions" });
  private readonly opForm: HTMLFormElement;
  private readonly opType = h("select", { "aria-label": "operation" }, OP_TYPES.map((type) => h("option", { value: type }, type)));
  private readonly opPath = h("input", { "aria-label": "path (JSON array of keys)", placeholder: 'path, e.g. ["likes"]' });
  private readonly opValue = h("input", { "aria-label": "value (JSON) or by (integer)", placeholder: "value (JSON) or by" });

  constructor(
    private readonly session: Session,
    private readonly stream: string,
    private readonly group: string,
    private readonly onClose: () => void,
  ) {
    this.opForm = h(
      "form",
      { class: "op-form", onsubmit: (event: Event) => (event.preventDefault(), void this.applyOp()) },
      h("span", { class: "label" }, "update"),
      this.opType,
      this.opPath,
      this.opValue,
      h("button", { type: "submit" }, "apply"),
    );
    this.element = h(
      "aside",
      { class: "item-panel", "aria-label": "item", hidden: true },
      h("div", { class: "panel-head" }, this.heading, h("button", { type: "button", class: "close", "aria-label": "close item", onclick: () => this.onClose() }, "×")),
      this.facts,
      this.json,
      this.editor,
      this.message,
      this.actions,
      this.opForm,
    );
    this.element.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.onClose();
    });
  }

  get itemId(): string | undefined {
    return this.shown?.itemId;
  }

  show(shown: ShownItem): void {
    const other = this.shown?.itemId !== shown.itemId;
    this.shown = shown;
    this.element.hidden = false;
    if (other) {
      this.stopEditing();
      this.say("");
      this.heading.textContent = shown.itemId;
      this.heading.focus();
    }
    this.render();
  }

  hide(): void {
    this.shown = undefined;
    this.stopEditing();
    this.element.hidden = true;
  }

  /** The item changed (or went) while shown: the display follows; an open editor keeps its text. */
  update(shown: ShownItem): void {
    if (this.shown?.itemId !== shown.itemId) return;
    this.shown = shown;
    if (this.editingRevision !== undefined && shown.item?.revision !== this.editingRevision) {
      this.say(shown.item ? `changed meanwhile: now revision ${shown.item.revision}; saving will report a conflict` : "deleted meanwhile", "warn");
    }
    this.render();
  }

  private render(): void {
    const shown = this.shown!;
    const item = shown.item;
    fill(
      this.facts,
      h("dt", {}, "revision"),
      h("dd", { "data-field": "revision" }, item ? String(item.revision) : "deleted"),
      h("dt", {}, "offset"),
      h("dd", { "data-field": "offset" }, shown.offset !== undefined ? String(shown.offset) : shown.loadedAt !== undefined ? `≤ ${shown.loadedAt}` : "—"),
      h("dt", {}, "written"),
      h("dd", { "data-field": "written" }, item ? formatTime(item.updatedAtMs) : "—"),
    );
    const expiry = this.expiry?.itemId === shown.itemId && this.expiry.revision === item?.revision ? this.expiry : undefined;
    if (item && expiry?.expiresAtMs !== undefined) {
      this.facts.append(h("dt", {}, "expires"), h("dd", { "data-field": "expires" }, formatTime(expiry.expiresAtMs)));
    }
    if (item && !expiry) void this.readExpiry(shown.itemId, item.revision);
    this.json.textContent = item ? JSON.stringify(item.data, null, 2) : "(deleted)";
    this.element.classList.toggle("gone", !item);
    this.renderActions();
  }

  private async readExpiry(itemId: string, revision: number): Promise<void> {
    this.expiry = { itemId, revision, expiresAtMs: undefined };
    try {
      const stored = await this.session.client.get(this.stream, this.group, itemId);
      // A later write may have come meanwhile; its own read will follow.
      if (stored?.revision !== revision || this.expiry?.itemId !== itemId || this.expiry.revision !== revision) return;
      this.expiry = { itemId, revision, expiresAtMs: stored.expiresAtMs };
      if (stored.expiresAtMs !== undefined && this.shown?.itemId === itemId) this.render();
    } catch {
      // The expiry is a detail: the item is shown without it.
    }
  }

  private renderActions(): void {
    const writable = this.session.canWrite && this.shown?.item !== undefined;
    this.opForm.hidden = !writable || this.editingRevision !== undefined;
    if (!this.session.canWrite) {
      fill(this.actions, h("p", { class: "note" }, "read-only: writes need an API key"));
      return;
    }
    if (!this.shown?.item) {
      fill(this.actions);
      return;
    }
    if (this.editingRevision !== undefined) {
      fill(
        this.actions,
        h("button", { type: "button", class: "primary", onclick: () => void this.save() }, `save (if still revision ${this.editingRevision})`),
        h("button", { type: "button", onclick: () => (this.stopEditing(), this.say(""), this.render()) }, "cancel"),
      );
      return;
    }
    fill(
      this.actions,
      h("button", { type: "button", onclick: () => this.startEditing() }, "edit"),
      h("button", { type: "button", class: "danger", onclick: () => this.askDelete() }, "delete…"),
    );
  }

  private startEditing(): void {
    const item = this.shown?.item;
    if (!item) return;
    this.editingRevision = item.revision;
    this.editor.value = JSON.stringify(item.data, null, 2);
    this.editor.hidden = false;
    this.json.hidden = true;
    this.say("");
    this.renderActions();
    this.editor.focus();
  }

  private stopEditing(): void {
    this.editingRevision = undefined;
    this.editor.hidden = true;
    this.json.hidden = false;
  }

  private async save(): Promise<void> {
    const itemId = this.shown!.itemId;
    let value: JsonValue;
    try {
      value = JSON.parse(this.editor.value) as JsonValue;
    } catch (error) {
      this.say(`not JSON: ${(error as Error).message}`, "error");
      return;
    }
    const revision = this.editingRevision!;
    try {
      const result = await this.session.client.set(this.stream, this.group, itemId, value, { ifRevision: revision });
      this.stopEditing();
      this.say(`saved: revision ${result.revision}, offset ${result.offset}`, "ok");
      this.render();
    } catch (error) {
      if (error instanceof StreamError && error.code === ErrorCode.FailedPrecondition) {
        const now = this.shown?.item ? `it is now at revision ${this.shown.item.revision}` : "it was deleted";
        this.say(`conflict: the item changed after revision ${revision} (${now}); your edit was not saved`, "error");
      } else this.say(describeError(error), "error");
    }
  }

  private askDelete(): void {
    const item = this.shown?.item;
    if (!item) return;
    const revision = item.revision;
    const confirm = h("button", { type: "button", class: "danger", onclick: () => void this.remove(revision) }, `delete ${this.shown!.itemId}`);
    fill(this.actions, h("span", { class: "confirm", role: "alert" }, `Delete this item (revision ${revision})?`), confirm, h("button", { type: "button", onclick: () => this.renderActions() }, "cancel"));
    confirm.focus();
  }

  private async remove(revision: number): Promise<void> {
    try {
      const result = await this.session.client.delete(this.stream, this.group, this.shown!.itemId, { ifRevision: revision });
      this.say(`deleted at offset ${result.offset}`, "ok");
    } catch (error) {
      if (error instanceof StreamError && error.code === ErrorCode.FailedPrecondition) this.say(`conflict: the item changed after revision ${revision}; nothing was deleted`, "error");
      else this.say(describeError(error), "error");
      this.renderActions();
    }
  }

  private async applyOp(): Promise<void> {
    let op: UpdateOperation;
    try {
      op = this.readOp();
    } catch (error) {
      this.say((error as Error).message, "error");
      return;
    }
    try {
      const result = await this.session.client.update(this.stream, this.group, this.shown!.itemId, [op]);
      if (result.errors.length > 0) this.say(`not applied: ${result.errors.map((e) => `${e.code} ${e.message}`).join("; ")}`, "error");
      else this.say(`applied: revision ${result.revision}, offset ${result.offset}`, "ok");
    } catch (error) {
      this.say(describeError(error), "error");
    }
  }

  private readOp(): UpdateOperation {
    const type = this.opType.value as UpdateOperation["type"];
    const pathText = this.opPath.value.trim();
    const path = pathText === "" ? [] : (JSON.parse(pathText) as unknown);
    if (!Array.isArray(path) || path.some((key) => typeof key !== "string")) throw new Error('path must be a JSON array of strings, e.g. ["likes"]');
    const valueText = this.opValue.value.trim();
    if (type === "remove") return { type, path };
    if (type === "increment" || type === "decrement") {
      const by = valueText === "" ? 1 : Number(valueText);
      if (!Number.isSafeInteger(by)) throw new Error(`${type} takes an integer, got ${valueText}`);
      return { type, path, by };
    }
    let value: JsonValue;
    try {
      value = JSON.parse(valueText) as JsonValue;
    } catch {
      throw new Error(`${type} takes a JSON value, got ${valueText || "nothing"}`);
    }
    if (type === "merge") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("merge takes a JSON object");
      return { type, path, value };
    }
    return { type, path, value };
  }

  private say(text: string, kind: "ok" | "error" | "warn" | "" = ""): void {
    this.message.textContent = text;
    this.message.className = `message ${kind}`;
    this.message.setAttribute("role", kind === "error" ? "alert" : "status");
  }
}
