#!/usr/bin/env node
// The kvmp command. The program is compiled TypeScript: run `pnpm build` (or `npx tsc -b`) first.
import { main } from '../dist/src/cli/program.js';

main().catch((err) => {
  process.stderr.write(`kvmp: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
