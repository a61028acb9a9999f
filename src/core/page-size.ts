import { invalidArgument } from "./errors.js";

/** Page sizes of one kind of list: what 0 (unset) means, and the most a page holds. */
export interface PageSizeLimits {
  default: number;
  max: number;
}

/**
 * Items (List) and groups (ListGroups): a default page that is one modest message even
 * for 1 KB items (about 1 MB, a quarter of the 4 MB that gRPC clients accept by
 * default), and a maximum that keeps a page of small items well within that limit.
 */
export const ITEM_PAGE_SIZES: PageSizeLimits = { default: 1_000, max: 10_000 };
export const GROUP_PAGE_SIZES: PageSizeLimits = { default: 1_000, max: 10_000 };
/**
 * ListAll: each stream in a page carries up to `GROUPS_PER_STREAM.max` group names, so
 * its pages are smaller than the others; 1,000 streams of 1,000 names of up to 256
 * bytes would already be 256 MB.
 */
export const STREAM_PAGE_SIZES: PageSizeLimits = { default: 100, max: 1_000 };
export const GROUPS_PER_STREAM: PageSizeLimits = { default: 100, max: 1_000 };

/** AIP-158: 0 means the default, more than the maximum means the maximum, negative is an error. */
export function resolvePageSize(field: string, requested: number | undefined, limits: PageSizeLimits): number {
  const size = requested ?? 0;
  if (!Number.isSafeInteger(size) || size < 0) throw invalidArgument(`${field} must be a non-negative integer, got ${size}`);
  if (size === 0) return limits.default;
  return Math.min(size, limits.max);
}
