import type { AdminTarget } from '../admin/api.ts';

/** Prometheus exposition of usher's metrics (`GET /metrics` on the admin listener). */
export async function renderMetrics(_target: AdminTarget): Promise<{ readonly contentType: string; readonly body: string }> {
  return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' }; // TODO(metrics)
}
