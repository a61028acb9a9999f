/**
 * A value whose JSON is exactly `bytes` long (or as short as its index allows): the
 * memory loads state their item and change sizes, and a value of the stated size makes
 * the figures comparable with those sizes.
 */
export function paddedValue(i: number, bytes: number): { i: number; text: string } {
  const bare = JSON.stringify({ i, text: "" }).length;
  return { i, text: "x".repeat(Math.max(0, bytes - bare)) };
}
