import type { RedisConfig } from '../config/types.ts';

/** The peers' settings when a config built in code leaves them out (the loader always sets them, to these same values). */
export const PEER_DEFAULTS = { shareAdminActions: false, heartbeatMs: 1000, peerTimeoutMs: 5000 } as const;

/** A `redis` section with the peers' settings filled in. */
export type PeerSettings = RedisConfig & { readonly shareAdminActions: boolean; readonly heartbeatMs: number; readonly peerTimeoutMs: number };

export function peerSettings(config: RedisConfig): PeerSettings {
  return {
    ...config,
    shareAdminActions: config.shareAdminActions ?? PEER_DEFAULTS.shareAdminActions,
    heartbeatMs: config.heartbeatMs ?? PEER_DEFAULTS.heartbeatMs,
    peerTimeoutMs: config.peerTimeoutMs ?? PEER_DEFAULTS.peerTimeoutMs,
  };
}
