/**
 * One group, live: its items paged (a page is rendered from the view's copy, so a group
 * of 100,000 items costs one page of rows), filtered by id, with new ones marked, changed
 * ones flashing and deleted ones fading out; the group's offset, its subscriber count and
 * a changes-per-second sparkline; the events of `Send` in a side log; a pause button.
 */
import type { JsonValue, LiveView, ViewItem } from "../client/browser.js";
import { fill, formatNumber, formatTime, h, preview } from "./dom.js";
import { ItemPanel } from "./item-panel.js";
import { routes, type Page } from "./page.js";
import { describeError, type Session } from "./session.js";
import { Sparkline } from "./sparkline.js";

const PAGE_SIZE = 100;
/** How long a deleted item's row stays, fading, before it goes. */
const FADE_MS = 1500;
/** How long a new item stays marked. */
const NEW_MS = 3000;
const LOG_LIMIT = 200;

interface Row {
  element: HTMLTableRowElement;
  revision: number | undefined;
}

export function groupPage(session: Session, stream: string, group: string): Page {
  const view: LiveView = session.client.watchGroup(stream, group);
  /** Item ids in List order, deleted ones kept until their row has faded. */
  let ids: string[] = [];
  let idSet = new Set<string>();
  const ghosts = new Map<string, { item: ViewItem; until: number }>();
  const created = new Map<string, number>();
  const lastOffsets = new Map<string, number>();
  let loadedAt: number | undefined;
  let filtered: string[] | undefined;
  let pageIndex = 0;
  let paused = false;
  let missed = 0;
  let frame = 0;
  const rows = new Map<string, Row>();
  const timers: Array<ReturnType<typeof setInterval>> = [];

  const statusPill = h("span", { class: "pill", "data-field": "status" }, "connecting");
  const offset = h("span", { "data-field": "offset" }, "—");
  const count = h("span", { "data-field": "count" }, "—");
  const subscribers = h("span", { "data-field": "subscribers" }, "—");
  const rate = h("span", { "data-field": "rate" }, "0");
  const sparkline = new Sparkline();
  const pause = h("button", { type: "button", "aria-pressed": "false", onclick: () => setPaused(!paused) }, "pause");
  const filter = h("input", { type: "search", class: "filter", placeholder: "filter item ids", "aria-label": "filter item ids" });
  const body = h("tbody");
  const position = h("span", { class: "position", "data-field": "position" });
  const first = h("button", { type: "button", "aria-label": "first page", onclick: () => go(0) }, "«");
  const previous = h("button", { type: "button", onclick: () => go(pageIndex - 1) }, "‹ previous");
  const next = h("button", { type: "button", onclick: () => go(pageIndex + 1) }, "next ›");
  const last = h("button", { type: "button", "aria-label": "last page", onclick: () => go(Number.MAX_SAFE_INTEGER) }, "»");
  const problem = h("p", { class: "message error", role: "alert", hidden: true });
  const log = h("ol", { class: "log", "aria-live": "polite", "aria-label": "events" });
  const panel = new ItemPanel(session, stream, group, () => select(undefined));

  function shown(itemId: string) {
    return { itemId, item: view.items.get(itemId), offset: lastOffsets.get(itemId), loadedAt };
  }

  function select(itemId: string | undefined): void {
    if (itemId === undefined) {
      const before = panel.itemId;
      panel.hide();
      if (before !== undefined) rows.get(before)?.element.querySelector("button")?.focus();
    } else panel.show(shown(itemId));
    for (const [id, row] of rows) row.element.classList.toggle("selected", id === itemId);
  }

  /** Rebuilds the id list from the view (after its snapshot, a reset, or a pause). */
  function rebuild(): void {
    ids = [...view.items.keys()];
    idSet = new Set(ids);
    ghosts.clear();
    filtered = undefined;
  }

  function visibleIds(): string[] {
    if (!filtered) {
      const text = filter.value;
      filtered = text === "" ? ids : ids.filter((id) => id.includes(text));
    }
    return filtered;
  }

  function go(index: number): void {
    const pages = Math.max(1, Math.ceil(visibleIds().length / PAGE_SIZE));
    pageIndex = Math.min(Math.max(0, index), pages - 1);
    render();
  }

  function schedule(): void {
    if (!frame && !paused) frame = requestAnimationFrame(() => ((frame = 0), render()));
  }

  function render(): void {
    const visible = visibleIds();
    const pages = Math.max(1, Math.ceil(visible.length / PAGE_SIZE));
    pageIndex = Math.min(pageIndex, pages - 1);
    const start = pageIndex * PAGE_SIZE;
    const page = visible.slice(start, start + PAGE_SIZE);
    const now = Date.now();
    const keep = new Set(page);
    for (const id of rows.keys()) if (!keep.has(id)) rows.delete(id);
    const elements = page.map((id) => rowOf(id, now));
    // Most changes to a large group are to items on other pages: the rows stay as they are,
    // and putting them back anyway would make the browser lay out the table again.
    if (elements.length !== body.children.length || elements.some((row, i) => body.children[i] !== row)) fill(body, elements);
    position.textContent =
      visible.length === 0 ? (filter.value ? `no item id contains “${filter.value}”` : "no items") : `${formatNumber(start + 1)}–${formatNumber(start + page.length)} of ${formatNumber(visible.length)}${filter.value ? " matching" : ""}`;
    first.disabled = previous.disabled = pageIndex === 0;
    next.disabled = last.disabled = pageIndex >= pages - 1;
    offset.textContent = view.offset === undefined ? "—" : formatNumber(view.offset);
    count.textContent = formatNumber(view.items.size);
  }

  function rowOf(id: string, now: number): HTMLTableRowElement {
    const ghost = ghosts.get(id);
    const item = view.items.get(id) ?? ghost?.item;
    let row = rows.get(id);
    if (!row) {
      const element = h("tr", { "data-id": id });
      row = { element, revision: undefined };
      rows.set(id, row);
      if ((created.get(id) ?? 0) > now) element.classList.add("new");
    }
    if (row.revision !== item?.revision || (ghost && !row.element.classList.contains("deleted"))) {
      row.revision = item?.revision;
      fill(
        row.element,
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => select(id) }, id)),
        h("td", { class: "number" }, item ? String(item.revision) : ""),
        h("td", { class: "time" }, item ? formatTime(item.updatedAtMs) : ""),
        h("td", { class: "data" }, item ? preview(item.data) : ""),
      );
    }
    row.element.classList.toggle("deleted", ghost !== undefined);
    row.element.classList.toggle("selected", panel.itemId === id);
    return row.element;
  }

  function flash(id: string): void {
    const element = rows.get(id)?.element;
    if (!element) return;
    element.classList.remove("flash");
    void element.offsetWidth; // restarts the animation
    element.classList.add("flash");
  }

  function sweepGhosts(): void {
    const now = Date.now();
    let removed = false;
    for (const [id, ghost] of ghosts) {
      if (ghost.until > now) continue;
      ghosts.delete(id);
      if (!view.items.has(id)) {
        idSet.delete(id);
        removed = true;
      }
    }
    if (removed) {
      ids = ids.filter((id) => idSet.has(id));
      filtered = undefined;
      schedule();
    }
  }

  function setPaused(value: boolean): void {
    paused = value;
    pause.textContent = paused ? "resume" : "pause";
    pause.setAttribute("aria-pressed", String(paused));
    element.classList.toggle("paused", paused);
    if (!paused) {
      missed = 0;
      rebuild();
      render();
      if (panel.itemId !== undefined) panel.update(shown(panel.itemId));
    }
    updatePausedNote();
  }

  const pausedNote = h("span", { class: "paused-note", "data-field": "paused" });
  function updatePausedNote(): void {
    pausedNote.textContent = paused ? `paused: ${formatNumber(missed)} changes not shown` : "";
  }

  view.on("status", (status) => {
    statusPill.textContent = status;
    statusPill.dataset.status = status;
    if (status === "live" && loadedAt === undefined) {
      loadedAt = view.offset;
      rebuild();
      render();
    }
    if (status === "closed" && view.error) {
      problem.hidden = false;
      problem.textContent = describeError(view.error);
    }
  });
  view.on("reset", (reset) => {
    loadedAt = reset.offset;
    if (paused) return;
    rebuild();
    render();
    if (panel.itemId !== undefined) panel.update(shown(panel.itemId));
  });
  view.on("change", (change) => {
    sparkline.add();
    lastOffsets.set(change.itemId, change.offset);
    if (paused) {
      missed++;
      updatePausedNote();
      return;
    }
    const id = change.itemId;
    if (change.type === "create") {
      if (idSet.has(id)) ids = ids.filter((other) => other !== id);
      ghosts.delete(id);
      rows.delete(id);
      ids.push(id);
      idSet.add(id);
      created.set(id, Date.now() + NEW_MS);
      filtered = undefined;
    } else if (change.type === "update") flash(id);
    else {
      ghosts.set(id, { item: { data: change.data, revision: change.revision, updatedAtMs: change.timestampMs }, until: Date.now() + FADE_MS });
      setTimeout(sweepGhosts, FADE_MS + 50);
    }
    if (panel.itemId === id) panel.update(shown(id));
    schedule();
  });
  view.on("event", (event) => {
    if (paused) return;
    log.prepend(
      h(
        "li",
        {},
        h("span", { class: "time" }, formatTime(event.timestampMs)),
        " ",
        h("strong", {}, event.type),
        event.itemId ? ` (${event.itemId})` : "",
        " ",
        h("code", {}, preview(event.data, 200)),
      ),
    );
    while (log.children.length > LOG_LIMIT) log.lastElementChild!.remove();
  });

  let typing: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      filtered = undefined;
      go(0);
    }, 150);
  });

  timers.push(
    setInterval(() => {
      rate.textContent = formatNumber(sparkline.tick());
      for (const [id, until] of created) if (until <= Date.now()) created.delete(id);
    }, 1000),
  );
  async function pollSubscribers(): Promise<void> {
    try {
      const text = await session.fetchText(`console/subscribers.json?stream=${encodeURIComponent(stream)}&group=${encodeURIComponent(group)}`);
      subscribers.textContent = formatNumber((JSON.parse(text) as { subscribers: number }).subscribers);
    } catch {
      subscribers.textContent = "—";
    }
  }
  void pollSubscribers();
  timers.push(setInterval(() => void pollSubscribers(), 2000));

  const sendForm = sendEventForm(session, stream, group);
  const element = h(
    "section",
    { class: "group" },
    h("h2", {}, h("a", { href: routes.streams() }, "Streams"), " / ", h("a", { href: routes.stream(stream) }, stream), " / ", group),
    h(
      "div",
      { class: "stats" },
      statusPill,
      h("span", {}, "offset ", offset),
      h("span", {}, "items ", count),
      h("span", {}, "subscribers ", subscribers),
      h("span", { class: "rate" }, sparkline.element, " ", rate, "/s"),
      pause,
      pausedNote,
    ),
    problem,
    h(
      "div",
      { class: "columns" },
      h(
        "div",
        { class: "main" },
        h("div", { class: "toolbar" }, filter, h("span", { class: "pages" }, first, previous, position, next, last)),
        h(
          "table",
          { class: "items" },
          h("thead", {}, h("tr", {}, h("th", {}, "item"), h("th", { class: "number" }, "rev"), h("th", {}, "written"), h("th", {}, "data"))),
          body,
        ),
      ),
      h("div", { class: "side" }, panel.element, sendForm, h("section", { class: "events" }, h("h3", {}, "Events"), log)),
    ),
  );
  return {
    title: `${stream} / ${group}`,
    element,
    dispose: () => {
      view.close();
      if (frame) cancelAnimationFrame(frame);
      clearTimeout(typing);
      for (const timer of timers) clearInterval(timer);
    },
  };
}

function sendEventForm(session: Session, stream: string, group: string): HTMLElement {
  const type = h("input", { "aria-label": "event type", placeholder: "type", required: true });
  const data = h("input", { "aria-label": "event data (JSON)", placeholder: 'data, e.g. {"who":"ann"}' });
  const itemId = h("input", { "aria-label": "item id (optional)", placeholder: "item (optional)" });
  const message = h("p", { class: "message", role: "status" });
  const writable = session.canWrite;
  return h(
    "form",
    {
      class: "send-form",
      "aria-label": "send an event",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        let value: JsonValue = null;
        try {
          value = data.value.trim() === "" ? null : (JSON.parse(data.value) as JsonValue);
        } catch (error) {
          message.textContent = `not JSON: ${(error as Error).message}`;
          message.className = "message error";
          return;
        }
        try {
          await session.client.send(stream, group, type.value, value, itemId.value ? { itemId: itemId.value } : {});
          message.textContent = `sent ${type.value}`;
          message.className = "message ok";
        } catch (error) {
          message.textContent = describeError(error);
          message.className = "message error";
        }
      },
    },
    h("h3", {}, "Send an event"),
    writable ? [type, data, itemId, h("button", { type: "submit" }, "send")] : h("p", { class: "note" }, "read-only: sending needs an API key"),
    message,
  );
}
