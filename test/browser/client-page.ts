/**
 * The browser page of the client library's browser test, bundled by esbuild for browsers:
 * it watches the group `chat/room` with `iii-stream/client`, once over `connect` and once
 * over `websocket`, and shows each live list (id, value, revision) and the view's status.
 */
import { createStreamClient, type LiveView } from "../../src/client/browser.js";

/** The few DOM APIs the page uses: the project's type-check has no DOM library (and must not, for Node code). */
declare const location: { search: string };
declare const document: { getElementById(id: string): { textContent: string | null } | null };

const server = new URLSearchParams(location.search).get("server")!;

function show(transport: "connect" | "websocket", view: LiveView): void {
  const render = () => {
    document.getElementById(transport)!.textContent = JSON.stringify([...view.items].map(([itemId, item]) => [itemId, item.data, item.revision]));
    document.getElementById(`${transport}-status`)!.textContent = view.status;
  };
  for (const type of ["change", "reset", "status"] as const) view.on(type, render);
  render();
}

for (const transport of ["connect", "websocket"] as const) {
  const client = createStreamClient({ baseUrl: server, transport, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
  show(transport, client.watchGroup("chat", "room"));
}
