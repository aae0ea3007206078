// Storage endpoints: a storage's content (the VM volumes, snippets and uploads on it) and uploads (pve-storage
// API2/Storage/Content.pm index, API2/Storage/Status.pm upload).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Access, type Route, type RouteContext } from './access';
import { drives, runVolumeStep } from './drives';
import { paramError, SimHttpError } from './errors';
import { sizeBytes } from './power';
import type { SimState } from './state';
import { volumeFormat, type SimStorage } from './storage';

/** A file a client uploaded (multipart), as server.ts hands it over in `tmpfilename`. */
export interface Upload {
  name: string;
  size: number;
}

const EXTENSIONS: Record<string, RegExp> = {
  iso: /[^/]+\.(?:iso|img)$/i,
  vztmpl: /[^/]+\.tar\.(?:gz|xz|zst|bz2)$/i,
  import: /^[-a-zA-Z0-9_.+=]+\.(ova|ovf|qcow2|raw|vmdk)$/,
};

export function createStorageRoutes(
  state: SimState,
  options: { snippetsDir?: string; uploads: Map<string, Upload> },
): Route[] {
  const access = new Access(state);
  /** Volumes and files made through the API, per node and storage: `<node>/<storage>` → volid → what it is. */
  const files = new Map<string, Map<string, { size: number; ctime: number; content: string; vmid?: number }>>();
  const keep = (
    node: string,
    storage: SimStorage,
    volid: string,
    entry: { size: number; content: string; vmid?: number },
  ) => {
    const key = `${node}/${storage.id}`;
    files.set(key, (files.get(key) ?? new Map()).set(volid, { ...entry, ctime: Math.floor(Date.now() / 1000) }));
  };

  function storageOf(id: string): SimStorage {
    const storage = state.storage(id);
    if (!storage) throw new SimHttpError(500, `storage '${id}' does not exist`);
    return storage;
  }

  function content({ node, params }: RouteContext) {
    const storage = storageOf(params.storage!);
    const types = params.content ? [params.content].filter((c) => storage.content.includes(c)) : storage.content;
    const rows: Record<string, unknown>[] = [];
    if (types.includes('images')) {
      for (const vm of state.vms.values()) {
        if (vm.node !== node || (params.vmid && vm.vmid !== Number(params.vmid))) continue;
        for (const drive of drives(state, vm.config).filter((d) => d.storage.id === storage.id)) {
          const parent = vm.linkedTo?.find((base) => base.startsWith(`${storage.id}:`));
          rows.push({
            volid: `${storage.id}:${drive.volname}`,
            content: 'images',
            format: volumeFormat(storage, drive.volname),
            size: drive.cloudinit ? 4 * 1024 ** 2 : sizeBytes(drive.values.size),
            vmid: vm.vmid,
            ...(parent ? { parent: parent.split(':')[1] } : {}),
          });
        }
      }
    }
    if (types.includes('snippets') && storage.id === 'local' && options.snippetsDir && !params.vmid) {
      for (const name of safeList(options.snippetsDir)) {
        const stat = statSync(join(options.snippetsDir, name));
        rows.push({
          volid: `local:snippets/${name}`,
          content: 'snippets',
          format: 'snippet',
          size: stat.size,
          ctime: Math.floor(stat.mtimeMs / 1000),
        });
      }
    }
    for (const [volid, file] of files.get(`${node}/${storage.id}`) ?? []) {
      if (!types.includes(file.content) || (params.vmid && file.vmid !== Number(params.vmid))) continue;
      const format =
        file.content === 'images'
          ? volumeFormat(storage, volid)
          : file.content === 'iso'
            ? 'iso'
            : volid.split('.').pop();
      rows.push({
        volid,
        content: file.content,
        format,
        size: file.size,
        ctime: file.ctime,
        ...(file.vmid ? { vmid: file.vmid } : {}),
      });
    }
    return rows.sort((a, b) => String(a.volid).toLowerCase().localeCompare(String(b.volid).toLowerCase()));
  }

  function upload({ node, params, user }: RouteContext): string {
    const storage = storageOf(params.storage!);
    if (storage.type !== 'dir') throw new SimHttpError(500, `can't upload to storage type '${storage.type}'`);
    const file = params.tmpfilename ? options.uploads.get(params.tmpfilename) : undefined;
    if (!params.tmpfilename) throw new SimHttpError(500, 'missing temporary file name');
    if (!file) throw new SimHttpError(500, `temporary file '${params.tmpfilename}' does not exist`);
    const kind = params.content!;
    const pattern = EXTENSIONS[kind];
    if (!pattern) throw paramError({ content: `upload content type '${kind}' not allowed` });
    if (!pattern.test(params.filename!)) {
      throw paramError({
        filename: kind === 'import' ? 'invalid filename or wrong extension' : 'wrong file extension',
      });
    }
    if (!storage.content.includes(kind))
      throw new SimHttpError(500, `storage '${storage.id}' does not support '${kind}' content`);
    return access.task(node, 'imgcopy', '', user, async (task) => {
      task.log(`starting file import from: ${params.tmpfilename}`);
      await task.sleep(Math.min(2000, file.size / 100_000));
      keep(node, storage, `${storage.id}:${kind}/${params.filename}`, { size: file.size, content: kind });
      options.uploads.delete(params.tmpfilename!);
    });
  }

  /** Content.pm create: vdisk_alloc of a named volume, under the storage's lock; answers with its volid. */
  async function allocate({ node, params }: RouteContext): Promise<string> {
    const storage = storageOf(params.storage!);
    const m = /^(\d+)([MG])?$/.exec(params.size!);
    if (!m) throw paramError({ size: `unable to parse size '${params.size}'` });
    const kib = Number(m[1]) * (m[2] === 'G' ? 1024 ** 2 : m[2] === 'M' ? 1024 : 1);
    const named = /\.(raw|qcow2|vmdk)$/.exec(params.filename!)?.[1];
    if (named && params.format && params.format !== named) {
      throw paramError({ format: `different storage formats (${params.format} != ${named})` });
    }
    const format = named ?? params.format ?? (storage.type === 'dir' ? 'qcow2' : 'raw');
    const vmid = Number(params.vmid);
    if (storage.type !== 'dir' && format !== 'raw') throw new SimHttpError(500, `unsupported format '${format}'`);
    if (!params.filename!.startsWith(`vm-${vmid}-`)) {
      throw new SimHttpError(500, `illegal name '${params.filename}' - should be 'vm-${vmid}-*'`);
    }
    await runVolumeStep(state, node, storage, 'vdisk_alloc', state.latency.storageSteps[storage.type].allocImageMs);
    const volid = `${storage.id}:${storage.type === 'dir' ? `${vmid}/` : ''}${params.filename}`;
    keep(node, storage, volid, { size: kib * 1024, content: 'images', vmid });
    return volid;
  }

  return [
    { method: 'GET', path: '/nodes/{node}/storage/{storage}/content', handler: content },
    { method: 'POST', path: '/nodes/{node}/storage/{storage}/content', handler: allocate },
    { method: 'POST', path: '/nodes/{node}/storage/{storage}/upload', handler: upload },
  ];
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => !name.includes('.tmp-'));
  } catch {
    return [];
  }
}
