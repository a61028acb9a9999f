/**
 * The web console: the server at `/console/` serves this page, which reads and writes
 * through the project's client library like any other client. Pages are addressed by the
 * URL's fragment (see routes).
 */
import { fill, h } from "./dom.js";
import { functionsPage } from "./functions-page.js";
import { groupPage } from "./group-page.js";
import { groupsPage, streamsPage } from "./listing-page.js";
import { routes, type Page } from "./page.js";
import { serverPage } from "./server-page.js";
import { loadSettings, Session } from "./session.js";

function pageFor(session: Session, hash: string): Page {
  const parts = hash.replace(/^#\/?/, "").split("/").filter((part) => part !== "").map(decodeURIComponent);
  if (parts[0] === "server") return serverPage(session);
  if (!session.canWrite) return keyNeeded();
  if (parts[0] === "functions") return functionsPage(session);
  if (parts[0] === "streams" && parts.length === 2) return groupsPage(session, parts[1]);
  if (parts[0] === "streams" && parts.length >= 3) return groupPage(session, parts[1], parts[2]);
  return streamsPage(session);
}

function keyForm(session: Session): HTMLElement {
  const state = h("span", { class: "key-state", "data-field": "access" });
  const input = h("input", { type: "password", autocomplete: "off", placeholder: "API key", "aria-label": "API key" });
  const forget = h("button", { type: "button", onclick: () => session.useKey(undefined) }, "forget");
  const show = () => {
    state.textContent = session.hasKey ? "key in use" : "no key";
    forget.hidden = !session.hasKey;
  };
  session.onKeyChange(show);
  show();
  return h(
    "form",
    {
      class: "key-form",
      onsubmit: (event: Event) => {
        event.preventDefault();
        session.useKey(input.value);
        input.value = "";
      },
    },
    state,
    input,
    h("button", { type: "submit" }, "use key"),
    forget,
  );
}

/** With API keys configured the server answers no list or read without one: the page says so instead of failing calls. */
function keyNeeded(): Page {
  return {
    title: "API key needed",
    element: h(
      "section",
      { class: "key-needed" },
      h("h2", {}, "This server needs an API key"),
      h("p", {}, "Its api_keys guard every call but Subscribe and the health checks: enter one of them above to browse and change its data. The key stays in this page's memory and is sent as Authorization: Bearer on each call."),
      h("p", {}, h("a", { href: routes.server() }, "The server page"), " reads only /metrics and needs none."),
    ),
    dispose: () => undefined,
  };
}

async function start(): Promise<void> {
  let session: Session;
  try {
    session = new Session(await loadSettings());
  } catch (error) {
    document.body.append(h("p", { class: "message error", role: "alert" }, `cannot reach the server: ${String(error)}`));
    return;
  }
  const main = h("main", { id: "main", tabIndex: -1 });
  const nav = h(
    "nav",
    { "aria-label": "pages" },
    h("a", { href: routes.streams(), "data-page": "streams" }, "Streams"),
    h("a", { href: routes.functions(), "data-page": "functions" }, "Functions"),
    h("a", { href: routes.server(), "data-page": "server" }, "Server"),
  );
  document.body.append(
    h("a", { class: "skip", href: "#main", onclick: (event: Event) => (event.preventDefault(), main.focus()) }, "skip to content"),
    h("header", {}, h("h1", {}, h("a", { href: routes.streams() }, "iii-stream")), nav, session.settings.apiKeys ? keyForm(session) : h("span", { class: "key-state" }, "open: no API keys configured")),
    main,
  );

  let current: Page | undefined;
  const show = () => {
    current?.dispose();
    current = pageFor(session, location.hash);
    fill(main, current.element);
    document.title = `${current.title} · iii-stream console`;
    const section = location.hash.startsWith("#/functions") ? "functions" : location.hash.startsWith("#/server") ? "server" : "streams";
    for (const link of nav.querySelectorAll("a")) link.toggleAttribute("aria-current", link.dataset.page === section);
  };
  window.addEventListener("hashchange", show);
  session.onKeyChange(show);
  show();

  // "/" goes to the page's filter, as in many consoles; typing in a field is left alone.
  document.addEventListener("keydown", (event) => {
    const target = event.target as HTMLElement;
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
    const filter = main.querySelector<HTMLInputElement>("input.filter");
    if (filter) {
      event.preventDefault();
      filter.focus();
    }
  });
}

void start();
