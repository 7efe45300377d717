'use strict';
// Every call of the client against a real portd on a private socket.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const net = require('node:net');
const portd = require('..');
const { pool, startDaemon, busyPorts, waitFor } = require('./helpers.js');

const [LO, HI] = pool(0);
let d;
before(async () => {
  d = await startDaemon({ pool: [LO, HI], args: ['--quota', '40'] });
});
after(async () => {
  await d.stop();
});

const inPool = (p) => p >= LO && p <= HI;

test('connect: hello checks the version and says where it connected', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    assert.equal(c.socketPath, d.socket);
    assert.equal(c.source, 'explicit');
    assert.equal(c.daemonPid, d.pid);
    assert.equal(c.uid, process.getuid());
    assert.equal(c.server.name, 'portd');
    const r = await c.hello();
    assert.equal(r.version, 1);
    assert.equal(r.pid, d.pid);
  } finally {
    c.close();
  }
});

test('lease: one TCP port, held shared on both families, then released', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    const l = await c.lease({ name: 'node-one', scope: 'ttl' });
    assert.match(l.id, /^L[0-9a-f]{16}$/);
    assert.equal(l.ports.length, 1);
    assert.equal(l.port, l.ports[0]);
    assert.ok(inPool(l.port), `${l.port} in the pool`);
    assert.equal(l.proto, 'tcp');
    assert.equal(l.family, 'dual');
    assert.equal(l.hold, 'shared');
    assert.equal(l.scope, 'ttl');
    assert.equal(l.ttl, 300);
    assert.equal(l.name, 'node-one');
    assert.equal(l.held, true);
    assert.equal(l.owner.uid, process.getuid());
    assert.equal(l.owner.pid, process.pid);
    assert.ok(l.expires > Date.now() + 290e3 && l.expires <= Date.now() + 300e3);
    // Held: a plain bind fails on either family.
    assert.equal(busyPorts([l.port], 0).length, 2);
    assert.deepEqual(await l.release(), [l.port]);
    assert.deepEqual(busyPorts([l.port]), []);
    // Once released, a second release() answers the same, without asking.
    assert.deepEqual(await l.release(), [l.port]);
    assert.deepEqual(await c.list(), []);
  } finally {
    c.close();
  }
});

test('lease: a Node server co-binds a shared lease\'s port', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    const l = await c.lease();
    const srv = net.createServer((s) => s.end('hi'));
    await new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(l.port, resolve);
    });
    const got = await new Promise((resolve, reject) => {
      const s = net.connect(l.port, '127.0.0.1');
      let b = '';
      s.on('data', (x) => { b += x; });
      s.on('end', () => resolve(b));
      s.on('error', reject);
    });
    assert.equal(got, 'hi');
    await new Promise((r) => srv.close(r));
    await l.release();
  } finally {
    c.close();
  }
});

test('lease: count, contiguous, proto, family, hold, ttl, strategy', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    const run = await c.lease({ count: 3, contiguous: true });
    assert.equal(run.ports.length, 3);
    assert.deepEqual(run.ports, [run.port, run.port + 1, run.port + 2]);

    const udp = await c.lease({ proto: 'udp', family: 'ipv4', ttl: 20 });
    assert.equal(udp.proto, 'udp');
    assert.equal(udp.family, 'ipv4');
    assert.equal(udp.hold, 'exclusive');
    assert.equal(udp.ttl, 20);
    // Held exclusive: a UDP bind on the port fails until claimed.
    const bindUdp = (port) => new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', (e) => { s.close(); resolve(e.code); });
      s.bind(port, '0.0.0.0', () => { s.close(); resolve('bound'); });
    });
    assert.equal(await bindUdp(udp.port), 'EADDRINUSE');
    await udp.claim();
    assert.equal(udp.held, false);
    assert.equal(await bindUdp(udp.port), 'bound');

    const both = await c.lease({ proto: 'both', hold: 'exclusive' });
    assert.equal(both.proto, 'both');
    assert.equal(both.hold, 'exclusive');

    const eph = await c.lease({ strategy: 'ephemeral' });
    assert.ok(!inPool(eph.port), `ephemeral port ${eph.port} outside the pool`);

    const specific = await c.lease({ port: HI - 1, count: 2 });
    assert.deepEqual(specific.ports, [HI - 1, HI]);

    const listed = (await c.list()).map((l) => l.id).sort();
    assert.deepEqual(listed, [run.id, udp.id, both.id, eph.id, specific.id].sort());
    for (const l of [run, udp, both, eph, specific]) await l.release();
  } finally {
    c.close();
  }
});

test('renew and claim update the lease; release by port', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    const l = await c.lease({ ttl: 10 });
    const before = l.expires;
    assert.equal(await l.renew(100), l);
    assert.equal(l.ttl, 100);
    assert.ok(l.expires > before + 80e3);
    await l.renew();
    assert.equal(l.ttl, 100);

    const info = await c.renew(l.id, 50);
    assert.equal(info.ttl, 50);
    assert.equal(info.id, l.id);

    assert.equal(busyPorts([l.port], 0).length, 2);
    await l.claim();
    assert.equal(l.held, false);
    assert.deepEqual(busyPorts([l.port]), []);
    // Claimed, the port is still leased: nobody else gets it from portd.
    await assert.rejects(c.lease({ port: l.port }), { name: 'PortdError', code: 'port_unavailable' });
    // Claiming twice is not an error.
    assert.equal((await c.claim(l.id)).held, false);

    assert.deepEqual(await c.release(l.port), [l.port]);
    await assert.rejects(l.renew(), { code: 'not_found' });
  } finally {
    c.close();
  }
});

test('scope session, a client\'s default: the lease ends with its connection', async () => {
  const c = await portd.connect({ socket: d.socket });
  const l = await c.lease();
  assert.equal(l.scope, 'session');
  assert.equal(l.ttl, null);
  assert.equal(l.expires, null);
  const watcher = await portd.connect({ socket: d.socket });
  try {
    assert.ok((await watcher.list()).some((x) => x.id === l.id));
    c.close();
    await waitFor('the session lease to end',
      async () => !(await watcher.list()).some((x) => x.id === l.id));
    assert.deepEqual(busyPorts([l.port]), []);
    await assert.rejects(l.release(), { code: 'io' });
  } finally {
    watcher.close();
  }
});

test('scope process: the lease names this process', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    const l = await c.lease({ scope: 'process', pid: process.pid });
    assert.equal(l.scope, 'process');
    assert.equal(l.owner.pid, process.pid);
    await l.release();
  } finally {
    c.close();
  }
});

test('status reports the pool and counters', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    const l = await c.lease();
    const s = await c.status();
    assert.equal(s.version, 1);
    assert.equal(s.pid, d.pid);
    assert.equal(s.pool.lo, LO);
    assert.equal(s.pool.hi, HI);
    assert.ok(s.leases >= 1);
    assert.ok(s.counters.leases_created >= 1);
    assert.equal(s.ok, undefined);
    await l.release();
  } finally {
    c.close();
  }
});

test('errors carry the daemon\'s code', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    await assert.rejects(c.release('L0000000000000000'),
      (e) => e instanceof portd.PortdError && e.code === 'not_found' && e.op === 'release' &&
        /no lease/.test(e.message));
    await assert.rejects(c.lease({ count: 65 }), { code: 'bad_request' });
    await assert.rejects(c.lease({ colour: 'red' }), { code: 'bad_request', message: /colour/ });
    await assert.rejects(c.request('frobnicate'), { code: 'unknown_op' });
    await assert.rejects(c.lease({ count: 41 }), { code: 'quota_exceeded' });
    // The connection is still good after refusals.
    const l = await c.lease();
    await l.release();
  } finally {
    c.close();
  }
});

test('no_ports when the pool is used up', async () => {
  const small = await startDaemon({ pool: pool(1, 3) });
  const c = await portd.connect({ socket: small.socket });
  try {
    const l = await c.lease({ count: 3 });
    await assert.rejects(c.lease(), { code: 'no_ports' });
    await l.release();
  } finally {
    c.close();
    await small.stop();
  }
});

test('fd handoff is refused in Node, before anything is sent', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    await assert.rejects(c.lease({ fd: true }), { code: 'invalid', message: /SCM_RIGHTS/ });
    assert.deepEqual(await c.list(), []);
  } finally {
    c.close();
  }
});

test('top-level lease() shares one connection; asyncDispose releases', async () => {
  const a = await portd.lease({ socket: d.socket, count: 2 });
  const b = await portd.lease({ socket: d.socket });
  assert.equal(a.ports.length, 2);
  // Their default scope: until release() or the end of this process.
  assert.equal(a.scope, 'process');
  assert.equal(a.owner.pid, process.pid);
  const c = await portd.connect({ socket: d.socket });
  try {
    // This client and the shared one (once the daemon has seen the
    // earlier tests' clients go).
    await waitFor('two connections', async () => (await c.status()).connections === 2);
    assert.equal(typeof a[Symbol.asyncDispose], 'function');
    await a[Symbol.asyncDispose]();
    await b[Symbol.asyncDispose]();
    await b[Symbol.asyncDispose](); // ended already: no error
    assert.deepEqual(await c.list(), []);
    // A lease that ended otherwise is not an error to dispose of either.
    const e = await portd.lease({ socket: d.socket });
    await c.release(e.id);
    await e[Symbol.asyncDispose]();
  } finally {
    c.close();
  }
});

test('a timeout closes the connection with code timeout', async () => {
  // A listener that never answers.
  const { tmpdir } = require('./helpers.js');
  const path = require('node:path');
  const sock = path.join(tmpdir(), 'mute.sock');
  const conns = [];
  const srv = net.createServer((s) => conns.push(s));
  await new Promise((r) => srv.listen(sock, r));
  try {
    await assert.rejects(portd.connect({ socket: sock, timeout: 200 }),
      { code: 'timeout', message: /hello/ });
  } finally {
    for (const s of conns) s.destroy();
    await new Promise((r) => srv.close(r));
  }
});

test('pipelined requests on one connection come back in order', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    const leases = await Promise.all(Array.from({ length: 30 }, (_, i) => c.lease({ name: `p${i}` })));
    assert.deepEqual(leases.map((l) => l.name), leases.map((_, i) => `p${i}`));
    assert.equal(new Set(leases.map((l) => l.port)).size, 30);
    const released = await Promise.all(leases.map((l) => l.release()));
    assert.deepEqual(released, leases.map((l) => [l.port]));
  } finally {
    c.close();
  }
});

test('who names the lease of a port; state follows claim', async () => {
  const c = await portd.connect({ socket: d.socket });
  try {
    const l = await c.lease({ name: 'whom' });
    assert.equal(l.state, 'held');
    const w = await c.who(l.port);
    assert.equal(w.port, l.port);
    assert.equal(w.leased, true);
    assert.equal(w.lease.id, l.id);
    assert.equal(w.lease.name, 'whom');
    assert.equal(typeof w.command, 'string');
    await l.claim();
    assert.equal(l.state, 'claimed');
    assert.equal((await c.who(l.port, 'tcp')).lease.state, 'claimed');
    await l.release();
    assert.equal((await c.who(l.port)).leased, false);
  } finally {
    c.close();
  }
});
