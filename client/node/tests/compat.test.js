'use strict';
// The client's side of the protocol against scripted peers: what a newer
// (or broken) daemon may send. The real daemon's behaviour is tested in
// client.test.js; these replies are ones it does not send today.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const portd = require('..');
const { tmpdir } = require('./helpers.js');

// A peer answering each request line with reply(request) (a string, or
// undefined to close the connection).
async function peer(reply) {
  const sock = path.join(tmpdir(), 'peer.sock');
  const conns = new Set();
  const srv = net.createServer((s) => {
    conns.add(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const req = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        const out = reply(req);
        if (out === undefined) s.destroy();
        else s.write(out);
      }
    });
    s.on('close', () => conns.delete(s));
  });
  await new Promise((r) => srv.listen(sock, r));
  return {
    sock,
    close: () => new Promise((r) => { for (const s of conns) s.destroy(); srv.close(r); }),
  };
}

const hello = (req, extra = {}) => JSON.stringify({
  id: req.id, ok: true, version: 1, server: { name: 'portd', version: '9.0' }, pid: 7, uid: 0, ...extra,
}) + '\n';

const leaseObj = {
  id: 'L0123456789abcdef', ports: [40001, 40002], proto: 'tcp', family: 'dual', ipv6: true,
  scope: 'ttl', hold: 'shared', ttl: 300, expires: 1, created: 0, name: '', owner: { uid: 0, pid: 1 },
  held: true,
};

test('unknown reply fields from a newer daemon are ignored', async () => {
  const p = await peer((req) => {
    if (req.op === 'hello') return hello(req, { features: ['x'], motd: 'hi' });
    if (req.op === 'lease')
      return JSON.stringify({ id: req.id, ok: true, lease: { ...leaseObj, colour: 'blue', zone: { a: 1 } },
        extra: [1, 2] }) + '\n';
    return JSON.stringify({ id: req.id, ok: true, released: [40001, 40002], lease: leaseObj.id, why: 'x' }) + '\n';
  });
  try {
    const c = await portd.connect({ socket: p.sock });
    assert.equal(c.server.version, '9.0');
    const l = await c.lease({ count: 2 });
    assert.deepEqual(l.ports, [40001, 40002]);
    assert.equal(l.port, 40001);
    assert.equal(l.colour, undefined);
    assert.equal(l.zone, undefined);
    assert.deepEqual(await l.release(), [40001, 40002]);
    c.close();
  } finally {
    await p.close();
  }
});

test('an unknown error code is passed on as it is', async () => {
  const p = await peer((req) => (req.op === 'hello' ? hello(req)
    : JSON.stringify({ id: req.id, ok: false, error: { code: 'shiny_new', message: 'later' }, more: 1 }) + '\n'));
  try {
    const c = await portd.connect({ socket: p.sock });
    await assert.rejects(c.lease(), { name: 'PortdError', code: 'shiny_new', message: 'later' });
    c.close();
  } finally {
    await p.close();
  }
});

test('hello: another protocol version is refused with code version', async () => {
  for (const reply of [
    (req) => hello(req, { version: 2 }),
    (req) => hello(req, { version: undefined }),
    (req) => JSON.stringify({ id: req.id, ok: false,
      error: { code: 'bad_request', message: 'protocol version 1 is not supported' } }) + '\n',
  ]) {
    const p = await peer(reply);
    try {
      await assert.rejects(portd.connect({ socket: p.sock }),
        (e) => e instanceof portd.PortdError && e.code === 'version' && /protocol/.test(e.message));
    } finally {
      await p.close();
    }
  }
});

test('a broken reply closes the connection with code protocol', async () => {
  for (const bad of ['not json\n', '{"id":999,"ok":true}\n', '[1]\n', '{"id":1,"ok":true,"lease":{"id":5}}\n']) {
    let first = true;
    const p = await peer((req) => {
      if (first) { first = false; return hello(req); }
      return bad.replace('"id":1,', `"id":${req.id},`);
    });
    try {
      const c = await portd.connect({ socket: p.sock });
      await assert.rejects(c.lease(), { code: 'protocol' }, bad);
      if (!bad.includes('lease')) {
        assert.equal(c.closed, true);
        await assert.rejects(c.status(), { code: 'protocol' });
      }
      c.close();
    } finally {
      await p.close();
    }
  }
});

test('a connection lost mid-request fails every pending call with code io', async () => {
  let first = true;
  const p = await peer((req) => {
    if (first) { first = false; return hello(req); }
    return undefined;
  });
  try {
    const c = await portd.connect({ socket: p.sock });
    const calls = [c.lease(), c.list(), c.status()];
    for (const r of await Promise.allSettled(calls)) {
      assert.equal(r.status, 'rejected');
      assert.equal(r.reason.code, 'io');
    }
    await assert.rejects(c.lease(), { code: 'io' });
  } finally {
    await p.close();
  }
});

test('the type declarations name what the module exports', () => {
  const dir = path.join(__dirname, '..');
  const dts = fs.readFileSync(path.join(dir, 'index.d.ts'), 'utf8');
  // index.d.mts gives import the same declarations, and getPort as default.
  const mts = fs.readFileSync(path.join(dir, 'index.d.mts'), 'utf8').replace(/^\/\/.*\n/gm, '');
  assert.equal(mts, "export * from './index.js';\nexport { getPort as default } from './index.js';\n");
  const declared = [...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1]);
  const runtime = Object.keys(portd).filter((k) => k !== 'default');
  assert.deepEqual([...new Set(declared)].sort(), runtime.sort());
  assert.match(dts, /^export default getPort;$/m);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  assert.equal(pkg.dependencies, undefined, 'no runtime dependencies');
  for (const f of pkg.files) assert.ok(fs.existsSync(path.join(dir, f)), `${f} exists`);
});
