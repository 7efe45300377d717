// ESM entry: the CommonJS implementation re-exported, so that `import` and
// `require` users in one process share its connection and held ports.
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
