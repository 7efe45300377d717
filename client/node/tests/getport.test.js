'use strict';
// getPort(): get-port's contract against a real portd, in this process and
// in parallel Node processes running real HTTP servers.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const child_process = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const portd = require('..');
const { pool, startDaemon, busyPorts, makeProject, runFixture, waitFor } = require('./helpers.js');

const [LO, HI] = pool(2, 60);
const OUTSIDE = LO + 80; // in this file's slice, outside the daemon's pool
let d;
let watcher;
// A folder where `portd` resolves to this package, as it would from npm.
let project;

before(async () => {
  d = await startDaemon({ pool: [LO, HI] });
  process.env.PORTD_SOCKET = d.socket;
  watcher = await portd.connect();
  project = makeProject();
});
after(async () => {
  await portd.releasePorts();
  watcher.close();
  await d.stop();
  fs.rmSync(project, { recursive: true, force: true });
});

const leasedPorts = async () => (await watcher.list()).flatMap((l) => l.ports).sort((a, b) => a - b);

function listenOn(port) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(port, () => resolve(srv));
  });
}

function get(port) {
  // A keep-alive agent, destroyed after the reply, so that the client
  // closes first and the server's port is left without a TIME_WAIT.
  const agent = new http.Agent({ keepAlive: true });
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (x) => { body += x; });
      res.on('end', () => { agent.destroy(); resolve(body); });
    }).on('error', (e) => { agent.destroy(); reject(e); });
  });
}

const run = (file) => runFixture(project, file);

test('getPort: 16 Node processes, each serving HTTP on its own port', async () => {
  const N = 16;
  const kids = [];
  for (let i = 0; i < N; i++) {
    const file = i % 2 ? 'server.mjs' : 'server.cjs';
    const child = child_process.spawn(process.execPath, [file],
      { cwd: project, stdio: ['pipe', 'pipe', 'inherit'] });
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file} did not start`)), 60000);
      readline.createInterface({ input: child.stdout }).once('line', (line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      });
      child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
    });
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    kids.push({ child, ready, exited });
  }
  try {
    const got = await Promise.all(kids.map((k) => k.ready));
    const ports = got.map((g) => g.port);
    assert.equal(new Set(ports).size, N, `distinct ports: ${ports}`);
    for (const p of ports) assert.ok(p >= LO && p <= HI, `${p} from the pool`);
    // Each is leased while its process lives, and each serves.
    assert.deepEqual(await leasedPorts(), [...ports].sort((a, b) => a - b));
    const bodies = await Promise.all(ports.map(get));
    assert.deepEqual(bodies, got.map((g) => String(g.pid)));
  } finally {
    for (const k of kids) k.child.stdin.end();
  }
  const codes = await Promise.all(kids.map((k) => k.exited));
  assert.deepEqual(codes, Array(N).fill(0));
  const ports = (await Promise.all(kids.map((k) => k.ready))).map((g) => g.port);
  // Their leases ended with them, and a plain bind() takes every port.
  await waitFor('the leases to end', async () => (await leasedPorts()).length === 0);
  assert.deepEqual(busyPorts(ports), []);
});

test('getPort: a process that only got ports exits by itself', async () => {
  // The shared and the dedicated connection are unref()ed: without that
  // the child would never exit and execFile's timeout would fail this.
  const r = await run('idle.mjs');
  assert.ok(r.port >= LO && r.port <= HI);
  assert.equal(r.lease.length, 2);
  assert.equal(r.daemon, d.pid);
  await waitFor('its leases to end', async () => (await leasedPorts()).length === 0);
});

test('import and require share one implementation', async () => {
  const r = await run('dual.mjs');
  assert.equal(r.sameGetPort, true);
  assert.equal(r.sameError, true);
  assert.equal(r.defaultIsGetPort, true);
  assert.deepEqual(r.esm, r.cjs);
});

test('getPort: the port is held for co-bind until releasePorts()', async () => {
  const p = await portd.getPort();
  assert.ok(p >= LO && p <= HI);
  assert.equal(busyPorts([p], 0).length, 2, 'a plain bind fails: held');
  const srv = await listenOn(p); // SO_REUSEADDR: co-binds
  await new Promise((r) => srv.close(r));
  const l = (await watcher.list()).find((x) => x.ports[0] === p);
  assert.equal(l.scope, 'session');
  assert.equal(l.hold, 'shared');
  assert.equal(l.name, 'getPort');
  await portd.releasePorts();
  assert.deepEqual(await leasedPorts(), []);
  assert.deepEqual(busyPorts([p]), []);
});

test('getPort: a free preferred port is returned, a held one falls back', async () => {
  const p = LO + 10;
  assert.equal(await portd.getPort({ port: p }), p);
  const again = await portd.getPort({ port: p });
  assert.notEqual(again, p);
  assert.ok(again >= LO && again <= HI);
  await portd.releasePorts();
});

test('getPort: the first free port of an iterable wins, taken lazily', async () => {
  const foreign = await listenOn(LO + 20); // another program's server
  try {
    assert.equal(await portd.getPort({ port: [LO + 20, LO + 21, LO + 22] }), LO + 21);
    const pulled = [];
    const gen = (function* () {
      for (const q of portd.portNumbers(LO + 20, LO + 29)) {
        pulled.push(q);
        yield q;
      }
    })();
    // LO+20 busy (foreign), LO+21 held by us: LO+22 wins, nothing after
    // it is asked for.
    assert.equal(await portd.getPort({ port: gen }), LO + 22);
    assert.deepEqual(pulled, [LO + 20, LO + 21, LO + 22]);
    // None free: any port.
    const any = await portd.getPort({ port: [LO + 20, LO + 21] });
    assert.ok(![LO + 20, LO + 21, LO + 22].includes(any));
  } finally {
    foreign.close();
    await portd.releasePorts();
  }
});

test('getPort: a preferred port outside the pool is leased if free', async () => {
  assert.equal(await portd.getPort({ port: OUTSIDE }), OUTSIDE);
  assert.equal(busyPorts([OUTSIDE], 0).length, 2);
  await portd.releasePorts();
  assert.deepEqual(busyPorts([OUTSIDE]), []);
});

test('getPort: exclude is never returned, preferred or not', async () => {
  const small = await startDaemon({ pool: pool(3, 4) });
  const [a, b, c, e] = [0, 1, 2, 3].map((i) => pool(3)[0] + i);
  try {
    const opts = { socket: small.socket, exclude: [a, b, c] };
    assert.equal(await portd.getPort({ ...opts, port: a }), e);
    const cl = await portd.connect({ socket: small.socket });
    // The excluded ones it got on the way went back.
    assert.deepEqual((await cl.list()).flatMap((l) => l.ports), [e]);
    // Everything left is excluded: the pool's refusal.
    await assert.rejects(portd.getPort(opts), { code: 'no_ports' });
    assert.deepEqual((await cl.list()).flatMap((l) => l.ports), [e]);
    cl.close();
  } finally {
    await portd.releasePorts();
    await small.stop();
  }
});

test('getPort: bad arguments are TypeErrors, as in get-port', async () => {
  await assert.rejects(portd.getPort({ port: 'x' }), TypeError);
  await assert.rejects(portd.getPort({ port: [70000] }), TypeError);
  await assert.rejects(portd.getPort({ exclude: 5 }), TypeError);
  await assert.rejects(portd.getPort({ exclude: [1.5] }), TypeError);
  assert.throws(() => portd.portNumbers(80, 90), RangeError);
  assert.throws(() => portd.portNumbers(3000, 2000), RangeError);
  assert.throws(() => portd.portNumbers('a', 2000), TypeError);
  assert.deepEqual([...portd.portNumbers(3000, 3002)], [3000, 3001, 3002]);
});
