// Type declarations of the portd client for import: those of index.d.ts, as
// index.mjs re-exports index.js, so one declaration serves both and its
// classes are the same for import and require. The default export is
// getPort, as it is at run time (not module.exports, which an ES module's
// default import of CommonJS would be).
export * from './index.js';
export { getPort as default } from './index.js';
