// A TLS gRPC proxy that reads each call's headers, as Temporal Cloud's front door does: a call without
// `authorization: Bearer <key>` gets UNAUTHENTICATED, the others are forwarded to the plain dev server.
import { readFileSync } from 'node:fs';
import {
  connect,
  constants,
  createSecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TestPki } from './tls-proxy';

export interface GrpcAuthProxy {
  address: string;
  /** The authorization header of every call, as received (undefined: none). */
  authorizations: (string | undefined)[];
  close(): Promise<void>;
}

const UNAUTHENTICATED = '16';

function forward(upstream: ReturnType<typeof connect>, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const { ':authority': _authority, ':scheme': _scheme, ...rest } = headers;
  const call = upstream.request(rest);
  let trailers: IncomingHttpHeaders = {};
  call.on('response', (responseHeaders) => {
    if (stream.destroyed) return; // the caller gave up (a cancelled long poll)
    // A trailers-only answer (an error) ends with its headers; the others end with trailers after the body.
    if (responseHeaders['grpc-status'] !== undefined) return stream.respond(responseHeaders, { endStream: true });
    stream.respond(responseHeaders, { waitForTrailers: true });
    call.pipe(stream);
  });
  call.on('trailers', (received) => (trailers = received));
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  stream.pipe(call);
  call.on('error', () => !stream.destroyed && stream.close(constants.NGHTTP2_INTERNAL_ERROR));
  stream.on('close', () => !call.destroyed && call.close(constants.NGHTTP2_CANCEL));
  stream.on('error', () => undefined); // its close follows
}

export async function startGrpcAuthProxy(pki: TestPki, target: string, apiKey: string): Promise<GrpcAuthProxy> {
  const authorizations: (string | undefined)[] = [];
  const upstream = connect(`http://${target}`);
  upstream.on('error', () => undefined); // each call reports its own failure
  const server = createSecureServer({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert) });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const authorization = headers.authorization;
    authorizations.push(authorization);
    if (authorization !== `Bearer ${apiKey}`) {
      const refusal = { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': UNAUTHENTICATED };
      return stream.respond({ ...refusal, 'grpc-message': 'API key not valid' }, { endStream: true });
    }
    forward(upstream, stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    authorizations,
    close: () =>
      new Promise<void>((resolve) => {
        upstream.destroy();
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}
