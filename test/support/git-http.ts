// A git smart-HTTP server on loopback (real `git http-backend` as CGI) that demands HTTP Basic auth:
// proof that a job's git token reaches git through the runner's askpass, and nowhere else.
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export class GitHttpServer {
  private server?: Server;
  port = 0;
  /** Requests refused for missing or wrong credentials, and requests served. */
  refused = 0;
  served = 0;

  constructor(
    private readonly projectRoot: string,
    private readonly credentials: { username: string; password: string },
  ) {}

  url(repo: string): string {
    return `http://127.0.0.1:${this.port}/${repo}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private authorized(req: IncomingMessage): boolean {
    const match = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (!match) return false;
    const expected = `${this.credentials.username}:${this.credentials.password}`;
    return Buffer.from(match[1]!, 'base64').toString('utf8') === expected;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.authorized(req)) {
      this.refused++;
      req.resume();
      res.writeHead(401, { 'www-authenticate': 'Basic realm="agentlab-test"' });
      return void res.end();
    }
    this.served++;
    const url = new URL(req.url ?? '/', 'http://git');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: this.projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method,
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_USER: this.credentials.username,
        REMOTE_ADDR: req.socket.remoteAddress ?? '',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((resolve) => cgi.on('close', resolve));
    const output = Buffer.concat(chunks);
    const split = output.indexOf('\r\n\r\n');
    const headerEnd = split === -1 ? output.indexOf('\n\n') : split;
    const separator = split === -1 ? 2 : 4;
    const headerText = output.subarray(0, headerEnd).toString('latin1');
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of headerText.split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon === -1) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'status') status = Number(value.split(' ')[0]);
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    res.end(output.subarray(headerEnd + separator));
  }
}
