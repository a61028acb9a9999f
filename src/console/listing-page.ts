/** The streams page and a stream's groups page: a paged, filtered table of names with links. */
import { fill, formatNumber, h, type Child } from "./dom.js";
import type { Page } from "./page.js";
import { Pager } from "./pager.js";
import { routes } from "./page.js";
import { describeError, type Session } from "./session.js";

interface Listing<T> {
  title: string;
  heading: Child[];
  noun: string;
  open(): AsyncGenerator<T[]>;
  id(entry: T): string;
  href(entry: T): string;
  columns: Array<{ name: string; cell(entry: T): string }>;
}

const PAGE_SIZE = 100;

function listingPage<T>(listing: Listing<T>): Page {
  const filter = h("input", { type: "search", placeholder: `filter ${listing.noun} ids`, "aria-label": `filter ${listing.noun} ids`, class: "filter" });
  const body = h("tbody");
  const status = h("p", { class: "status", role: "status" });
  const previous = h("button", { type: "button" }, "‹ previous");
  const next = h("button", { type: "button" }, "next ›");
  const position = h("span", { class: "position" });
  let pager: Pager<T> | undefined;
  let index = 0;
  let generation = 0;

  async function show(): Promise<void> {
    const mine = ++generation;
    status.textContent = "loading…";
    try {
      const { entries, hasNext } = await pager!.page(index);
      if (mine !== generation) return;
      fill(
        body,
        entries.map((entry) =>
          h("tr", {}, h("td", {}, h("a", { href: listing.href(entry) }, listing.id(entry))), listing.columns.map((column) => h("td", { class: "number" }, column.cell(entry)))),
        ),
      );
      previous.disabled = index === 0;
      next.disabled = !hasNext;
      position.textContent = `page ${index + 1}`;
      status.textContent = entries.length === 0 ? (filter.value ? `no ${listing.noun} id contains “${filter.value}”` : `no ${listing.noun}s yet`) : "";
    } catch (error) {
      if (mine === generation) status.textContent = describeError(error);
    }
  }

  function restart(): void {
    pager?.close();
    const text = filter.value;
    pager = new Pager(listing.open, (entry) => listing.id(entry).includes(text), PAGE_SIZE);
    index = 0;
    void show();
  }

  let typing: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(restart, 200);
  });
  previous.addEventListener("click", () => {
    index = Math.max(0, index - 1);
    void show();
  });
  next.addEventListener("click", () => {
    index++;
    void show();
  });
  restart();

  const element = h(
    "section",
    { class: "listing" },
    h("h2", {}, ...listing.heading),
    h("div", { class: "toolbar" }, filter, h("span", { class: "pages" }, previous, position, next)),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, listing.noun), listing.columns.map((column) => h("th", { class: "number" }, column.name)))), body),
    status,
  );
  return {
    title: listing.title,
    element,
    dispose: () => {
      generation++;
      clearTimeout(typing);
      pager?.close();
    },
  };
}

export function streamsPage(session: Session): Page {
  return listingPage({
    title: "Streams",
    heading: ["Streams"],
    noun: "stream",
    open: () => session.client.listAll({ pageSize: 100, groupsPerStream: 1 }),
    id: (stream) => stream.streamName,
    href: (stream) => routes.stream(stream.streamName),
    columns: [{ name: "groups", cell: (stream) => formatNumber(stream.groupCount) }],
  });
}

export function groupsPage(session: Session, stream: string): Page {
  return listingPage<string>({
    title: stream,
    heading: [h("a", { href: routes.streams() }, "Streams"), " / ", stream],
    noun: "group",
    open: () => session.client.listGroups(stream, { pageSize: 1000 }),
    id: (group) => group,
    href: (group) => routes.group(stream, group),
    columns: [],
  });
}
