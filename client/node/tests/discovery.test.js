'use strict';
// Finding the daemon: the order every portd client follows, the
// environment variables, and the auto-start of a per-user daemon.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const portd = require('..');
const { pool, portdBin, startDaemon, makeProject, runFixture, tmpdir, waitFor, sleep } =
  require('./helpers.js');

let project;
let d;
before(async () => {
  project = makeProject();
  d = await startDaemon({ pool: pool(4, 10) });
});
after(async () => {
  await d.stop();
  fs.rmSync(project, { recursive: true, force: true });
});

// An environment with none of the discovery variables but those given,
// and portd findable on PATH (so a wrongly allowed auto-start would happen).
function cleanEnv(extra) {
  const e = { ...process.env };
  for (const k of ['PORTD_SOCKET', 'PORTD_SYSTEM_SOCKET', 'PORTD_NO_AUTOSTART', 'XDG_RUNTIME_DIR'])
    delete e[k];
  e.PATH = `${path.dirname(portdBin())}:${e.PATH}`;
  return { ...e, ...extra };
}

function withEnv(vars, fn) {
  const saved = {};
  for (const k of Object.keys(vars)) {
    saved[k] = process.env[k];
    if (vars[k] === undefined) delete process.env[k];
    else process.env[k] = vars[k];
  }
  try {
    return fn();
  } finally {
    for (const k of Object.keys(saved)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

test('socketPaths: the order and its variables', () => {
  const uid = process.geteuid();
  const none = { PORTD_SOCKET: undefined, PORTD_SYSTEM_SOCKET: undefined, PORTD_NO_AUTOSTART: undefined };
  withEnv({ ...none, XDG_RUNTIME_DIR: '/run/user/42' }, () => {
    assert.deepEqual(portd.socketPaths(), [
      { path: '/run/portd/portd.sock', source: 'system', autostart: false },
      { path: '/run/user/42/portd/portd.sock', source: 'user', autostart: true },
    ]);
    // An explicit socket is used alone, never auto-started.
    assert.deepEqual(portd.socketPaths({ socket: '/x/s' }),
      [{ path: '/x/s', source: 'explicit', autostart: false }]);
    assert.equal(portd.socketPaths({ autostart: false })[1].autostart, false);
  });
  // A relative or unset XDG_RUNTIME_DIR: the /tmp fallback.
  for (const xdg of ['relative/dir', undefined, '']) {
    withEnv({ ...none, XDG_RUNTIME_DIR: xdg }, () => {
      assert.equal(portd.socketPaths()[1].path, `/tmp/portd-${uid}/portd.sock`);
    });
  }
  withEnv({ ...none, PORTD_SOCKET: '/e/s', PORTD_SYSTEM_SOCKET: '/sys/s' }, () => {
    assert.deepEqual(portd.socketPaths(), [{ path: '/e/s', source: 'PORTD_SOCKET', autostart: false }]);
    // The option comes first.
    assert.equal(portd.socketPaths({ socket: '/o/s' })[0].path, '/o/s');
  });
  withEnv({ ...none, PORTD_SOCKET: '', PORTD_SYSTEM_SOCKET: '/sys/s', PORTD_NO_AUTOSTART: '1' }, () => {
    const steps = portd.socketPaths();
    assert.equal(steps[0].path, '/sys/s', 'an empty PORTD_SOCKET is unset');
    assert.equal(steps[1].autostart, false);
  });
});

test('an explicit socket or PORTD_SOCKET is used alone, never started', async () => {
  const dir = tmpdir();
  const sock = path.join(dir, 'none.sock');
  const env = cleanEnv({ XDG_RUNTIME_DIR: dir, PORTD_SYSTEM_SOCKET: d.socket });
  // Even with a daemon on the system socket.
  const r = await runFixture(project, 'discover.mjs', { env: { ...env, PORTD_SOCKET: sock } });
  assert.equal(r.error.code, 'no_daemon');
  assert.deepEqual(r.error.tried.map((t) => t.path), [sock]);
  assert.match(r.error.message, /none\.sock/);
  assert.match(r.error.message, /PORTD_SOCKET/);
  await assert.rejects(portd.connect({ socket: sock }),
    (e) => e.code === 'no_daemon' && e.tried.length === 1 && /socket option/.test(e.message));
  await sleep(100);
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing started');
  // And when it answers, that is where the client is.
  const ok = await runFixture(project, 'discover.mjs', { env: { ...env, PORTD_SOCKET: d.socket } });
  assert.deepEqual(ok, { path: d.socket, source: 'PORTD_SOCKET', pid: d.pid });
});

test('the system socket is used when a daemon answers there', async () => {
  const dir = tmpdir();
  const r = await runFixture(project, 'discover.mjs',
    { env: cleanEnv({ XDG_RUNTIME_DIR: dir, PORTD_SYSTEM_SOCKET: d.socket }) });
  assert.deepEqual(r, { path: d.socket, source: 'system', pid: d.pid });
});

test('no daemon and no auto-start: the error names the paths and what to do', async () => {
  const dir = tmpdir();
  const sys = path.join(dir, 'system.sock');
  // A stale socket file where the system daemon would be.
  fs.writeFileSync(sys, '');
  for (const [extra, args] of [[{ PORTD_NO_AUTOSTART: '1' }, []], [{}, ['no-autostart']]]) {
    const r = await runFixture(project, 'discover.mjs',
      { env: cleanEnv({ XDG_RUNTIME_DIR: dir, PORTD_SYSTEM_SOCKET: sys, ...extra }), args });
    assert.equal(r.error.code, 'no_daemon');
    assert.deepEqual(r.error.tried.map((t) => [t.path, t.source]),
      [[sys, 'system'], [path.join(dir, 'portd', 'portd.sock'), 'user']]);
    assert.match(r.error.message, /system\.sock.*portd\/portd\.sock/);
    assert.match(r.error.message, /start one with `portd`/);
  }
  assert.deepEqual(fs.readdirSync(dir), ['system.sock'], 'nothing started');
});

test('auto-start: concurrent clients start one detached per-user daemon', async () => {
  const dir = tmpdir();
  const config = tmpdir();
  fs.mkdirSync(path.join(config, 'portd'));
  const [lo, hi] = pool(4, 100);
  fs.writeFileSync(path.join(config, 'portd', 'portd.conf'), `pool = ${lo + 20}-${hi}\n`);
  const env = cleanEnv({
    XDG_RUNTIME_DIR: dir,
    XDG_CONFIG_HOME: config,
    PORTD_SYSTEM_SOCKET: path.join(dir, 'no-system.sock'),
    // Ours, not the daemon's: they must not reach it.
    NOTIFY_SOCKET: path.join(dir, 'notify'),
    LISTEN_FDS: '1',
    LISTEN_PID: String(process.pid),
  });
  const sock = path.join(dir, 'portd', 'portd.sock');
  const rs = await Promise.all([0, 1, 2, 3].map(() =>
    runFixture(project, 'discover.mjs', { env, timeout: 30000 })));
  const pid = rs[0].pid;
  try {
    for (const r of rs) {
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.equal(r.path, sock);
      assert.equal(r.pid, pid, 'one daemon for all');
      assert.ok(['user-started', 'user'].includes(r.source));
    }
    assert.ok(rs.some((r) => r.source === 'user-started'));
    // Detached in its own session, stdin/stdout on /dev/null, stderr to
    // portd.log beside the socket in a folder closed to others.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    assert.equal(Number(fields[3]), pid, 'session leader (setsid)');
    assert.equal(fs.readlinkSync(`/proc/${pid}/fd/0`), '/dev/null');
    assert.equal(fs.readlinkSync(`/proc/${pid}/fd/1`), '/dev/null');
    assert.equal(fs.readlinkSync(`/proc/${pid}/fd/2`), path.join(dir, 'portd', 'portd.log'));
    assert.equal(fs.statSync(path.join(dir, 'portd')).mode & 0o777, 0o700);
    assert.match(fs.readFileSync(path.join(dir, 'portd', 'portd.log'), 'utf8'), /ready/);
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    for (const k of ['PORTD_SOCKET', 'NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID'])
      assert.ok(!environ.some((v) => v.startsWith(`${k}=`)), `${k} removed`);
    assert.ok(environ.includes(`XDG_RUNTIME_DIR=${dir}`));
    // It serves leases from the configured pool; the next client finds it.
    const c = await portd.connect({ socket: sock });
    const l = await c.lease();
    assert.ok(l.port >= lo + 20 && l.port <= hi);
    c.close();
    const again = await runFixture(project, 'discover.mjs', { env });
    assert.deepEqual(again, { path: sock, source: 'user', pid });
  } finally {
    process.kill(pid, 'SIGTERM');
    await waitFor('the started portd to exit', async () => !fs.existsSync(`/proc/${pid}`));
    assert.doesNotMatch(fs.readFileSync(path.join(dir, 'portd', 'portd.log'), 'utf8'), /Sanitizer|runtime error/);
  }
});

test('auto-start: no log in a folder others may write to', async () => {
  const dir = tmpdir();
  fs.mkdirSync(path.join(dir, 'portd'));
  fs.chmodSync(path.join(dir, 'portd'), 0o777); // others may write
  const config = tmpdir();
  fs.mkdirSync(path.join(config, 'portd'));
  const [lo, hi] = pool(4, 100);
  fs.writeFileSync(path.join(config, 'portd', 'portd.conf'), `pool = ${lo + 20}-${hi}\n`);
  const r = await runFixture(project, 'discover.mjs', {
    env: cleanEnv({ XDG_RUNTIME_DIR: dir, XDG_CONFIG_HOME: config,
      PORTD_SYSTEM_SOCKET: path.join(dir, 'no-system.sock') }),
    timeout: 30000,
  });
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  try {
    assert.equal(r.source, 'user-started');
    assert.equal(fs.readlinkSync(`/proc/${r.pid}/fd/2`), '/dev/null');
    assert.ok(!fs.existsSync(path.join(dir, 'portd', 'portd.log')));
  } finally {
    process.kill(r.pid, 'SIGTERM');
    await waitFor('the started portd to exit', async () => !fs.existsSync(`/proc/${r.pid}`));
  }
});

test('auto-start without a portd to start says so', async (t) => {
  const dir = tmpdir();
  const env = cleanEnv({ XDG_RUNTIME_DIR: dir, PORTD_SYSTEM_SOCKET: path.join(dir, 'none') });
  env.PATH = '/nonexistent';
  const installed = ['/usr/local/sbin/portd', '/usr/sbin/portd'].some((f) => fs.existsSync(f));
  if (installed) {
    t.skip('a portd is installed in an sbin directory, so one would be started');
    return;
  }
  const r = await runFixture(project, 'discover.mjs', { env });
  assert.equal(r.error.code, 'no_daemon');
  assert.match(r.error.message, /portd is not on PATH/);
});
