/** The registered functions and the triggers with their counters, read again every two seconds. */
import type { FunctionInfo, TriggerInfo } from "../client/browser.js";
import { fill, formatNumber, h } from "./dom.js";
import type { Page } from "./page.js";
import { describeError, type Session } from "./session.js";

const REFRESH_MS = 2000;
/** The counters every server has, first; others follow as a newer server sends them. */
const KNOWN_STATS = ["calls", "failures", "timeouts", "skipped", "dropped"];

export function functionsPage(session: Session): Page {
  const functions = h("tbody");
  const triggersHead = h("tr");
  const triggers = h("tbody");
  const status = h("p", { class: "status", role: "status" });
  let stopped = false;

  async function refresh(): Promise<void> {
    try {
      const [fns, trs] = await Promise.all([session.client.listFunctions(), session.client.listTriggers()]);
      if (stopped) return;
      showFunctions(fns);
      showTriggers(trs);
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (!stopped) status.textContent = describeError(error);
    }
  }

  function showFunctions(list: FunctionInfo[]): void {
    fill(
      functions,
      list.length === 0
        ? h("tr", {}, h("td", { colspan: "3", class: "empty" }, "no functions registered"))
        : list.map((fn) => h("tr", { "data-id": fn.functionId }, h("td", {}, fn.functionId), h("td", {}, fn.kind.replace("_", " ")), h("td", {}, fn.url))),
    );
  }

  function showTriggers(list: TriggerInfo[]): void {
    const names = [...KNOWN_STATS];
    for (const trigger of list) for (const name of Object.keys(trigger.stats)) if (!names.includes(name)) names.push(name);
    fill(
      triggersHead,
      h("th", {}, "trigger"),
      h("th", {}, "type"),
      h("th", {}, "function"),
      h("th", {}, "on"),
      h("th", {}, "delivery"),
      names.map((name) => h("th", { class: "number" }, name.replace(/([A-Z])/g, " $1").toLowerCase())),
      h("th", { class: "number", title: "calls not yet delivered" }, "lag"),
      h("th", { class: "number", title: "calls kept as dead letters (at least once)" }, "dead letters"),
    );
    fill(
      triggers,
      list.length === 0
        ? h("tr", {}, h("td", { colspan: String(7 + names.length), class: "empty" }, "no triggers"))
        : list.map((trigger) =>
            h(
              "tr",
              { "data-id": trigger.triggerId },
              h("td", {}, trigger.triggerId),
              h("td", {}, trigger.type),
              h("td", {}, trigger.functionId),
              h("td", {}, [trigger.config.streamName, trigger.config.groupId, trigger.config.itemId].filter(Boolean).join(" / ") || "—"),
              h("td", {}, trigger.delivery.replace(/_/g, " ")),
              names.map((name) => h("td", { class: "number", "data-stat": name }, name in trigger.stats ? formatNumber(trigger.stats[name]) : "—")),
              h("td", { class: "number", "data-stat": "lag" }, formatNumber(trigger.lag)),
              h("td", { class: `number${trigger.deadLetters > 0 ? " alert" : ""}`, "data-stat": "deadLetters" }, formatNumber(trigger.deadLetters)),
            ),
          ),
    );
  }

  void refresh();
  const timer = setInterval(() => void refresh(), REFRESH_MS);
  return {
    title: "Functions and triggers",
    element: h(
      "section",
      { class: "functions" },
      h("h2", {}, "Functions"),
      h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "function"), h("th", {}, "kind"), h("th", {}, "url"))), functions)),
      h("h2", {}, "Triggers"),
      h("div", { class: "scroll" }, h("table", { class: "triggers" }, h("thead", {}, triggersHead), triggers)),
      status,
    ),
    dispose: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
