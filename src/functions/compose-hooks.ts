import type { EngineHooks } from "../core/engine.js";

/** Engine hooks that call each of `all` in turn; a join is refused when any of them refuses it. */
export function composeHooks(...all: Array<EngineHooks | undefined>): EngineHooks {
  const hooks = all.filter((h): h is EngineHooks => h !== undefined);
  if (hooks.length <= 1) return hooks[0] ?? {};
  return {
    onMessage: (message) => {
      for (const h of hooks) h.onMessage?.(message);
    },
    beforeJoin: async (join) => {
      for (const h of hooks) await h.beforeJoin?.(join);
    },
    afterLeave: (join) => {
      for (const h of hooks) h.afterLeave?.(join);
    },
  };
}
