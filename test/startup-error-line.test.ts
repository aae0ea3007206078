// What `agentlab up` quotes when a process of the stack exits while starting: the line of its log that
// says why, in the shapes the worker (pino JSON, or Node's printed error) and the Temporal CLI write,
// and the port it names when that port is in use.
import { portInUse } from '../cli/port-holder';
import { errorLine } from '../cli/stack-process';

describe('the error line of a start-up log', () => {
  test('a pino error line: its err.message, else its msg; info lines are not errors', () => {
    const info = JSON.stringify({ level: 30, msg: 'worker starting' });
    const withErr = JSON.stringify({ level: 50, msg: 'failed', err: { message: 'bwrap is not installed' } });
    expect(errorLine([info, withErr, info].join('\n'))).toBe('bwrap is not installed');
    expect(errorLine(JSON.stringify({ level: 60, msg: 'cannot listen' }))).toBe('cannot listen');
  });

  test("Node's printed error, stack and properties after it", () => {
    const printed = [
      'Error: listen EADDRINUSE: address already in use 127.0.0.1:8844',
      '    at Server.setupListenHandle [as _listen2] (node:net:1817:16)',
      "  code: 'EADDRINUSE',",
      '}',
    ].join('\n');
    expect(errorLine(printed)).toBe('listen EADDRINUSE: address already in use 127.0.0.1:8844');
    expect(errorLine('PermanentBackendError: bwrap is not installed\n    at prepareHost')).toBe(
      'bwrap is not installed',
    );
  });

  test('the last error wins over earlier ones; with none, the last line', () => {
    const earlier = JSON.stringify({ level: 50, msg: 'connection refused, retrying' });
    expect(errorLine(`${earlier}\nError: can't set UI port 8233: address already in use\n`)).toBe(
      "can't set UI port 8233: address already in use",
    );
    expect(errorLine('starting\nsomething odd happened\n\n')).toBe('something odd happened');
    expect(errorLine('')).toBeUndefined();
  });
});

describe('the port an "in use" error names', () => {
  test("Go's and Node's wording; other errors name none", () => {
    expect(portInUse("can't set frontend port 7233: listen tcp 127.0.0.1:7233: bind: address already in use")).toBe(
      7233,
    );
    expect(portInUse('listen EADDRINUSE: address already in use [::1]:8844')).toBe(8844);
    expect(portInUse('connect ECONNREFUSED 127.0.0.1:7233')).toBeUndefined();
  });
});
