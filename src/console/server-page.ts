/**
 * The server: version, adapter, uptime, connections, subscriptions, and deliveries and
 * writes per second, from `/metrics` read every two seconds (rates are the counters'
 * growth between two reads).
 */
import { fill, formatNumber, h } from "./dom.js";
import type { Page } from "./page.js";
import { find, parseMetrics, total } from "./prometheus-text.js";
import { describeError, type Session } from "./session.js";
import { Sparkline } from "./sparkline.js";

const REFRESH_MS = 2000;

export function serverPage(session: Session): Page {
  const facts = h("dl", { class: "facts server-facts" });
  const status = h("p", { class: "status", role: "status" });
  const deliveries = new Sparkline(60, "deliveries per second");
  const writes = new Sparkline(60, "writes per second");
  let previous: { at: number; deliveries: number; writes: number } | undefined;
  let stopped = false;

  async function refresh(): Promise<void> {
    try {
      const samples = parseMetrics(await session.fetchText("metrics"));
      if (stopped) return;
      const at = performance.now();
      const now = { at, deliveries: total(samples, "iii_stream_deliveries_total"), writes: total(samples, "iii_stream_writes_total") };
      const seconds = previous ? (at - previous.at) / 1000 : 0;
      const perSecond = (key: "deliveries" | "writes") => (previous && seconds > 0 ? Math.max(0, (now[key] - previous[key]) / seconds) : undefined);
      const deliveryRate = perSecond("deliveries");
      const writeRate = perSecond("writes");
      if (deliveryRate !== undefined) deliveries.push(deliveryRate);
      if (writeRate !== undefined) writes.push(writeRate);
      previous = now;
      const build = find(samples, "iii_stream_build_info");
      const started = find(samples, "process_start_time_seconds")?.value;
      const fact = (name: string, field: string, ...value: Array<Node | string>) => [h("dt", {}, name), h("dd", { "data-field": field }, ...value)];
      fill(
        facts,
        fact("version", "version", build?.labels.version ?? "—"),
        fact("adapter", "adapter", build?.labels.adapter ?? "—"),
        fact("uptime", "uptime", started ? duration(Date.now() / 1000 - started) : "—"),
        fact("connections", "connections", formatNumber(total(samples, "iii_stream_connections"))),
        fact("subscriptions", "subscriptions", formatNumber(total(samples, "iii_stream_subscriptions"))),
        fact("deliveries/s", "deliveries", deliveries.element, " ", deliveryRate === undefined ? "…" : formatNumber(deliveryRate, 1)),
        fact("writes/s", "writes", writes.element, " ", writeRate === undefined ? "…" : formatNumber(writeRate, 1)),
        fact("store ready", "ready", find(samples, "iii_stream_store_ready")?.value === 1 ? "yes" : "no"),
      );
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (!stopped) status.textContent = describeError(error);
    }
  }

  if (session.settings.metrics) {
    void refresh();
  } else {
    status.textContent = "metrics are off or served on their own port (metrics_port), where this page cannot read them";
  }
  const timer = session.settings.metrics ? setInterval(() => void refresh(), REFRESH_MS) : undefined;
  return {
    title: "Server",
    element: h("section", { class: "server" }, h("h2", {}, "Server"), facts, status),
    dispose: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const parts = days > 0 ? [`${days}d`, `${hours}h`] : hours > 0 ? [`${hours}h`, `${minutes}m`] : [`${minutes}m`, `${s % 60}s`];
  return parts.join(" ");
}
