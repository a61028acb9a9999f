/**
 * The benchmark suite: `npm run bench` runs every scenario, `npm run bench -- <name>...`
 * the named ones. Each prints its tables and writes bench/results/<name>.json and
 * <name>.svg; bench/results/summary.md then gathers the latest results of all.
 *
 *   npm run bench [-- <scenario>...] [--runs N] [--only <system>]... [--cpu-prof] [--list]
 *                 [--seconds N] [--subscribers N] [--items N]
 *
 * --cpu-prof runs our servers under `node --cpu-prof` and prints each profile's top
 * frames: for finding what stands in the way of a target, not for figures (profiling
 * slows the server). --seconds, --subscribers and --items shorten the scenarios that
 * take them (slow-consumers, snapshot-join, saturation) for a quick look; their results are written
 * as usual, with the settings recorded.
 */
import { parseArgs } from "node:util";
import { loadAverage, machineInfo } from "./machine.js";
import os from "node:os";
import { join } from "node:path";
import { profilesIn, topFrames } from "./cpu-profile.js";
import { formatNumber } from "./format.js";
import { PINNING, profileOurServers } from "./processes.js";
import { printTables, targetTable, writeScenarioResult, writeSummary } from "./results.js";
import type { Scenario } from "./scenario.js";
import { durableScenario } from "./scenarios/durable.js";
import { fanoutScenario } from "./scenarios/fanout.js";
import { hotItemScenario } from "./scenarios/hot-item.js";
import { idleScenario } from "./scenarios/idle.js";
import { manyGroupsScenario } from "./scenarios/many-groups.js";
import { redisScenario } from "./scenarios/redis.js";
import { saturationScenario } from "./scenarios/saturation.js";
import { scaleScenario } from "./scenarios/scale.js";
import { slowConsumersScenario } from "./scenarios/slow-consumers.js";
import { snapshotJoinScenario } from "./scenarios/snapshot-join.js";
import { triggersScenario } from "./scenarios/triggers.js";
import { unaryScenario } from "./scenarios/unary.js";

const SCENARIOS: Scenario[] = [
  unaryScenario,
  fanoutScenario,
  manyGroupsScenario,
  idleScenario,
  hotItemScenario,
  triggersScenario,
  durableScenario,
  redisScenario,
  slowConsumersScenario,
  snapshotJoinScenario,
  saturationScenario,
  scaleScenario,
];
/** Runs per system unless --runs says otherwise: enough for a median on a noisy machine, few enough for 15 minutes. */
const DEFAULT_RUNS = 3;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: "string" },
    list: { type: "boolean" },
    "cpu-prof": { type: "boolean" },
    only: { type: "string", multiple: true },
    seconds: { type: "string" },
    subscribers: { type: "string" },
    items: { type: "string" },
  },
});

if (values.list) {
  for (const scenario of SCENARIOS) console.log(`${scenario.name.padEnd(12)} ${scenario.title}`);
  process.exit(0);
}

const unknown = positionals.filter((name) => !SCENARIOS.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(`unknown scenario: ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
  process.exit(2);
}
const runsOption = values.runs === undefined ? undefined : Number(values.runs);
if (runsOption !== undefined && (!Number.isInteger(runsOption) || runsOption < 1 || runsOption > 20)) {
  console.error(`--runs must be a whole number from 1 to 20, got ${values.runs}`);
  process.exit(2);
}
/** A --seconds, --subscribers or --items value: a whole number from 1 up, or undefined when not given. */
function sizeOption(name: "seconds" | "subscribers" | "items"): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`--${name} must be a whole number from 1 up, got ${text}`);
    process.exit(2);
  }
  return n;
}
const sizes = { seconds: sizeOption("seconds"), subscribers: sizeOption("subscribers"), items: sizeOption("items") };
const selected = positionals.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => positionals.includes(s.name));

const machine = machineInfo();
const suiteStarted = performance.now();
console.log(
  `iii-stream bench: ${selected.map((s) => s.name).join(", ")}; ${runsOption ?? "default"} runs each; node ${machine.node}, ${machine.cores} cores, ` +
    `load average ${loadAverage().join(" / ")}; ${PINNING ? "servers pinned to core 0, load to core 1" : "no pinning available"}\n`,
);
const profiles = join(os.tmpdir(), `iii-stream-cpu-prof-${Date.now()}`);
if (values["cpu-prof"]) profileOurServers(profiles);
let failed = 0;
for (const scenario of selected) {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const loadAtStart = loadAverage();
  console.log(`== ${scenario.name}: ${scenario.title}`);
  try {
    const runs = runsOption ?? scenario.defaultRuns ?? DEFAULT_RUNS;
    const only = values.only?.map((label) => label.toLowerCase());
    const output = await scenario.run({ runs, only, ...sizes, log: (line) => console.log(`   ${line}`) });
    const result = {
      scenario: scenario.name,
      title: scenario.title,
      startedAt,
      durationSeconds: Math.round((performance.now() - started) / 1000),
      machine,
      loadAverage: { start: loadAtStart, end: loadAverage() },
      ...output,
    };
    // A profiled server is slower, and a partial run lacks systems: neither replaces the real results.
    if (!values["cpu-prof"] && !values.only) writeScenarioResult(result);
    const tables = [...output.tables, ...(output.targets.length > 0 ? [targetTable(output.targets)] : [])];
    console.log(`\n${printTables(tables)}`);
    for (const note of output.notes) console.log(`- ${note}`);
    console.log(`(${result.durationSeconds} s; results in bench/results/${scenario.name}.json and .svg)\n`);
  } catch (error) {
    failed++;
    console.error(`${scenario.name} failed: ${(error as Error).stack ?? String(error)}\n`);
  }
}
if (values["cpu-prof"]) {
  for (const profile of profilesIn(profiles)) {
    const { busySeconds, frames } = topFrames(profile);
    // Node also profiles the module loader's thread, which idles once the server runs.
    if (busySeconds < 1) continue;
    console.log(`\ntop frames by self time, of ${formatNumber(busySeconds, 1)} s busy: ${profile}`);
    for (const { frame, selfPercent } of frames) console.log(`${formatNumber(selfPercent, 1).padStart(6)}%  ${frame}`);
  }
} else if (!values.only) {
  console.log(`summary: ${writeSummary(SCENARIOS.map((s) => s.name))}`);
}
console.log(`whole run ${Math.round((performance.now() - suiteStarted) / 1000)} s`);
process.exitCode = failed > 0 ? 1 : 0;
