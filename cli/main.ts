#!/usr/bin/env node
// agentlab: the operator's CLI. The command tree is cli/program.ts; each command lives in cli/commands/.
import { runCli } from './program';

runCli(process.argv).catch((err) => {
  console.error(err);
  process.exit(1);
});
