import { formatRatio } from "./format.js";
import type { TargetCheck } from "./scenario.js";

/** A "measured ratio at most / at least bound" target; unavailable when the ratio is missing. */
export function ratioTarget(target: string, measured: number, bound: number, direction: "at most" | "at least", note?: string): TargetCheck {
  if (!Number.isFinite(measured)) return { target, measured: "n/a", status: "not available", note };
  const met = direction === "at most" ? measured <= bound : measured >= bound;
  return { target, measured: formatRatio(measured), status: met ? "met" : "missed", note };
}

export function unavailableTarget(target: string, note: string): TargetCheck {
  return { target, measured: "n/a", status: "not available", note };
}
