import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { corkUntilTurnEnd } from '../../src/runtime/turn-flush.ts';

/** A loopback server that collects what each accepted connection sends until it ends. */
async function collector(): Promise<{ server: Server; port: number; received: Promise<string>[] }> {
  const received: Promise<string>[] = [];
  const server = createServer((socket) => {
    received.push(
      new Promise((resolve) => {
        let text = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('end', () => {
          resolve(text);
          socket.end();
        });
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, port: address.port, received };
}

async function client(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  return socket;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('writes to a corked socket wait for the end of the turn, then leave in order', async () => {
  const { server, port, received } = await collector();
  const socket = await client(port);
  corkUntilTurnEnd(socket);
  socket.write('one ');
  corkUntilTurnEnd(socket); // a second call in the same turn changes nothing
  socket.write(Buffer.from('two '));
  assert.equal(socket.writableCorked, 1);
  assert.equal(socket.writableLength, 8, 'nothing written before the turn ends');
  await nextTurn();
  assert.equal(socket.writableCorked, 0);
  assert.equal(socket.writableLength, 0, 'flushed at the end of the turn');
  socket.end('three');
  assert.equal(await received[0], 'one two three');
  socket.destroy();
  server.close();
});

test('end() on a corked socket flushes what was written before it', async () => {
  const { server, port, received } = await collector();
  const socket = await client(port);
  corkUntilTurnEnd(socket);
  socket.write('head ');
  socket.end('tail');
  assert.equal(await received[0], 'head tail');
  await nextTurn(); // the queued uncork finds the socket ended: nothing happens
  socket.destroy();
  server.close();
});

test('every socket corked in one turn is flushed, even when one of them was destroyed', async () => {
  const { server, port, received } = await collector();
  const sockets = await Promise.all([client(port), client(port), client(port)]);
  await new Promise<void>((resolve) => {
    const wait = (): void => (received.length === 3 ? resolve() : void setTimeout(wait, 5));
    wait();
  });
  sockets.forEach((socket, i) => {
    corkUntilTurnEnd(socket);
    socket.write(`socket ${i}`);
  });
  sockets[1]!.destroy();
  await nextTurn();
  assert.equal(sockets[0]!.writableLength, 0);
  assert.equal(sockets[2]!.writableLength, 0);
  sockets[0]!.end();
  sockets[2]!.end();
  const texts = await Promise.all([received[0]!, received[2]!]);
  assert.deepEqual(texts.sort(), ['socket 0', 'socket 2']);
  server.close();
});

test('a cork()/uncork() pair inside the turn does not end the coalescing early', async () => {
  const { server, port, received } = await collector();
  const socket = await client(port);
  corkUntilTurnEnd(socket);
  socket.write('a');
  socket.cork();
  socket.write('b');
  socket.uncork();
  assert.equal(socket.writableLength, 2, 'still held for the end of the turn');
  await nextTurn();
  assert.equal(socket.writableLength, 0);
  socket.end();
  assert.equal(await received[0], 'ab');
  server.close();
});
