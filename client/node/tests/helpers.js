'use strict';
// Test helpers: a real portd on a private socket, real binds.
const assert = require('node:assert/strict');
const child_process = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

// The daemon under test: PORTD_BIN (what ctest passes), else portd on PATH.
function portdBin() {
  if (process.env.PORTD_BIN) return process.env.PORTD_BIN;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const f = path.join(dir || '.', 'portd');
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch { /* next */ }
  }
  throw new Error('set PORTD_BIN to the portd to test (ctest does), or put portd on PATH');
}

// Ports for this test file's daemons: PORTD_TEST_PORTS (LO-HI) cut into
// slices of 100, one per slice index, so files running at once never
// share a port.
function pool(slice, size = 100) {
  const [lo, hi] = (process.env.PORTD_TEST_PORTS ?? '30500-30999').split('-').map(Number);
  const start = lo + slice * 100;
  assert.ok(start + size - 1 <= hi, `port slice ${slice} is outside ${lo}-${hi}`);
  return [start, start + size - 1];
}

function tmpdir(prefix = 'portd-node-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function canConnect(sock) {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: sock });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// Starts portd in the foreground on a private socket.
async function startDaemon({ pool: [lo, hi], args = [], dir = tmpdir() } = {}) {
  const socket = path.join(dir, 'portd.sock');
  const log = fs.openSync(path.join(dir, 'portd.log'), 'a');
  const child = child_process.spawn(portdBin(),
    ['--socket', socket, '--pool', `${lo}-${hi}`, ...args],
    { stdio: ['ignore', 'ignore', log] });
  fs.closeSync(log);
  const readLog = () => fs.readFileSync(path.join(dir, 'portd.log'), 'utf8');
  let exited = false;
  child.once('exit', () => { exited = true; });
  await waitFor(`portd on ${socket}`, async () => {
    if (exited) throw new Error(`portd exited: ${readLog()}`);
    return canConnect(socket);
  });
  return {
    socket, dir, pid: child.pid, child,
    // Stops it and checks that it exited cleanly (under the sanitizers a
    // leak or an error in the daemon fails the test here).
    async stop() {
      if (exited) throw new Error(`portd exited early: ${readLog()}`);
      const done = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
      child.kill('SIGTERM');
      const { code, signal } = await done;
      assert.ok(code === 0 && signal === null,
        `portd exited with ${code ?? signal}: ${readLog()}`);
    },
  };
}

// Binds each port on the IPv4 and IPv6 wildcards *without* SO_REUSEADDR
// (Node's own TCP servers always set it, so Python does the binding): true
// when every port is free for a plain bind. Retries for a second, since a
// just-closed connection may linger in LAST_ACK for a moment. Returns
// the busy ones, with the error of their bind.
function python() {
  for (const p of ['/usr/bin/python3', 'python3']) {
    const r = child_process.spawnSync(p, ['-c', 'pass']);
    if (r.status === 0) return p;
  }
  throw new Error('python3 is needed to probe ports with a plain bind()');
}

const PROBE = `
import socket, sys, time
wait = float(sys.argv[1])
ports = [int(p) for p in sys.argv[2:]]
busy = []
deadline = time.time() + wait
while True:
    busy = []
    for p in ports:
        for fam, addr in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
            s = socket.socket(fam, socket.SOCK_STREAM)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind((addr, p))
            except OSError as e:
                busy.append('%s:%d %s' % (addr, p, e.strerror))
            finally:
                s.close()
    if not busy or time.time() > deadline:
        break
    time.sleep(0.02)
print('\\n'.join(busy))
`;

// wait: seconds to retry while some port is busy (0 for a probe that
// expects busy ports).
function busyPorts(ports, wait = 1) {
  const r = child_process.spawnSync(python(), ['-c', PROBE, String(wait), ...ports.map(String)],
    { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '');
}

// The environment for a child that must find the daemon only at sock.
function envFor(sock, extra = {}) {
  const e = { ...process.env, PORTD_SOCKET: sock, ...extra };
  return e;
}

// A folder where `portd` resolves to this package as it would from npm,
// holding the fixtures.
function makeProject() {
  const project = tmpdir('portd-node-project-');
  fs.mkdirSync(path.join(project, 'node_modules'));
  fs.symlinkSync(path.resolve(__dirname, '..'), path.join(project, 'node_modules', 'portd'));
  for (const f of fs.readdirSync(path.join(__dirname, 'fixtures')))
    fs.copyFileSync(path.join(__dirname, 'fixtures', f), path.join(project, f));
  return project;
}

// Runs a fixture with node in project; resolves to its JSON output.
function runFixture(project, file, { timeout = 30000, env = process.env, args = [] } = {}) {
  return new Promise((resolve, reject) => {
    child_process.execFile(process.execPath, [file, ...args], { cwd: project, timeout, env },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${file}: ${err.message} ${stderr}`));
        else resolve(JSON.parse(stdout));
      });
  });
}

module.exports = { makeProject, runFixture, portdBin, pool, tmpdir, startDaemon, busyPorts, waitFor, sleep, envFor, canConnect };
