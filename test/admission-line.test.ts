// The admission line's rules and the capacity config, without a server: the workflow and the worker use these.
import { cpus, totalmem } from 'node:os';
import { parseConfig } from '../common/config';
import { AdmissionLine } from '../workflows/admission-line';

const slot = (holder: string, cores = 2, memoryMb = 1024) => ({ holder, cores, memoryMb });

describe('the admission line', () => {
  test('first come, first served: the head waits for room, nobody overtakes it', () => {
    const line = new AdmissionLine({ cores: 4, memoryMb: 4096 });
    line.request(slot('a'), 1);
    line.request(slot('big', 4), 2);
    line.request(slot('small', 1), 3);
    expect(line.admit(10).map((e) => e.holder)).toEqual(['a']);
    expect(line.view('n').waiting.map((e) => e.holder)).toEqual(['big', 'small']); // small fits, but waits its turn
    line.release('a');
    expect(line.admit(11).map((e) => e.holder)).toEqual(['big']);
    expect(line.used()).toEqual({ cores: 4, memoryMb: 1024 });
  });

  test('memory limits as well as cores', () => {
    const line = new AdmissionLine({ cores: 64, memoryMb: 2048 });
    for (const holder of ['a', 'b', 'c']) line.request(slot(holder), 0);
    expect(line.admit(0)).toHaveLength(2);
  });

  test('a repeated request keeps its place; one from a holder says so (its grant is sent again)', () => {
    const line = new AdmissionLine({ cores: 2, memoryMb: 4096 });
    expect(line.request(slot('a'), 0)).toBe('queued');
    line.request(slot('b'), 0);
    line.admit(0);
    expect(line.request(slot('a'), 1)).toBe('already-holding');
    expect(line.request(slot('b'), 1)).toBe('already-waiting');
    expect(line.view('n').waiting).toHaveLength(1);
  });

  test('release takes a job out of the line too, and unknown holders change nothing', () => {
    const line = new AdmissionLine({ cores: 2, memoryMb: 4096 }, { holding: [], waiting: [] });
    line.request(slot('a'), 0);
    line.admit(0);
    line.request(slot('b'), 0);
    line.request(slot('c'), 0);
    expect(line.release('b')).toBe(true);
    expect(line.release('nobody')).toBe(false);
    expect(line.view('n').waiting.map((e) => e.holder)).toEqual(['c']);
  });

  test('the state carried to a new run is the same line', () => {
    const line = new AdmissionLine({ cores: 2, memoryMb: 4096 });
    for (const holder of ['a', 'b', 'c']) line.request(slot(holder), 0);
    line.admit(0);
    const next = new AdmissionLine({ cores: 2, memoryMb: 4096 }, line.state());
    expect(next.view('n')).toEqual(line.view('n'));
    expect(next.canAdmit()).toBe(false);
  });
});

describe('worker.admission config', () => {
  const capacityOf = (admission: unknown) =>
    parseConfig({ worker: { admission } }, 'test.yaml').worker.admission.capacity;

  test("defaults to the machine's cores (overcommitted 4 times) and memory (not overcommitted)", () => {
    expect(capacityOf(undefined)).toEqual({
      cores: cpus().length * 4,
      memoryMb: Math.floor(totalmem() / 1024 / 1024),
    });
  });

  test('configured cores and memory times their overcommit factors', () => {
    expect(capacityOf({ cores: 8, memoryMb: 32768, cpuOvercommit: 2.5, memoryOvercommit: 1.5 })).toEqual({
      cores: 20,
      memoryMb: 49152,
    });
  });

  test('a bad value is a clear error naming the field', () => {
    expect(() => capacityOf({ cpuOvercommit: 0 })).toThrow(/test\.yaml: worker\.admission\.cpuOvercommit: /);
    expect(() => capacityOf({ memoryMb: '4G' })).toThrow(/worker\.admission\.memoryMb: .*number/);
    expect(() => capacityOf({ reclaimInterval: 'soon' })).toThrow(/worker\.admission\.reclaimInterval: /);
    expect(() => capacityOf({ slots: 3 })).toThrow(/worker\.admission: .*slots/);
  });
});
