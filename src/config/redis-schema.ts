/**
 * The schema of the top-level `redis` section: the one Redis (standalone,
 * Sentinel or Cluster) that `store: redis` rate-limit policies and the
 * instance registry and event bus (src/peers/) share. Turned into node-redis
 * options by src/redis/options.ts.
 *
 * Secrets: `password` and `sentinel.password` are write-only (messages show
 * their `${VAR}` template or their length, never the value), and so is `url`,
 * which may carry a password (`redis://:secret@host`).
 */
import { z } from 'zod';
import type { HostPort, RedisConfig } from './types.ts';
import { backendAddress, documented, duration, filePath, flag, text } from './values.ts';
import { formatDuration } from './duration.ts';

export const REDIS_DEFAULTS = { keyPrefix: 'usher', timeout: '20ms', heartbeat: '1s', peerTimeout: '5s' } as const;

/** An instance id: what `GET /api/peers` shows and the registry key ends with. No `{` or `}` (hash tags) and no spaces. */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;

const URL_EXPECTED = 'expected a redis:// or rediss:// URL such as redis://10.0.0.9:6379';

/** `redis[s]://[user[:password]@]host[:port][/db]`: checked here so a typo fails at load, not at the first connect. */
function checkUrl(textValue: string): string | undefined {
  let url: URL;
  try {
    url = new URL(textValue);
  } catch {
    return URL_EXPECTED;
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return URL_EXPECTED;
  if (url.hostname === '') return `${URL_EXPECTED} (the host is missing)`;
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,2}$/.test(url.pathname)) return 'the URL path is the database number, e.g. redis://10.0.0.9:6379/2';
  if (url.search !== '' || url.hash !== '') return 'the URL takes no query or fragment; TLS files go under redis.tls';
  return undefined;
}

/** A secret of any length (Redis passwords are whatever the server was given), never shown in messages. */
function password(description: string) {
  return z
    .string({ error: 'expected a string' })
    .min(1, { error: 'the password is empty; leave the key out for none' })
    .meta({ description, examples: ['${REDIS_PASSWORD}'], writeOnly: true });
}

const username = (description: string) => text({ description, examples: ['usher'] }).min(1, { error: 'the username is empty; leave the key out for the default user' });

const nodes = (what: string, example: string) =>
  documented(
    z.array(backendAddress({ description: `A ${what} as \`host:port\`.`, examples: [example] }), { error: `expected a list of ${what}s (host:port)` }).min(1, { error: `list at least one ${what}` }),
    { description: `${what[0]!.toUpperCase()}${what.slice(1)}s to ask first (\`host:port\`); the client learns the others from them. Three are enough.`, examples: [[example]] },
  );

const tlsSchema = documented(
  z.strictObject({
    ca: filePath({ description: 'PEM file of the CA(s) that signed the server\'s certificate; absent: the system\'s trusted CAs. Relative to the config file.', examples: ['/etc/usher/redis-ca.pem'] }).optional(),
    cert: filePath({ description: 'PEM client certificate, for servers that require one (`tls-auth-clients yes`). Needs `key`.', examples: ['/etc/usher/redis-client.pem'] }).optional(),
    key: filePath({ description: 'PEM private key of `cert`.', examples: ['/etc/usher/redis-client-key.pem'] }).optional(),
    servername: text({ description: 'Name checked against the server\'s certificate (and sent as SNI), when it differs from the host connected to.', examples: ['redis.internal'] }).min(1).optional(),
    rejectUnauthorized: flag({ description: 'Refuse a server whose certificate does not verify. Turn off only to test.', examples: [false] }).default(true),
  }, { error: 'expected a tls mapping' }).transform((tls, ctx) => {
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      ctx.issues.push({ code: 'custom', message: 'cert and key go together', input: tls, path: [tls.cert === undefined ? 'cert' : 'key'] });
      return z.NEVER;
    }
    return tls;
  }),
  { description: 'TLS to Redis: on with a `rediss://` URL, or for Sentinel and Cluster whenever this mapping is present (every connection: nodes and sentinels).', examples: [{ ca: '/etc/usher/redis-ca.pem', servername: 'redis.internal' }] },
);

const sentinelSchema = documented(
  z.strictObject({
    name: text({ description: 'The master\'s name as the sentinels know it (`sentinel monitor <name> ...`).', examples: ['mymaster'] }).min(1, { error: 'expected the master\'s name' }),
    nodes: nodes('sentinel', '10.0.0.1:26379'),
    username: username('User for the sentinels themselves, when they require one (the master and replicas use `redis.username`).').optional(),
    password: password('Password for the sentinels themselves (`requirepass` in sentinel.conf); the master uses `redis.password`. Never shown in messages.').optional(),
  }, { error: 'expected a sentinel mapping with name and nodes' }),
  { description: 'Find the master through Redis Sentinel (node-redis `createSentinel`): usher follows a failover on its own.', examples: [{ name: 'mymaster', nodes: ['10.0.0.1:26379', '10.0.0.2:26379', '10.0.0.3:26379'] }] },
);

const clusterSchema = documented(
  z.strictObject({
    nodes: nodes('cluster node', '10.0.0.1:7000'),
  }, { error: 'expected a cluster mapping with nodes' }),
  { description: 'Redis Cluster (node-redis `createCluster`). Every key usher writes carries a hash tag, so each script and each listing stays on one slot.', examples: [{ nodes: ['10.0.0.1:7000', '10.0.0.2:7000', '10.0.0.3:7000'] }] },
);

/** Top-level `redis`. */
export const redisSchema = documented(
  z.strictObject({
    url: z
      .string({ error: URL_EXPECTED })
      .meta({ description: 'A standalone Redis (or Valkey): `redis://[user[:password]@]host:port[/db]`, `rediss://` for TLS. Use `${ENV}` for a password, or `password`. Exactly one of `url`, `sentinel` and `cluster`. May hold a password, so messages never show it.', examples: ['redis://127.0.0.1:6379', 'rediss://:${REDIS_PASSWORD}@redis.internal:6380'], writeOnly: true })
      .superRefine((value, ctx) => {
        const problem = checkUrl(value);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    sentinel: sentinelSchema.optional(),
    cluster: clusterSchema.optional(),
    username: username('ACL user (Redis 6+); or in the URL.').optional(),
    password: password('Password (of `username`, or the default user); or in the URL. Use `${ENV}`. Never shown in messages, logs or the admin API.').optional(),
    tls: tlsSchema.optional(),
    keyPrefix: documented(z.string({ error: 'expected a key prefix' }).regex(/^[A-Za-z0-9_.:-]{1,64}$/, { error: 'expected 1 to 64 letters, digits, _ . : or -' }), { description: 'First part of every key and channel: rate limits `{<keyPrefix>:<policy>}:<key>`, peers `{<keyPrefix>:peers}:<instance>`, events `<keyPrefix>:events`. Instances see each other only with the same prefix.', examples: ['usher-prod'] }).default(REDIS_DEFAULTS.keyPrefix),
    timeout: duration({ description: 'Longest a rate-limit decision waits for Redis; past it the policy\'s `onStoreError` decides. The registry and event bus, off the request path, wait at least 1 s.', examples: ['50ms'] }).prefault(REDIS_DEFAULTS.timeout),
    instance: z
      .string({ error: 'expected an instance id' })
      .refine((id) => INSTANCE_ID_PATTERN.test(id), { error: 'expected 1 to 128 letters, digits, _ . : @ or - (starting with a letter or digit)' })
      // The editors' pattern also takes `${HOSTNAME}`, interpolated before the check.
      .meta({ description: 'This instance\'s id among its peers (`GET /api/peers`, `usher status`). Default `<hostname>:<pid>`. Two instances must not share one.', examples: ['${HOSTNAME}', 'edge-1'], pattern: `\\$\\{|${INSTANCE_ID_PATTERN.source}` })
      .optional(),
    shareAdminActions: flag({ description: 'Also send backend drains, disables and enables made through this instance\'s admin API to every peer, and apply theirs. Cache purges are always shared. See docs/peers.md.', examples: [true] }).default(false),
    heartbeat: duration({ description: 'How often this instance writes its registry entry (and reads its peers\').', examples: ['2s'] }, { ms: 100, why: 'a faster heartbeat only loads Redis' }).prefault(REDIS_DEFAULTS.heartbeat),
    peerTimeout: duration({ description: 'An instance not heard from for this long is gone (its entry\'s TTL). At least twice `heartbeat`, so one late heartbeat does not drop a live instance.', examples: ['10s'] }).prefault(REDIS_DEFAULTS.peerTimeout),
  }, { error: 'expected a redis mapping with url, sentinel or cluster' }).transform((r, ctx): RedisConfig => {
    const modes = (['url', 'sentinel', 'cluster'] as const).filter((key) => r[key] !== undefined);
    if (modes.length !== 1) {
      const message = modes.length === 0 ? 'give one of url (a standalone Redis), sentinel or cluster' : `give only one of url, sentinel and cluster (got ${modes.join(' and ')})`;
      ctx.issues.push({ code: 'custom', message, input: r, path: modes.length === 0 ? [] : [modes[1]!] });
      return z.NEVER;
    }
    if (r.url !== undefined) {
      const url = new URL(r.url);
      if (url.username !== '' && r.username !== undefined) ctx.issues.push({ code: 'custom', message: 'the URL already names a user: give it in url or username, not both', input: r.username, path: ['username'] });
      if (url.password !== '' && r.password !== undefined) ctx.issues.push({ code: 'custom', message: 'the URL already holds a password: give it in url or password, not both', input: '', path: ['password'] });
      if (url.protocol === 'redis:' && r.tls !== undefined) ctx.issues.push({ code: 'custom', message: 'tls needs a rediss:// URL (redis:// is plain TCP)', input: r.tls, path: ['tls'] });
    }
    if (r.peerTimeout < 2 * r.heartbeat) {
      ctx.issues.push({ code: 'custom', message: `peerTimeout must be at least twice heartbeat (${formatDuration(2 * r.heartbeat)}), so one late heartbeat does not drop a live instance`, input: r.peerTimeout, path: ['peerTimeout'] });
    }
    if (ctx.issues.length > 0) return z.NEVER;
    const hostPort = (list: readonly HostPort[]): HostPort[] => list.map(({ host, port }) => ({ host, port }));
    return {
      ...(r.url === undefined ? {} : { url: r.url }),
      ...(r.sentinel === undefined ? {} : { sentinel: { ...r.sentinel, nodes: hostPort(r.sentinel.nodes) } }),
      ...(r.cluster === undefined ? {} : { cluster: { nodes: hostPort(r.cluster.nodes) } }),
      ...(r.username === undefined ? {} : { username: r.username }),
      ...(r.password === undefined ? {} : { password: r.password }),
      ...(r.tls === undefined ? {} : { tls: r.tls }),
      keyPrefix: r.keyPrefix,
      timeoutMs: r.timeout,
      ...(r.instance === undefined ? {} : { instance: r.instance }),
      shareAdminActions: r.shareAdminActions,
      heartbeatMs: r.heartbeat,
      peerTimeoutMs: r.peerTimeout,
    };
  }),
  {
    description: 'The Redis that usher instances share: `store: redis` rate-limit policies (docs/ratelimit.md), the instance registry, and the event bus that carries cache purges (and, with `shareAdminActions`, drains) to every instance (docs/peers.md). Standalone (`url`), Sentinel or Cluster.',
    examples: [{ url: 'redis://127.0.0.1:6379', keyPrefix: 'usher', timeout: '20ms' }, { sentinel: { name: 'mymaster', nodes: ['10.0.0.1:26379'] }, password: '${REDIS_PASSWORD}', shareAdminActions: true }],
  },
);
