// The rules for the git inputs of a job — repository URL and ref — in one place: the CLI, the workflow's
// start and the guest runner (which ships its compiled copy beside itself) all check them with these functions.
/** Whitespace or control characters: never part of a URL or ref we would pass on. */
const hasUnsafeChars = (text: string): boolean =>
  /\s/.test(text) || [...text].some((c) => c.charCodeAt(0) < 0x20 || c === '\x7f');

const isLoopbackHost = (host: string): boolean =>
  host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** A path on the host: absolute, or a file:// URL. Only the local backend takes these. */
export const isLocalRepo = (repo: string): boolean => repo.startsWith('/') || /^file:\/\//i.test(repo);

/**
 * A ref as `git check-ref-format --allow-onelevel` accepts it (branch, tag, full ref name, or a commit
 * id), and never an option or a refspec. Returns why not, or undefined.
 */
export function refProblem(ref: unknown): string | undefined {
  if (typeof ref !== 'string' || ref === '') return 'must not be empty';
  const shown = JSON.stringify(ref);
  if (ref.length > 250) return `${shown} is longer than 250 characters`;
  if (ref.startsWith('-')) return `${shown} looks like a command-line option`;
  if (hasUnsafeChars(ref)) return `${shown} contains whitespace or control characters`;
  const bad = /[~^:?*[\\]/.exec(ref);
  if (bad) return `${shown} contains "${bad[0]}", which git does not allow in a ref`;
  if (ref.includes('..')) return `${shown} contains "..", which git does not allow in a ref`;
  if (ref.includes('@{')) return `${shown} contains "@{", which git does not allow in a ref`;
  if (ref === '@') return '"@" is not a valid ref';
  if (ref.startsWith('/') || ref.endsWith('/') || ref.includes('//'))
    return `${shown} has an empty path component (a leading, trailing or doubled "/")`;
  if (ref.endsWith('.')) return `${shown} ends with "."`;
  for (const component of ref.split('/')) {
    if (component.startsWith('.')) return `${shown} has a component starting with "."`;
    if (component.endsWith('.lock')) return `${shown} has a component ending with ".lock"`;
  }
  return undefined;
}

/**
 * The URL with its user-info replaced by `***` when it carries credentials (a password, or any user
 * name over http(s), where tokens are passed as the user name); undefined when it carries none.
 */
export function credentialsIn(repo: string): string | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)@/i.exec(repo);
  if (!scheme) return undefined;
  const name = (scheme[1] ?? '').toLowerCase();
  const userInfo = scheme[2] ?? '';
  if (!userInfo.includes(':') && !['http', 'https'].includes(name)) return undefined; // ssh://git@host/…
  return `${repo.slice(0, scheme[0].length - userInfo.length - 1)}***@${repo.slice(scheme[0].length)}`;
}

/**
 * Allowlisted clone sources: https, ssh, git and scp-like `user@host:path` always; an absolute path or
 * file:// URL only with `allowLocal`; plain http only to a loopback host with `allowLoopbackHttp`. Never
 * a remote helper (`ext::`), an option, or credentials in the URL. Returns why not, or undefined.
 */
export function repoUrlProblem(
  repo: unknown,
  options: { allowLocal?: boolean; allowLoopbackHttp?: boolean } = {},
): string | undefined {
  if (typeof repo !== 'string' || repo.trim() === '') return 'must not be empty';
  const shown = JSON.stringify(repo);
  if (repo.startsWith('-')) return `${shown} looks like a command-line option, not a git URL`;
  const helper = /^([a-z][a-z0-9+.-]*)::/i.exec(repo);
  if (helper) return `${shown} uses the git remote helper "${helper[1]}::", which is not allowed`;
  if (hasUnsafeChars(repo)) return `${shown} contains whitespace or control characters`;
  const redacted = credentialsIn(repo);
  if (redacted !== undefined) {
    return (
      `${JSON.stringify(redacted)} carries credentials, which would be stored in the job's history: give the URL ` +
      'without them and store the credential with `agentlab secrets set-git --bundle <name> --token-file <file>`'
    );
  }
  const local = `the local repository ${shown} needs a local-backend profile`;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(repo);
  if (scheme) {
    const name = (scheme[1] ?? '').toLowerCase();
    if (name === 'file') return options.allowLocal ? undefined : local;
    let url: URL;
    try {
      url = new URL(repo);
    } catch {
      return `${shown} is not a valid URL`;
    }
    if (name === 'http' && options.allowLoopbackHttp && isLoopbackHost(url.hostname)) return undefined;
    if (!['https', 'ssh', 'git'].includes(name)) return `${shown}: the scheme "${name}://" is not allowed`;
    // A host starting with "-" would reach ssh as an option.
    if (!/^[a-z0-9[]/i.test(url.hostname)) return `${shown} has an invalid host`;
    if (url.pathname.length <= 1) return `${shown} names no repository path`;
    return undefined;
  }
  if (repo.startsWith('/')) return options.allowLocal ? undefined : local;
  // scp-like user@host:path, which git hands to ssh: neither user nor host may start with "-".
  if (/^[a-z0-9_][a-z0-9._-]*@[a-z0-9][a-z0-9.-]*:.+$/i.test(repo)) return undefined;
  return `${shown} is not a git URL: expected https://, ssh://, git://, user@host:path, or a local path`;
}

/** A full commit id, as the CLI pins a local repository's ref. */
export const isCommitId = (value: unknown): value is string =>
  typeof value === 'string' && /^[0-9a-f]{40}$/.test(value);
