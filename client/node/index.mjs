// ESM entry: the CommonJS implementation re-exported, so that `import` and
// `require` users in one process share its connection and held ports. The
// names are listed, not `export *`-ed: Node 23 and later give a CommonJS
// module's namespace a 'module.exports' name too, which `export *` would
// add to this module's names.
import portd from './index.js';

export const {
  PROTOCOL_VERSION,
  PortdError,
  Client,
  Lease,
  connect,
  lease,
  getPort,
  portNumbers,
  releasePorts,
  clearLockedPorts,
  socketPaths,
} = portd;
export default portd.getPort;
