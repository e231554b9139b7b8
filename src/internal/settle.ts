// Closing many things: every close runs even when one fails, and the failures come back together.

/** Waits for all of `promises` (undefined entries are skipped) and returns why each rejected one failed. */
export async function failuresOf(promises: Iterable<Promise<unknown> | undefined>): Promise<unknown[]> {
  const settled = await Promise.allSettled([...promises].filter((p) => p !== undefined));
  return settled.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
}
