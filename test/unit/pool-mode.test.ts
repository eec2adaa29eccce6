import assert from 'node:assert/strict';
import { test } from 'node:test';
import { poolMode } from '../../src/pool/pool-mode.ts';

test('primary while a primary is up, backup when none is, none when nothing is', () => {
  assert.equal(poolMode({ primaries: 3, primariesUp: 1, backupsUp: 1, enabled: 4 }, undefined), 'primary');
  assert.equal(poolMode({ primaries: 3, primariesUp: 0, backupsUp: 1, enabled: 4 }, undefined), 'backup');
  assert.equal(poolMode({ primaries: 3, primariesUp: 0, backupsUp: 0, enabled: 3 }, undefined), 'none');
  assert.equal(poolMode({ primaries: 0, primariesUp: 0, backupsUp: 0, enabled: 0 }, undefined), 'none', 'an empty pool');
});

test('a panic threshold: too few primaries go to backups first, then panic; never panic with nothing enabled', () => {
  assert.equal(poolMode({ primaries: 4, primariesUp: 2, backupsUp: 0, enabled: 4 }, 50), 'primary', 'exactly at the threshold');
  assert.equal(poolMode({ primaries: 4, primariesUp: 1, backupsUp: 1, enabled: 5 }, 50), 'backup');
  assert.equal(poolMode({ primaries: 4, primariesUp: 1, backupsUp: 0, enabled: 4 }, 50), 'panic');
  assert.equal(poolMode({ primaries: 0, primariesUp: 0, backupsUp: 0, enabled: 0 }, 50), 'none');
});
