// The seed's allowed-operations table, as both the workflow validators and the CLI read it.
import { accessRejection } from '../common/operator-access';
import { operationRejection, statesAllowing } from '../common/states';

describe('allowed operations', () => {
  test('renew only in RUNNING; start only in STOPPED; destroy in READY, RUNNING, STOPPED', () => {
    expect(statesAllowing('renew')).toEqual(['RUNNING']);
    expect(statesAllowing('start')).toEqual(['STOPPED']);
    expect(statesAllowing('destroy')).toEqual(['READY', 'RUNNING', 'STOPPED']);
  });

  test('a rejection names the state and where the operation is allowed', () => {
    expect(operationRejection('STOPPED', 'renew')).toBe(
      'cannot renew sandbox in state STOPPED: renew is allowed only in RUNNING',
    );
    expect(operationRejection('RUNNING', 'renew')).toBeUndefined();
  });

  test('--force unlocks destroy in TIMEOUT and FAILED, and says so when missing', () => {
    expect(operationRejection('TIMEOUT', 'destroy')).toContain('use --force');
    expect(operationRejection('TIMEOUT', 'destroy', { force: true })).toBeUndefined();
    expect(operationRejection('FAILED', 'destroy', { force: true })).toBeUndefined();
    expect(operationRejection('DESTROYED', 'destroy', { force: true })).toContain('cannot destroy');
    expect(operationRejection('FAILED', 'renew', { force: true })).toContain('cannot renew');
  });

  test('revert in READY, RUNNING and STOPPED only; while a job runs only with --force', () => {
    expect(statesAllowing('revert')).toEqual(['READY', 'RUNNING', 'STOPPED']);
    for (const state of ['REQUESTED', 'PROVISIONING', 'BOOTING', 'TIMEOUT', 'DESTROYED', 'FAILED'] as const) {
      expect(operationRejection(state, 'revert', { force: true })).toBe(
        `cannot revert sandbox in state ${state}: revert is allowed only in READY, RUNNING, STOPPED`,
      );
    }
    expect(operationRejection('RUNNING', 'revert')).toBeUndefined(); // a bare sandbox, or a finished job
    expect(operationRejection('RUNNING', 'revert', { jobRunning: true })).toBe(
      'cannot revert sandbox in state RUNNING while its job is RUNNING: the agent would lose its work; use --force to override',
    );
    expect(operationRejection('RUNNING', 'revert', { jobRunning: true, force: true })).toBeUndefined();
    // Only revert takes the job into account: stop and destroy of a running job stay as they were.
    expect(operationRejection('RUNNING', 'stop', { jobRunning: true })).toBeUndefined();
    expect(operationRejection('RUNNING', 'destroy', { jobRunning: true })).toBeUndefined();
  });

  test('user snapshots: save and restore in STOPPED, on a live sandbox only with --force', () => {
    expect(statesAllowing('snapshot')).toEqual(['STOPPED']);
    expect(statesAllowing('restore')).toEqual(['STOPPED']);
    for (const operation of ['snapshot', 'restore'] as const) {
      expect(operationRejection('RUNNING', operation)).toBe(
        `cannot ${operation} sandbox in state RUNNING: ${operation} is allowed only in STOPPED; use --force to override`,
      );
      expect(operationRejection('READY', operation, { force: true })).toBeUndefined();
      expect(operationRejection('RUNNING', operation, { force: true, jobRunning: true })).toBeUndefined();
      for (const state of ['PROVISIONING', 'BOOTING', 'TIMEOUT', 'FAILED', 'DESTROYED'] as const) {
        expect(operationRejection(state, operation, { force: true })).toContain(`cannot ${operation}`);
      }
    }
  });

  test('a person gets in (shell, ssh) only where the guest is up: READY and RUNNING', () => {
    for (const operation of ['shell', 'ssh'] as const) {
      expect(statesAllowing(operation)).toEqual(['READY', 'RUNNING']);
      expect(operationRejection('STOPPED', operation, { force: true })).toBe(
        `cannot ${operation} sandbox in state STOPPED: ${operation} is allowed only in READY, RUNNING`,
      );
    }
  });

  test('access: the right backend for the way in, shell from the sandbox host only, well-formed requests', () => {
    const local = { jobId: 'j1', state: 'RUNNING' as const, backend: 'local' as const, node: 'h1' };
    const vm = { ...local, backend: 'proxmox' as const };
    const shell = { kind: 'shell' as const, user: 'alice', host: 'laptop', node: 'h1' };
    const ssh = { ...shell, kind: 'ssh' as const, node: 'elsewhere' };
    expect(accessRejection(local, shell)).toBeUndefined();
    expect(accessRejection(vm, ssh)).toBeUndefined(); // ssh goes over the network: from any node
    expect(accessRejection({ ...vm, backend: 'qemu' }, ssh)).toMatch(
      /runs on the qemu backend, which has no `sandbox ssh` yet/,
    );
    expect(accessRejection(local, { ...shell, node: 'h2' })).toBe(
      'sandbox of job j1 runs on node h1: `sandbox shell` enters its namespaces from that host only (this CLI is on node h2)',
    );
    expect(accessRejection(vm, shell)).toContain('use `agentlab sandbox ssh j1`');
    expect(accessRejection(local, ssh)).toBe(
      'sandbox of job j1 runs on the local backend, which has no sshd: use `agentlab sandbox shell j1` on its host h1',
    );
    expect(accessRejection(local, { ...shell, kind: 'telnet' as 'shell' })).toBe(
      'kind: expected one of shell, ssh, got "telnet"',
    );
    expect(accessRejection(local, { ...shell, user: '' })).toBe('user: expected a non-empty string');
  });
});
