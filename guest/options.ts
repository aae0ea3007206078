// The runner's command line (or its AGENTLAB_* environment), and the files it keeps its state in.
import * as path from 'node:path';

export interface RunnerOptions {
  bootstrap: string;
  stateDir: string;
  workDir: string;
  /** Credentials belong on a tmpfs (the sandbox's /run/agentlab/secrets); without one, the state dir. */
  secretsDir: string;
  agentUser: string | undefined;
  exitWhenDone: boolean;
}

export function parseArgs(argv: string[]): RunnerOptions {
  const options = {
    bootstrap: process.env.AGENTLAB_BOOTSTRAP,
    stateDir: process.env.AGENTLAB_STATE_DIR,
    workDir: process.env.AGENTLAB_WORK_DIR,
    secretsDir: process.env.AGENTLAB_SECRETS_DIR,
    agentUser: process.env.AGENTLAB_AGENT_USER,
    exitWhenDone: false,
  };
  const valueOf = (flag: string, i: number): string => {
    const value = argv[i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--exit-when-done') options.exitWhenDone = true;
    else if (arg === '--bootstrap') options.bootstrap = valueOf(arg, ++i);
    else if (arg === '--state-dir') options.stateDir = valueOf(arg, ++i);
    else if (arg === '--work-dir') options.workDir = valueOf(arg, ++i);
    else if (arg === '--secrets-dir') options.secretsDir = valueOf(arg, ++i);
    else if (arg === '--agent-user') options.agentUser = valueOf(arg, ++i);
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!options.bootstrap) throw new Error('--bootstrap (or AGENTLAB_BOOTSTRAP) is required');
  if (!options.stateDir) throw new Error('--state-dir (or AGENTLAB_STATE_DIR) is required');
  if (!options.workDir) throw new Error('--work-dir (or AGENTLAB_WORK_DIR) is required');
  return {
    ...options,
    bootstrap: options.bootstrap,
    stateDir: options.stateDir,
    workDir: options.workDir,
    secretsDir: options.secretsDir || options.stateDir,
  };
}

/** Every file the runner keeps: the claim on the secrets tmpfs, the rest in the state dir. */
export function stateFiles(options: RunnerOptions) {
  const state = (name: string): string => path.join(options.stateDir, name);
  return {
    claim: path.join(options.secretsDir, 'claim.json'),
    claimCredential: path.join(options.secretsDir, 'claim-credential'),
    task: state('task.txt'),
    log: state('agent.log'),
    agent: state('agent.json'), // written before the agent starts: it must never start twice
    agentPid: state('agent.pid'),
    agentExit: state('agent.exit'),
    agentExitPending: state('agent.exit.pending'),
    patch: state('changes.patch'),
    report: state('report.json'),
    result: state('result.json'),
    reported: state('result.reported'),
  };
}

export type StateFiles = ReturnType<typeof stateFiles>;
