/**
 * Stream names no other test (or earlier run against a persistent backend) uses, so
 * tests sharing one server cannot see each other's items or offsets.
 */
export function uniqueNames(prefix: string): (label: string) => string {
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  let counter = 0;
  return (label) => `${prefix}-${run}-${++counter}-${label}`;
}
