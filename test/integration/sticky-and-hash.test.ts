import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startOrigins } from '../helpers/origin.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

function cookieValue(setCookie: string | string[] | undefined, name: string): string | undefined {
  const all = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie];
  for (const line of all) if (line.startsWith(`${name}=`)) return line.slice(name.length + 1).split(';')[0];
  return undefined;
}

test('sticky cookie pins a client to its backend and re-pins when that backend is unavailable', async (t) => {
  const origins = await startOrigins(3);
  const usher = await startUsher(simpleYaml(origins.map((o) => o.address), {
    algorithm: 'round-robin',
    sticky: { cookie: 'usher_sticky', ttl: '1h', secret: 'test-secret-0123456789' },
  }));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await Promise.all(origins.map((o) => o.close()));
  });
  const url = `${usher.url('web')}/`;
  const first = await request(url);
  const firstBackend = await first.body.text();
  const setCookie = first.headers['set-cookie'];
  const token = cookieValue(setCookie, 'usher_sticky');
  assert.ok(token, 'first response sets the sticky cookie');
  assert.match(String(setCookie), /Max-Age=3600/);
  assert.match(String(setCookie), /HttpOnly/);
  for (const origin of origins) assert.ok(!token.includes(String(origin.port)), 'the cookie does not reveal the address');

  // Round-robin would rotate; the cookie keeps every request on the first backend, without re-setting it.
  for (let i = 0; i < 9; i++) {
    const res: Awaited<ReturnType<typeof request>> = await request(url, { headers: { cookie: `other=1; usher_sticky=${token}` } });
    assert.equal(await res.body.text(), firstBackend);
    assert.equal(res.headers['set-cookie'], undefined);
  }

  // A forged or stale value is treated as no cookie: balanced normally and a valid cookie is set.
  const forged = await request(url, { headers: { cookie: 'usher_sticky=forged-value' } });
  await forged.body.text();
  assert.ok(cookieValue(forged.headers['set-cookie'], 'usher_sticky'));

  // The pinned backend leaves rotation: the client is re-pinned elsewhere and gets a new cookie.
  const pool = usher.snapshot.pools.get('main')!;
  const pinned = pool.control.backends.find((b) => b.stickyToken === token)!;
  pool.control.setAdminState(pinned, 'draining');
  const moved = await request(url, { headers: { cookie: `usher_sticky=${token}` } });
  const movedTo = await moved.body.text();
  assert.notEqual(movedTo, firstBackend);
  const newToken = cookieValue(moved.headers['set-cookie'], 'usher_sticky');
  assert.ok(newToken && newToken !== token, 'cookie re-set to the new backend');
  const again = await request(url, { headers: { cookie: `usher_sticky=${newToken}` } });
  assert.equal(await again.body.text(), movedTo);
});

test('hash on a header: the same key always reaches the same backend; keys spread', async (t) => {
  const origins = await startOrigins(4);
  const usher = await startUsher(simpleYaml(origins.map((o) => o.address), { algorithm: 'hash', hashKey: 'header:x-user' }));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await Promise.all(origins.map((o) => o.close()));
  });
  const owners = new Map<string, string>();
  for (let round = 0; round < 3; round++) {
    for (let user = 0; user < 40; user++) {
      const res = await request(`${usher.url('web')}/`, { headers: { 'x-user': `user-${user}` } });
      const origin = await res.body.text();
      const previous = owners.get(`user-${user}`);
      if (previous !== undefined) assert.equal(origin, previous, `user-${user} moved`);
      owners.set(`user-${user}`, origin);
    }
  }
  assert.ok(new Set(owners.values()).size >= 3, 'keys spread over the backends');
});

test('hash on client-ip keeps one client on one backend', async (t) => {
  const origins = await startOrigins(3);
  const usher = await startUsher(simpleYaml(origins.map((o) => o.address), { algorithm: 'maglev' }));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await Promise.all(origins.map((o) => o.close()));
  });
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const res = await request(`${usher.url('web')}/`);
    seen.add(await res.body.text());
  }
  assert.equal(seen.size, 1);
});
