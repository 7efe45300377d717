'use strict';
// portd: race-free ports from the portd daemon, for Node.js.
//
// One JSON object per line over a stream Unix socket (docs/protocol.md).
// The implementation is this one CommonJS module; index.mjs re-exports it,
// so ESM and CommonJS users share one set of held ports per process.

const child_process = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const PROTOCOL_VERSION = 1;
const DEFAULT_TIMEOUT_MS = 5000;
const AUTOSTART_WAIT_MS = 5000;
const SYSTEM_SOCKET = '/run/portd/portd.sock';
// A reply longer than this is not portd's: a list of the largest daemon's
// every lease stays far below it.
const MAX_REPLY_BYTES = 64 * 1024 * 1024;
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin'];
// What belongs to our own service manager, or would point the daemon at
// another socket than the one it is started for.
const DAEMON_ENV_DROP = [
  'PORTD_SOCKET', 'NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID',
  'LISTEN_FDNAMES', 'WATCHDOG_USEC', 'WATCHDOG_PID',
];
// Options of this client, never sent to the daemon.
const CLIENT_OPTIONS = ['socket', 'autostart', 'timeout'];

class PortdError extends Error {
  // code: the daemon's error code (bad_request, no_ports, port_unavailable,
  // quota_exceeded, not_found, forbidden, resource_exhausted, internal, ...)
  // or one of the client's own: no_daemon, timeout, protocol, version, io,
  // invalid.
  constructor(code, message, extra) {
    super(message);
    this.name = 'PortdError';
    this.code = code;
    if (extra !== undefined) Object.assign(this, extra);
  }
}

function env(name) {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

// Where to look for the daemon, in order (the discovery every portd
// client follows; see docs/integrations.md). Each step is {path, source,
// autostart}; an explicit path or PORTD_SOCKET is the only step.
function socketPaths(options = {}) {
  if (typeof options.socket === 'string' && options.socket !== '')
    return [{ path: options.socket, source: 'explicit', autostart: false }];
  const fromEnv = env('PORTD_SOCKET');
  if (fromEnv !== undefined)
    return [{ path: fromEnv, source: 'PORTD_SOCKET', autostart: false }];
  const system = env('PORTD_SYSTEM_SOCKET') ?? SYSTEM_SOCKET;
  const xdg = process.env.XDG_RUNTIME_DIR;
  const user = xdg !== undefined && xdg.startsWith('/')
    ? path.join(xdg, 'portd', 'portd.sock')
    : `/tmp/portd-${process.geteuid()}/portd.sock`;
  const autostart = options.autostart !== false &&
    process.env.PORTD_NO_AUTOSTART !== '1';
  return [
    { path: system, source: 'system', autostart: false },
    { path: user, source: 'user', autostart },
  ];
}

function connectOnce(sockPath) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: sockPath });
    const fail = (err) => { s.destroy(); reject(err); };
    s.once('error', fail);
    s.once('connect', () => { s.removeListener('error', fail); resolve(s); });
  });
}

function executable(file) {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// The first portd on PATH, else the installed one.
function findDaemon() {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && executable(path.join(dir, 'portd')))
      return path.join(dir, 'portd');
  }
  for (const dir of SBIN_DIRS) {
    if (executable(path.join(dir, 'portd'))) return path.join(dir, 'portd');
  }
  return undefined;
}

// portd.log beside the socket, only in a folder that is ours and closed to
// others: a shared /tmp path could be somebody else's trap.
function openLog(sockPath) {
  const dir = path.dirname(sockPath);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (err.code !== 'EEXIST') return 'ignore';
  }
  try {
    const st = fs.lstatSync(dir);
    if (!st.isDirectory() || st.uid !== process.geteuid() ||
        (st.mode & 0o022) !== 0)
      return 'ignore';
    const c = fs.constants;
    return fs.openSync(path.join(dir, 'portd.log'),
      c.O_WRONLY | c.O_CREAT | c.O_APPEND | c.O_NOFOLLOW, 0o600);
  } catch {
    return 'ignore';
  }
}

// Start a per-user daemon for sockPath, detached in its own session.
// Resolves once it is started (or could not be); whether it answers is
// the caller's retry loop's to find out.
function startDaemon(sockPath) {
  const bin = findDaemon();
  if (bin === undefined)
    return Promise.resolve('portd is not on PATH nor in ' + SBIN_DIRS.join(' or '));
  const daemonEnv = { ...process.env };
  for (const k of DAEMON_ENV_DROP) delete daemonEnv[k];
  const log = openLog(sockPath);
  return new Promise((resolve) => {
    let child;
    try {
      child = child_process.spawn(bin, ['--user', '--socket', sockPath], {
        detached: true, // setsid(): its own session, outliving us
        stdio: ['ignore', 'ignore', log],
        env: daemonEnv,
      });
    } catch (err) {
      resolve(`could not start ${bin}: ${err.message}`);
      return;
    } finally {
      if (typeof log === 'number') fs.closeSync(log);
    }
    child.once('error', (err) => resolve(`could not start ${bin}: ${err.message}`));
    child.once('spawn', () => { child.unref(); resolve(undefined); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const RETRY_START = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

// Connect along the discovery order. Resolves {socket, path, source}.
async function discover(options) {
  const tried = [];
  for (const step of socketPaths(options)) {
    try {
      const s = await connectOnce(step.path);
      return { socket: s, path: step.path, source: step.source };
    } catch (err) {
      tried.push({ path: step.path, source: step.source, error: err.code ?? err.message });
      if (!step.autostart || !RETRY_START.has(err.code)) continue;
    }
    const why = await startDaemon(step.path);
    if (why !== undefined) {
      tried[tried.length - 1].error += `; ${why}`;
      continue;
    }
    const deadline = Date.now() + AUTOSTART_WAIT_MS;
    let last;
    do {
      await sleep(10);
      try {
        const s = await connectOnce(step.path);
        return { socket: s, path: step.path, source: 'user-started' };
      } catch (err) {
        last = err.code ?? err.message;
      }
    } while (Date.now() < deadline);
    tried[tried.length - 1].error +=
      `; started portd, but it did not answer within ${AUTOSTART_WAIT_MS} ms (${last})`;
  }
  const list = tried.map((t) => `${t.path} (${t.source}: ${t.error})`).join(', ');
  let next;
  if (tried.length === 1)
    next = `start portd on ${tried[0].path}, or point ${tried[0].source === 'explicit' ? 'the socket option' : 'PORTD_SOCKET'} at a running daemon`;
  else
    next = 'start one with `portd` (or `systemctl --user start portd.socket`), ' +
      'set PORTD_SOCKET to a running daemon\'s socket, or unset PORTD_NO_AUTOSTART';
  throw new PortdError('no_daemon', `no portd daemon reachable: tried ${list}; ${next}`,
    { tried });
}

function checkTimeout(t) {
  if (t === undefined) return DEFAULT_TIMEOUT_MS;
  if (typeof t !== 'number' || Number.isNaN(t) || t < 0)
    throw new TypeError('timeout must be a number of milliseconds >= 0 (0: no limit)');
  return t;
}

// The lease object's fields as the protocol defines them; anything else a
// newer daemon sends is ignored.
const LEASE_FIELDS = ['id', 'ports', 'proto', 'family', 'ipv6', 'scope', 'hold',
  'ttl', 'expires', 'created', 'name', 'owner', 'held', 'state', 'reason'];

function checkLeaseObject(obj) {
  if (obj === null || typeof obj !== 'object' || typeof obj.id !== 'string' ||
      !Array.isArray(obj.ports) || obj.ports.length === 0 ||
      !obj.ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536))
    throw new PortdError('protocol', 'reply without a valid lease object');
  return obj;
}

class Lease {
  constructor(client, obj) {
    Object.defineProperty(this, '_client', { value: client, writable: true });
    Object.defineProperty(this, '_released', { value: undefined, writable: true });
    this._update(obj);
  }

  _update(obj) {
    checkLeaseObject(obj);
    for (const k of LEASE_FIELDS) {
      if (k in obj) this[k] = obj[k];
    }
    this.port = this.ports[0];
  }

  // Ends the lease; resolves to the ports it had. Releasing a lease this
  // object released already resolves to the same ports again.
  async release() {
    if (this._released === undefined) {
      const r = await this._client.request('release', { lease: this.id });
      this._released = Array.isArray(r.released) ? r.released : this.ports;
    }
    return this._released;
  }

  // Resets the expiry to now + ttl seconds (default: the lease's TTL).
  async renew(ttl) {
    const args = { lease: this.id };
    if (ttl !== undefined) args.ttl = ttl;
    this._update((await this._client.request('renew', args)).lease);
    return this;
  }

  // portd closes its sockets (held becomes false); the ports stay leased.
  async claim() {
    this._update((await this._client.request('claim', { lease: this.id })).lease);
    return this;
  }

  toJSON() {
    const o = {};
    for (const k of LEASE_FIELDS) if (k in this) o[k] = this[k];
    return o;
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  // `await using lease = await portd.lease()`: released at the end of the
  // block; a lease that ended already (expired, released) is not an error.
  Lease.prototype[Symbol.asyncDispose] = async function () {
    try {
      await this.release();
    } catch (err) {
      if (!(err instanceof PortdError && err.code === 'not_found')) throw err;
    }
  };
}

class Client {
  constructor(socket, sockPath, source, timeout) {
    this.socketPath = sockPath;
    // Which discovery step answered: explicit, PORTD_SOCKET, system, user,
    // user-started (the per-user daemon this client auto-started).
    this.source = source;
    this.server = undefined;
    this.daemonPid = undefined;
    this.uid = undefined;
    this._socket = socket;
    this._timeout = timeout;
    this._pending = [];
    this._chunks = [];
    this._buffered = 0;
    this._nextId = 1;
    this._closed = undefined; // the PortdError every later call gets
    socket.unref();
    socket.on('data', (d) => this._data(d));
    socket.on('error', (err) => this._fail(new PortdError('io',
      `connection to portd at ${sockPath} failed: ${err.message}`)));
    socket.on('close', () => this._fail(new PortdError('io',
      `portd at ${sockPath} closed the connection`)));
  }

  get closed() {
    return this._closed !== undefined;
  }

  _fail(err) {
    if (this._closed === undefined) this._closed = err;
    this._socket.destroy();
    const pending = this._pending;
    this._pending = [];
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  _data(d) {
    let start = 0;
    let nl;
    while ((nl = d.indexOf(10, start)) !== -1) {
      this._chunks.push(d.subarray(start, nl));
      const line = Buffer.concat(this._chunks).toString('utf8');
      this._chunks = [];
      this._buffered = 0;
      start = nl + 1;
      this._line(line);
      if (this._closed) return;
    }
    if (start < d.length) {
      this._chunks.push(d.subarray(start));
      this._buffered += d.length - start;
      if (this._buffered > MAX_REPLY_BYTES)
        this._fail(new PortdError('protocol', 'reply line too long'));
    }
  }

  _line(line) {
    const p = this._pending.shift();
    if (p === undefined) {
      this._fail(new PortdError('protocol', 'a reply nobody asked for'));
      return;
    }
    if (this._pending.length === 0) this._socket.unref();
    clearTimeout(p.timer);
    let reply;
    try {
      reply = JSON.parse(line);
    } catch {
      reply = undefined;
    }
    if (reply === null || typeof reply !== 'object' || reply.id !== p.id) {
      const err = new PortdError('protocol', `bad reply to '${p.op}': ${line.slice(0, 200)}`);
      p.reject(err);
      this._fail(err);
      return;
    }
    if (reply.ok === true) {
      p.resolve(reply);
      return;
    }
    const e = reply.error ?? {};
    p.reject(new PortdError(typeof e.code === 'string' ? e.code : 'protocol',
      typeof e.message === 'string' ? e.message : `'${p.op}' failed`, { op: p.op }));
  }

  // One request; resolves to the whole reply object (ok: true) or rejects
  // with a PortdError.
  request(op, args = {}) {
    if (this._closed) return Promise.reject(this._closed);
    const id = this._nextId++;
    const line = JSON.stringify({ ...args, op, id }) + '\n';
    return new Promise((resolve, reject) => {
      const p = { id, op, resolve, reject, timer: undefined };
      if (this._timeout > 0) {
        p.timer = setTimeout(() => this._fail(new PortdError('timeout',
          `no reply to '${op}' from portd at ${this.socketPath} within ${this._timeout} ms`)),
        this._timeout);
      }
      // Only an outstanding request keeps the process alive.
      if (this._pending.length === 0) this._socket.ref();
      this._pending.push(p);
      this._socket.write(line);
    });
  }

  async hello() {
    let r;
    try {
      r = await this.request('hello', { version: PROTOCOL_VERSION });
    } catch (err) {
      if (err instanceof PortdError && err.code === 'bad_request')
        throw new PortdError('version', `portd at ${this.socketPath} does not speak ` +
          `protocol version ${PROTOCOL_VERSION}: ${err.message}`);
      throw err;
    }
    if (r.version !== PROTOCOL_VERSION)
      throw new PortdError('version', `portd at ${this.socketPath} speaks protocol ` +
        `version ${JSON.stringify(r.version)}, not ${PROTOCOL_VERSION}`);
    this.server = r.server;
    this.daemonPid = r.pid;
    this.uid = r.uid;
    return r;
  }

  // The default scope is session: the lease ends when this client closes
  // (as the Python client's Client.lease).
  async lease(options = {}) {
    const args = { scope: 'session', ...leaseArgs(options) };
    return new Lease(this, (await this.request('lease', args)).lease);
  }

  async renew(id, ttl) {
    const args = { lease: id };
    if (ttl !== undefined) args.ttl = ttl;
    return (await this.request('renew', args)).lease;
  }

  async claim(id) {
    return (await this.request('claim', { lease: id })).lease;
  }

  // A lease id (string) or any port of the lease (number). Resolves to the
  // released ports.
  async release(idOrPort) {
    const args = typeof idOrPort === 'number' ? { port: idOrPort } : { lease: idOrPort };
    return (await this.request('release', args)).released;
  }

  async list(options = {}) {
    return (await this.request('list', options.all ? { all: true } : {})).leases;
  }

  // Who leases a port (any user may ask): {port, proto, leased, lease,
  // command}; another user's lease is shown in part.
  async who(port, proto) {
    const args = { port };
    if (proto !== undefined) args.proto = proto;
    const r = await this.request('who', args);
    delete r.ok;
    delete r.id;
    return r;
  }

  async status() {
    const r = await this.request('status');
    delete r.ok;
    delete r.id;
    return r;
  }

  // Closes the connection; its session-scoped leases end.
  close() {
    this._fail(new PortdError('io', 'client closed'));
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  Client.prototype[Symbol.asyncDispose] = async function () {
    this.close();
  };
}

function leaseArgs(options) {
  if (options === null || typeof options !== 'object')
    throw new TypeError('lease options must be an object');
  const args = {};
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && !CLIENT_OPTIONS.includes(k)) args[k] = v;
  }
  if (args.fd)
    throw new PortdError('invalid', 'fd handoff (fd: true) needs SCM_RIGHTS, which Node ' +
      'cannot receive from a Unix socket; use co-bind (the default shared hold) or claim()');
  return args;
}

// A connected client, after the hello version check.
async function connect(options = {}) {
  const timeout = checkTimeout(options.timeout);
  const { socket, path: sockPath, source } = await discover(options);
  const c = new Client(socket, sockPath, source, timeout);
  try {
    await c.hello();
  } catch (err) {
    c.close();
    throw err;
  }
  return c;
}

// One shared connection per discovery setting, for lease() and getPort().
// Never keeps the event loop alive; a dead one is replaced on next use.
const shared = new Map();

function sharedKey(options) {
  return JSON.stringify([options.socket ?? '', options.autostart !== false,
    options.timeout ?? DEFAULT_TIMEOUT_MS]);
}

function sharedClient(options) {
  const key = sharedKey(options);
  const have = shared.get(key);
  if (have !== undefined) {
    return have.then((c) => {
      if (!c.closed) return c;
      if (shared.get(key) === have) shared.delete(key);
      return sharedClient(options);
    });
  }
  const p = connect(options);
  shared.set(key, p);
  p.catch(() => { if (shared.get(key) === p) shared.delete(key); });
  return p;
}

// Lease ports on the process's shared connection. The default scope is
// process: the lease ends at release() or when this process exits (as the
// Python client's portd.lease()).
async function lease(options = {}) {
  const args = { scope: 'process', ...leaseArgs(options) };
  const c = await sharedClient(options);
  return new Lease(c, (await c.request('lease', args)).lease);
}

// getPort(): get-port's contract, race-free. Ports handed out here are
// held (shared, so the caller's server co-binds) until releasePorts() or
// the end of the process.
const held = new Map(); // port -> Lease

function portArg(p, what) {
  if (!Number.isInteger(p) || p < 0 || p > 65535)
    throw new TypeError(`${what} must be an integer port number 0-65535, not ${String(p)}`);
  return p;
}

async function getPort(options = {}) {
  if (options === null || typeof options !== 'object')
    throw new TypeError('getPort options must be an object');
  const { port, exclude, host, name, ...rest } = options;
  void host; // portd holds the wildcard addresses, which cover every host
  const excluded = new Set();
  if (exclude !== undefined) {
    if (exclude === null || typeof exclude[Symbol.iterator] !== 'function')
      throw new TypeError('exclude must be an iterable of port numbers');
    for (const p of exclude) excluded.add(portArg(p, 'an excluded port'));
  }
  let preferred = [];
  if (typeof port === 'number') preferred = [port];
  else if (port !== undefined) {
    if (port === null || typeof port[Symbol.iterator] !== 'function')
      throw new TypeError('port must be a number or an iterable of numbers');
    preferred = port;
  }
  const args = leaseArgs({ scope: 'session', name: name ?? 'getPort', ...rest });
  delete args.port;
  const c = await sharedClient(options);
  const keep = (l) => { held.set(l.port, l); return l.port; };

  for (const p of preferred) {
    if (portArg(p, 'a preferred port') === 0 || excluded.has(p)) continue;
    try {
      return keep(new Lease(c, (await c.request('lease', { ...args, port: p })).lease));
    } catch (err) {
      if (!(err instanceof PortdError && err.code === 'port_unavailable')) throw err;
    }
  }
  // Any port. Excluded ones that come back are held aside until a good one
  // comes, so each try gets a new port; then they go back.
  const aside = [];
  try {
    for (;;) {
      const l = new Lease(c, (await c.request('lease', args)).lease);
      if (!l.ports.some((p) => excluded.has(p))) return keep(l);
      aside.push(l);
    }
  } finally {
    await Promise.allSettled(aside.map((l) => l.release()));
  }
}

// Gives back every port getPort() handed out in this process.
async function releasePorts() {
  const leases = [...held.values()];
  held.clear();
  await Promise.allSettled(leases.map((l) => l.release()));
}

// get-port's portNumbers(from, to): the preferred ports from..to, lazily.
function portNumbers(from, to) {
  if (!Number.isInteger(from) || !Number.isInteger(to))
    throw new TypeError('`from` and `to` must be integer numbers');
  if (from < 1024 || from > 65535) throw new RangeError('`from` must be between 1024 and 65535');
  if (to < 1024 || to > 65535) throw new RangeError('`to` must be between 1024 and 65535');
  if (to < from) throw new RangeError('`to` must be greater than or equal to `from`');
  return (function* () {
    for (let p = from; p <= to; p++) yield p;
  })();
}

module.exports = {
  PROTOCOL_VERSION,
  PortdError,
  Client,
  Lease,
  connect,
  lease,
  getPort,
  portNumbers,
  releasePorts,
  clearLockedPorts: releasePorts,
  socketPaths,
  default: getPort,
};
