import type { Chart } from "./svg-chart.js";

/** A table as printed and as written to the results: a header and rows of cells. */
export interface Table {
  title: string;
  header: string[];
  rows: string[][];
}

/** One target of issue 7, checked against figures from the same run. */
export interface TargetCheck {
  target: string;
  /** The measured ratio (or figure) the target is judged on. */
  measured: string;
  status: "met" | "missed" | "not available";
  note?: string;
}

export interface ScenarioOutput {
  tables: Table[];
  charts: Chart[];
  targets: TargetCheck[];
  /** Things a reader must know to read the figures (what was unavailable, what bounded a rate). */
  notes: string[];
  /** Settings of the scenario, recorded with the results. */
  config: Record<string, unknown>;
  /** Every run's figures as the load generators returned them. */
  raw: unknown;
}

export interface ScenarioOptions {
  /** Runs per system; each system is measured this many times, interleaved with the others. */
  runs: number;
  /** Only the systems (fan-out, many-groups, idle) whose label contains one of these (lower case); undefined for all. */
  only?: string[];
  /** --seconds, --subscribers, --items: shorter runs of the scenarios that take them; undefined for their defaults. */
  seconds?: number;
  subscribers?: number;
  items?: number;
  log(line: string): void;
}

export interface Scenario {
  name: string;
  title: string;
  /** Runs per system when the command line does not say; default 3. */
  defaultRuns?: number;
  run(options: ScenarioOptions): Promise<ScenarioOutput>;
}

/** Whether a run with `--only` asked for the system of this label. */
export function isWanted(options: ScenarioOptions, label: string): boolean {
  return !options.only || options.only.some((part) => label.toLowerCase().includes(part));
}
