// Type declarations of the portd client, hand-written. They are the ones
// for require; index.d.mts gives them to import, as index.mjs re-exports
// index.js.

/** The wire protocol version this client speaks (checked with `hello`). */
export declare const PROTOCOL_VERSION: 1;

/** The daemon's error codes, and the client's own. */
export type PortdErrorCode =
  | 'bad_request'
  | 'unknown_op'
  | 'request_too_large'
  | 'no_ports'
  | 'port_unavailable'
  | 'quota_exceeded'
  | 'not_found'
  | 'forbidden'
  | 'resource_exhausted'
  | 'internal'
  /** nothing answers at any socket of the discovery order */
  | 'no_daemon'
  /** no reply within the timeout; the connection is closed */
  | 'timeout'
  /** the reply broke the protocol; the connection is closed */
  | 'protocol'
  /** the daemon does not speak protocol version 1 */
  | 'version'
  /** the connection failed or was closed */
  | 'io'
  /** a request this client cannot make (fd handoff) */
  | 'invalid';

export declare class PortdError extends Error {
  readonly name: 'PortdError';
  /** Program against this, not the message. A daemon newer than this
   * client may send codes not listed in PortdErrorCode. */
  readonly code: PortdErrorCode | (string & {});
  /** The request's op, for the daemon's refusals. */
  readonly op?: string;
  /** With code 'no_daemon': each socket tried and why it failed. */
  readonly tried?: Array<{ path: string; source: SocketSource; error: string }>;
}

/** Which discovery step answered. */
export type SocketSource = 'explicit' | 'PORTD_SOCKET' | 'system' | 'user' | 'user-started';

export interface ClientOptions {
  /** Use this socket alone, never auto-started (else PORTD_SOCKET, else
   * the system socket, else the per-user one). */
  socket?: string;
  /** false: never start a per-user daemon (as PORTD_NO_AUTOSTART=1). Default true. */
  autostart?: boolean;
  /** Per request, in milliseconds; 0 for no limit. Default 5000. */
  timeout?: number;
}

export type Proto = 'tcp' | 'udp' | 'both';
export type Family = 'dual' | 'ipv4' | 'ipv6';
export type Hold = 'shared' | 'exclusive';
export type Scope = 'ttl' | 'session' | 'process';
export type Strategy = 'pool' | 'ephemeral';

/** The lease request's fields, as in the protocol (docs/protocol.md). */
export interface LeaseRequest {
  /** 1-64, default 1. */
  count?: number;
  proto?: Proto;
  family?: Family;
  /** A specific port (with count N: port ... port+N-1). */
  port?: number;
  contiguous?: boolean;
  hold?: Hold;
  /** Seconds. */
  ttl?: number;
  scope?: Scope;
  /** For scope 'process': the process whose exit ends the lease. */
  pid?: number;
  /** A label, at most 128 printable ASCII characters. */
  name?: string;
  strategy?: Strategy;
  /** Not supported: Node cannot receive descriptors (SCM_RIGHTS) from a
   * Unix socket. Passing true rejects with code 'invalid'. */
  fd?: false;
}

export interface LeaseOptions extends LeaseRequest, ClientOptions {}

/** The protocol's lease object. */
export interface LeaseInfo {
  id: string;
  ports: number[];
  proto: Proto;
  family: Family;
  ipv6: boolean;
  scope: Scope;
  hold: Hold;
  ttl: number | null;
  /** Unix milliseconds. */
  expires: number | null;
  /** Unix milliseconds. */
  created: number;
  name: string;
  owner: { uid: number; pid: number };
  held: boolean;
  /** held, claimed, or unheld (a restored lease whose port portd could not
   * bind again yet; reason says why). Absent from daemons before it. */
  state?: 'held' | 'claimed' | 'unheld';
  reason?: string;
}

export interface WhoReply {
  port: number;
  proto: Proto;
  leased: boolean;
  /** The whole lease for its owner and root, else its id, ports, proto,
   * name, owner, held and state. */
  lease?: Partial<LeaseInfo>;
  /** The owner's command line (its process name for other users), or null. */
  command?: string | null;
}

export declare class Lease implements LeaseInfo {
  private constructor();
  readonly id: string;
  readonly ports: number[];
  /** ports[0]. */
  readonly port: number;
  readonly proto: Proto;
  readonly family: Family;
  readonly ipv6: boolean;
  readonly scope: Scope;
  readonly hold: Hold;
  readonly ttl: number | null;
  readonly expires: number | null;
  readonly created: number;
  readonly name: string;
  readonly owner: { uid: number; pid: number };
  readonly held: boolean;
  readonly state?: 'held' | 'claimed' | 'unheld';
  readonly reason?: string;
  /** Ends the lease; resolves to its ports. */
  release(): Promise<number[]>;
  /** Resets the expiry to now + ttl seconds (default: the lease's TTL). */
  renew(ttl?: number): Promise<this>;
  /** portd closes its sockets (held: false); the ports stay leased. */
  claim(): Promise<this>;
  toJSON(): LeaseInfo;
  /** Releases the lease; one that ended already is not an error. */
  [Symbol.asyncDispose](): Promise<void>;
}

export interface ServerInfo {
  name: string;
  version: string;
}

export interface HelloReply {
  version: number;
  server: ServerInfo;
  pid: number;
  uid: number;
}

export interface Status {
  version: number;
  server: ServerInfo;
  pid: number;
  uptime: number;
  leases: number;
  ports: number;
  sockets: number;
  connections: number;
  pool: { lo: number; hi: number; size: number; free: number; strategy: Strategy };
  ipv6: boolean;
  counters: Record<string, number>;
  [field: string]: unknown;
}

export declare class Client {
  private constructor();
  /** The socket this client is connected to. */
  readonly socketPath: string;
  /** Which discovery step answered. */
  readonly source: SocketSource;
  /** From hello. */
  readonly server: ServerInfo;
  readonly daemonPid: number;
  /** This process's uid as the daemon sees it. */
  readonly uid: number;
  readonly closed: boolean;
  /** Sends one request; resolves to the reply (ok: true). */
  request(op: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
  hello(): Promise<HelloReply>;
  /** The default scope is 'session': the lease ends when this client closes. */
  lease(options?: LeaseRequest): Promise<Lease>;
  renew(id: string, ttl?: number): Promise<LeaseInfo>;
  claim(id: string): Promise<LeaseInfo>;
  /** A lease id, or any port of the lease. Resolves to the released ports. */
  release(idOrPort: string | number): Promise<number[]>;
  list(options?: { all?: boolean }): Promise<LeaseInfo[]>;
  /** Who leases a port (any user may ask). */
  who(port: number, proto?: Proto): Promise<WhoReply>;
  status(): Promise<Status>;
  /** Closes the connection; its session-scoped leases end. */
  close(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A client of its own (its session-scoped leases end with close()). Its
 * connection never keeps the event loop alive while no request is out. */
export declare function connect(options?: ClientOptions): Promise<Client>;

/** Leases ports on the process's shared connection. The default scope is
 * 'process': the lease ends at release() or when this process exits. */
export declare function lease(options?: LeaseOptions): Promise<Lease>;

export interface GetPortOptions extends ClientOptions, Omit<LeaseRequest, 'port' | 'count'> {
  /** Preferred ports: the first free one wins, else any. */
  port?: number | Iterable<number>;
  /** Ports never to return. */
  exclude?: Iterable<number>;
  /** Accepted for get-port compatibility; portd holds the wildcard
   * addresses, which cover every host. */
  host?: string;
}

/** get-port's contract, race-free: the port is held for the life of the
 * process (shared, so a server's listen() co-binds) or until releasePorts(). */
export declare function getPort(options?: GetPortOptions): Promise<number>;
export default getPort;

/** get-port's portNumbers(from, to): from..to, lazily (1024-65535). */
export declare function portNumbers(from: number, to: number): Iterable<number>;

/** Gives back every port getPort() handed out in this process. */
export declare function releasePorts(): Promise<void>;
/** get-port's name for releasePorts(). */
export declare function clearLockedPorts(): Promise<void>;

export interface SocketStep {
  path: string;
  source: SocketSource;
  autostart: boolean;
}

/** The discovery order for these options and the current environment. */
export declare function socketPaths(options?: ClientOptions): SocketStep[];
