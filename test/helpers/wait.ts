/**
 * Waiting for something to become true, with a deadline: how tests wait for
 * events they cannot await directly (a state change, a count), instead of
 * sleeping a fixed time.
 */

/**
 * Polls `condition` every `everyMs` (default 5 ms) until it holds, and returns
 * how long that took in ms; throws `timed out after N ms waiting for <what>`
 * after `timeoutMs`. `condition` may be async.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000, everyMs = 5): Promise<number> {
  const start = performance.now();
  while (!(await condition())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return performance.now() - start;
}
