// Task endpoints as pve-manager's API2/Tasks.pm serves them: the node's task list, a task's index, status and
// log (paged by start/limit, "no content" for an empty one), and DELETE to stop it.
import { Envelope, type Route, type RouteContext } from './access';
import { paramError } from './errors';
import type { SimState } from './state';
import type { SimTask } from './tasks';

const UPID = /^UPID:[^:]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:[^:\s/]+:[^:\s/]*:[^:\s/]+:$/i;

/** convert_token_task: `user@realm!token` becomes the user plus a `tokenid` key. */
function userFields(task: SimTask): { user: string; tokenid?: string } {
  const [user, tokenid] = task.user.split('!');
  return { user: user!, ...(tokenid ? { tokenid } : {}) };
}

/** A row of the task lists: finished tasks carry endtime and status (its exitstatus), running ones RUNNING. */
export function taskEntry(task: SimTask): Record<string, unknown> {
  const { upid, node, pid, pstart, starttime, type, id } = task;
  const done = task.status === 'stopped' ? { endtime: task.endtime, status: task.exitstatus } : { status: 'RUNNING' };
  return { upid, node, pid, pstart, starttime, type, id, ...userFields(task), ...done };
}

/** upid_normalize_status_type. */
function statusType(status: string | undefined): string {
  if (status === 'OK') return 'ok';
  if (status === undefined || status === 'RUNNING') return 'unknown';
  if (/^WARNINGS: \d+$/.test(status)) return 'warning';
  return 'error';
}

export function createTaskRoutes(state: SimState): Route[] {
  function parse(ctx: RouteContext): SimTask | undefined {
    const upid = ctx.params.upid!;
    if (!UPID.test(upid)) throw paramError({ upid: 'unable to parse worker upid' });
    const task = state.tasks.get(upid);
    // A task's file lives on the node that ran it: asked elsewhere, it does not exist.
    return task && task.node === ctx.params.node ? task : undefined;
  }

  function list({ node, params }: RouteContext) {
    const start = Number(params.start ?? 0);
    let limit = Number(params.limit ?? 50);
    const errors = params.errors === '1';
    const source = params.source ?? 'archive';
    let wanted = new Set(['ok', 'warning', 'error', 'unknown']);
    if (params.statusfilter !== undefined && !errors) {
      wanted = new Set(
        params.statusfilter
          .split(/[,; ]/)
          .filter(Boolean)
          .map((s) => s.toLowerCase()),
      );
    } else if (errors) wanted.delete('ok');
    let count = 0;
    const rows: Record<string, unknown>[] = [];
    const consider = (task: SimTask) => {
      const entry = taskEntry(task);
      if (params.userfilter && !String(entry.user).toLowerCase().includes(params.userfilter.toLowerCase())) return;
      if (params.typefilter && task.type !== params.typefilter) return;
      if (params.vmid && task.id !== params.vmid) return;
      if (params.since !== undefined && task.starttime < Number(params.since)) return;
      if (params.until !== undefined && task.starttime > Number(params.until)) return;
      if (!wanted.has(statusType(entry.status as string))) return;
      if (count++ < start || limit <= 0) return;
      rows.push(entry);
      limit--;
    };
    const tasks = state.tasks.list().filter((t) => t.node === node);
    if (source === 'active' || source === 'all') tasks.filter((t) => t.status === 'running').forEach(consider);
    // The archive (tasks/index) is read backwards: newest first.
    if (source !== 'active')
      tasks
        .filter((t) => t.status === 'stopped')
        .reverse()
        .forEach(consider);
    return new Envelope(rows, { total: count });
  }

  function status(ctx: RouteContext) {
    const task = parse(ctx);
    if (!task) throw paramError({ upid: 'no such task' });
    const { upid, node, pid, pstart, starttime, type, id } = task;
    return {
      upid,
      node,
      pid,
      pstart,
      starttime,
      type,
      id,
      ...userFields(task),
      status: task.status,
      ...(task.exitstatus !== undefined ? { exitstatus: task.exitstatus } : {}),
    };
  }

  /** dump_logfile: lines numbered from 1, start/limit (0 = all), and one "no content" line for an empty log. */
  function log(ctx: RouteContext) {
    const task = parse(ctx);
    if (!task) return new Envelope({ n: 1, t: 'unable to open file - No such file or directory' }, { total: 1 });
    const start = Number(ctx.params.start ?? 0);
    const limit = Number(ctx.params.limit ?? 50);
    const lines = task.log.map((t, i) => ({ n: i + 1, t })).slice(start, limit === 0 ? undefined : start + limit);
    if (task.log.length === 0) return new Envelope([{ n: 1, t: 'no content' }], { total: 1 });
    return new Envelope(lines, { total: task.log.length });
  }

  function stop(ctx: RouteContext): null {
    const task = parse(ctx);
    if (!task) throw paramError({ upid: 'no such task' });
    if (task.status === 'running') task.abort.abort();
    return null;
  }

  return [
    { method: 'GET', path: '/nodes/{node}/tasks', handler: list },
    { method: 'GET', path: '/nodes/{node}/tasks/{upid}', handler: () => [{ name: 'log' }, { name: 'status' }] },
    { method: 'DELETE', path: '/nodes/{node}/tasks/{upid}', handler: stop },
    { method: 'GET', path: '/nodes/{node}/tasks/{upid}/status', handler: status },
    { method: 'GET', path: '/nodes/{node}/tasks/{upid}/log', handler: log },
  ];
}
