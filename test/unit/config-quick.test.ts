import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue, quickConfig } from '../../src/config/index.ts';

describe('quickConfig', () => {
  it('builds one listener and one pool through the same validation and defaults', () => {
    const result = quickConfig({ bind: '127.0.0.1:8080', backends: ['127.0.0.1:3001', '[::1]:3002'], algorithm: 'round-robin' });
    assert.deepEqual(result, {
      ok: true,
      warnings: [],
      config: {
        listeners: [{
          name: 'default',
          bind: { host: '127.0.0.1', port: 8080 },
          protocol: 'http',
          acceptProxyProtocol: false,
          trustedProxies: [],
          routes: [{ pool: 'default' }],
          limits: { maxHeaderBytes: 32_768, maxHeaders: 100, maxUriBytes: 8192, maxBodyBytes: 0, maxRequestsPerConnection: 1000, maxConnections: 10_000, maxConnectionsPerClient: 0 },
          timeouts: { headerMs: 10_000, bodyIdleMs: 60_000, keepAliveMs: 60_000, sendMs: 60_000, tunnelIdleMs: 3_600_000 },
        }],
        pools: {
          default: {
            protocol: 'http1',
            drainTimeoutMs: 30_000,
            algorithm: 'round-robin',
            hashKey: { kind: 'client-ip' },
            timeouts: { connectMs: 5000, responseMs: 60_000, idleMs: 60_000 },
            backends: [
              { address: { host: '127.0.0.1', port: 3001 }, weight: 1, backup: false, state: 'enabled' },
              { address: { host: '::1', port: 3002 }, weight: 1, backup: false, state: 'enabled' },
            ],
            queueSize: 128,
            queueTimeoutMs: 5000,
            unreachable: { backoffMs: 1000, maxBackoffMs: 10_000 },
            retry: { attempts: 2, on: ['connect-failure', 'reset'], budgetPercent: 20, minRetriesPerSecond: 3 },
          },
        },
        accessLog: { enabled: true, format: 'json' },
        log: { level: 'info', destination: 'stderr' },
        shutdownTimeoutMs: 30_000,
      },
    });
  });

  it('defaults the algorithm to p2c', () => {
    const result = quickConfig({ bind: '127.0.0.1:0', backends: ['h:1'] });
    assert.equal(result.ok && result.config.pools['default']?.algorithm, 'p2c');
  });

  it('names the flag in every problem', () => {
    const result = quickConfig({ bind: 'localhost', backends: ['h:1', 'nope', 'h:1'], algorithm: 'rr' });
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.errors.map(formatIssue), [
      '<command line> --bind: expected host:port, got "localhost"',
      '<command line> --algorithm: expected one of p2c, round-robin, least-connections, random, ewma, hash, maglev, or a balancer module ({ module: ./balancer.ts }), got "rr"',
      '<command line> --backend[1]: expected host:port, got "nope"',
      '<command line> --backend[2]: duplicate backend "h:1" (also --backend[0]); raise its weight instead',
    ]);
  });

  it('requires at least one backend', () => {
    const result = quickConfig({ bind: '127.0.0.1:0', backends: [] });
    assert.deepEqual(!result.ok && result.errors.map(formatIssue), ['<command line> --backend: give at least one --backend HOST:PORT']);
  });
});
