import * as nodeAdapter from 'comlink/dist/umd/node-adapter.js';

/**
 * comlink's node adapter is CJS (`module.exports = fn`) but typed `export default`; under
 * NodeNext the runtime function is the namespace's `default` while TS thinks it is
 * `default.default`. This re-types it once (see shared/research ecosystem.md §4b).
 */
export const nodeEndpoint = nodeAdapter.default as unknown as typeof nodeAdapter.default.default;
