// The seed's allowed-operations table, as both the workflow validators and the CLI read it.
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
});
