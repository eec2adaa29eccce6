/**
 * Which backends a pool balances over right now; the control plane recomputes
 * it on every state change, so a request reads one field.
 *  - `primary`: available non-backup backends.
 *  - `backup`: no primary is available (or too few with a panic threshold), backups are.
 *  - `panic`: too few available and no backup: all enabled backends, healthy or not (Envoy's panic threshold).
 *  - `fallback`: nothing available, but discovered endpoints that are terminating still serve: use them
 *    (kube-proxy's rule; ingress-nginx and Contour drop them and lose requests during rollouts).
 *  - `none`: nothing to offer; requests get 503 at once.
 */
export type PoolMode = 'primary' | 'backup' | 'panic' | 'fallback' | 'none';

/** What decides a pool's mode, counted over its members. */
export interface ModeCounts {
  /** Operator-enabled primaries (the base of the panic threshold). */
  readonly primaries: number;
  /** Of those, the available ones. */
  readonly primariesUp: number;
  readonly backupsUp: number;
  /** Operator-enabled members, backups included (what panic mode may use). */
  readonly enabled: number;
  /** Terminating discovered endpoints still serving (what `fallback` may use); 0 when not counted. */
  readonly fallbackUp?: number;
}

/** The mode for `counts` under `panicThresholdPercent` (undefined: no panic mode). Pure. */
export function poolMode(counts: ModeCounts, panicThresholdPercent: number | undefined): PoolMode {
  const { primaries, primariesUp, backupsUp, enabled } = counts;
  const tooFew = panicThresholdPercent !== undefined && primariesUp * 100 < panicThresholdPercent * primaries;
  if (primariesUp > 0 && !tooFew) return 'primary';
  if (backupsUp > 0) return 'backup';
  if (panicThresholdPercent !== undefined && enabled > 0) return 'panic';
  if (primariesUp > 0) return 'primary';
  return (counts.fallbackUp ?? 0) > 0 ? 'fallback' : 'none';
}
