import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { markdownTable, textTable } from "./format.js";
import type { MachineInfo } from "./machine.js";
import type { ScenarioOutput, Table, TargetCheck } from "./scenario.js";
import { renderSvg } from "./svg-chart.js";

export const RESULTS_DIR = fileURLToPath(new URL("../results/", import.meta.url));
const SUMMARY_FILE = "summary.md";

export interface ScenarioResult extends ScenarioOutput {
  scenario: string;
  title: string;
  startedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  /** 1-, 5- and 15-minute load averages when the scenario started and ended: how shared the machine was. */
  loadAverage: { start: number[]; end: number[] };
}

/** Writes `<scenario>.json` and `<scenario>.svg`; through a temporary file, so a killed run leaves the last complete results. */
export function writeScenarioResult(result: ScenarioResult): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeAtomically(join(RESULTS_DIR, `${result.scenario}.json`), `${JSON.stringify(result, null, 2)}\n`);
  writeAtomically(join(RESULTS_DIR, `${result.scenario}.svg`), renderSvg(result.charts));
}

function writeAtomically(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

export function printTables(tables: Table[]): string {
  return tables.map((table) => `${table.title}\n${textTable(table.header, table.rows)}`).join("\n\n");
}

export function targetTable(targets: TargetCheck[]): Table {
  return {
    title: "Targets",
    header: ["target", "measured", "status"],
    rows: targets.map((t) => [t.target, t.measured, t.note ? `${t.status} (${t.note})` : t.status]),
  };
}

/**
 * Every scenario's latest results, as the README's performance section shows them. Only the
 * scenarios named in `order`: other scripts (the soak) keep their own results beside them.
 */
export function writeSummary(order: string[]): string {
  const results = readdirSync(RESULTS_DIR)
    .filter((file) => file.endsWith(".json") && order.includes(file.slice(0, -".json".length)))
    .map((file) => JSON.parse(readFileSync(join(RESULTS_DIR, file), "utf8")) as ScenarioResult)
    .sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario));
  const sections = results.map((r) => {
    const tables = [...r.tables, ...(r.targets.length > 0 ? [targetTable(r.targets)] : [])];
    return [
      `### ${r.scenario}: ${r.title}`,
      "",
      `${r.startedAt}, ${r.durationSeconds} s; load average ${r.loadAverage.start.join(" / ")} at start, ${r.loadAverage.end.join(" / ")} at end. Chart: [${r.scenario}.svg](${r.scenario}.svg)`,
      "",
      ...tables.flatMap((t) => [`${t.title}:`, "", markdownTable(t.header, t.rows), ""]),
      ...r.notes.map((note) => `- ${note}`),
    ].join("\n");
  });
  const machine = results[0]?.machine;
  const header = machine
    ? `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.kernel}; Node ${machine.node}; ` +
      `${Object.entries(machine.packages).map(([name, version]) => `${name} ${version}`).join(", ")}; pinning: ${machine.pinning}.`
    : "No results yet.";
  const content = [`# Benchmark results`, "Written by `npm run bench`; see bench/README.md for how to read them.", header, ...sections, ""].join("\n\n");
  writeAtomically(join(RESULTS_DIR, SUMMARY_FILE), content);
  return join(RESULTS_DIR, SUMMARY_FILE);
}
