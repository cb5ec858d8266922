// Test OAuth 2.0 authorization server for ccgate integration tests.
//
// A thin wrapper around the `oidc-provider` package that only does the
// client credentials grant (RFC 6749 §4.4) with a fixed set of clients, plus a
// small instrumentation API under /__test/ (counters, delay and failure
// injection). See README.md for the full contract.
//
// Usage: node server.js [--ttl SECONDS] [--tls-cert FILE --tls-key FILE
//                        [--client-ca FILE]] [--alg ES256|RS256] [--port N]
//                        [--bench-clients N] [--verbose]
//
// Contract with the test harness:
//   * stdout carries exactly ONE line, a JSON object with issuer,
//     introspection_endpoint, jwks_uri,
//     token_endpoint and port, printed once the server is listening.
//     Everything else (warnings, logs) goes to stderr.
//   * exits when stdin (if it is a pipe) reaches EOF, and on SIGTERM/SIGINT.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as querystring from 'node:querystring';

// Anything that libraries print with console.log/console.info (oidc-provider
// prints its "NOTICE"s with console.info) must not reach stdout, which is
// reserved for the single JSON line. Redirect them to stderr *before* loading
// oidc-provider (it prints a warning at import time on Node < 22).
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { default: Provider, errors } = await import('oidc-provider');

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

function usage(message) {
  if (message) process.stderr.write(`error: ${message}\n`);
  process.stderr.write(`usage: node server.js [options]
  --ttl SECONDS      access token lifetime (default 300)
  --tls-cert FILE    serve HTTPS with this PEM certificate (chain)
  --tls-key FILE     PEM private key for --tls-cert
  --client-ca FILE   require a client certificate signed by this PEM CA (mTLS)
  --alg ES256|RS256  JWT access token signing algorithm (default ES256)
  --port N           port to listen on (default 0 = pick a free port)
  --bench-clients N  also register bench-client-1..N (secrets bench-secret-1..N),
                     for the benchmarks (bench/); default 0
  --verbose          log every token request outcome to stderr
`);
  process.exit(message ? 2 : 0);
}

function parseArgs(argv) {
  const opts = {
    ttl: 300, tlsCert: null, tlsKey: null, clientCa: null, alg: 'ES256', port: 0, verbose: false,
    benchClients: 0,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      i += 1;
      return argv[i];
    };
    switch (arg) {
      case '--ttl': opts.ttl = Number(value()); break;
      case '--tls-cert': opts.tlsCert = value(); break;
      case '--tls-key': opts.tlsKey = value(); break;
      case '--client-ca': opts.clientCa = value(); break;
      case '--alg': opts.alg = value(); break;
      case '--port': opts.port = Number(value()); break;
      case '--bench-clients': opts.benchClients = Number(value()); break;
      case '--verbose': case '-v': opts.verbose = true; break;
      case '--help': case '-h': usage(); break;
      default: usage(`unknown option ${arg}`);
    }
  }
  if (!Number.isSafeInteger(opts.ttl) || opts.ttl <= 0) usage('--ttl must be a positive integer');
  if (!Number.isSafeInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port must be 0..65535');
  if (!!opts.tlsCert !== !!opts.tlsKey) usage('--tls-cert and --tls-key go together');
  if (opts.clientCa && !opts.tlsCert) usage('--client-ca needs --tls-cert/--tls-key');
  if (!['ES256', 'RS256'].includes(opts.alg)) usage('--alg must be ES256 or RS256');
  if (!Number.isSafeInteger(opts.benchClients) || opts.benchClients < 0 || opts.benchClients > 1000000) {
    usage('--bench-clients must be 0..1000000');
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

// Custom claims put into every token of a client (see README.md). The `scope`
// member is special: oidc-provider always writes the *granted* scope into the
// JWT `scope` claim (overwriting an extra claim of the same name), so
// `defaultScope` is only used when the client did not request a scope (done in
// the JWT customizer below); otherwise the claim is the requested scope.
// The public JWKS of the committed test-only keys (keys/README.md), for the
// private_key_jwt client. Each key's `kid` is its file name's stem.
function testKeysJwks() {
  const dir = new URL('./keys/', import.meta.url);
  return {
    keys: ['rsa-2048.pkcs8', 'ec-p256.sec1', 'ed25519'].map((stem) => {
      const pem = fs.readFileSync(new URL(`${stem}.pem`, dir));
      const jwk = crypto.createPublicKey(pem).export({ format: 'jwk' });
      return { ...jwk, kid: stem, use: 'sig' };
    }),
  };
}

const SAMPLE_CLAIMS = {
  active: true,
  grp: 'admin',
  referrer: 'http://example.com/foo/bar',
  areas: ['office', 'home'],
  user: { name: 'John Snow', status: 'undead' },
  userId: 'john',
};
const SAMPLE_SCOPE = 'reader writer deploy';

const CLIENTS = [
  {
    id: 'basic-client', secret: 'basic-secret', method: 'client_secret_basic', format: 'jwt',
    claims: { ...SAMPLE_CLAIMS }, defaultScope: SAMPLE_SCOPE,
  },
  {
    id: 'post-client', secret: 'post-secret', method: 'client_secret_post', format: 'jwt',
    claims: { ...SAMPLE_CLAIMS, grp: 'ops' }, defaultScope: SAMPLE_SCOPE,
  },
  {
    id: 'tester-client', secret: 'tester-secret', method: 'client_secret_basic', format: 'jwt',
    claims: { ...SAMPLE_CLAIMS, grp: 'testers', active: false }, defaultScope: SAMPLE_SCOPE,
  },
  {
    // Opaque access tokens; their claims show only through introspection
    // (POST /token/introspection).
    id: 'opaque-client', secret: 'opaque-secret', method: 'client_secret_basic', format: 'opaque',
    claims: { grp: 'opaque', user: { name: 'Opaque Olive' }, userId: 'olive' }, defaultScope: undefined,
  },
  {
    // May authenticate, but the introspection policy denies it: every
    // introspection it sends is answered {"active": false}.
    id: 'no-introspect-client', secret: 'no-introspect-secret', method: 'client_secret_basic', format: 'opaque',
    claims: {}, defaultScope: undefined,
  },
  {
    // Secret with the characters that must be form-urlencoded inside HTTP
    // Basic auth (RFC 6749 §2.3.1).
    id: 'reserved-client', secret: 's:e/c+r&e=t%?@x', method: 'client_secret_basic', format: 'jwt',
    claims: { ...SAMPLE_CLAIMS }, defaultScope: SAMPLE_SCOPE,
  },
  {
    // RFC 7523 §2.2 assertion signed with HS256 keyed by the secret.
    id: 'jwt-secret-client', secret: 'jwt-secret-0123456789abcdef0123456789abcdef', method: 'client_secret_jwt',
    format: 'jwt', claims: { ...SAMPLE_CLAIMS, grp: 'jwt' }, defaultScope: SAMPLE_SCOPE,
  },
  {
    // RFC 7523 §2.2 assertion signed with one of the test keys of keys/
    // (RS256, ES256 or EdDSA; their public JWKS is registered).
    id: 'key-client', secret: undefined, method: 'private_key_jwt', format: 'jwt',
    claims: { ...SAMPLE_CLAIMS, grp: 'keys' }, defaultScope: SAMPLE_SCOPE, jwks: testKeysJwks(),
  },
  {
    // RFC 8705 §2.1.1: the TLS client certificate authenticates (needs
    // --client-ca); registered by its DNS SAN, that of the test client
    // certificate of ccgate's test PKI.
    id: 'tls-client', secret: undefined, method: 'tls_client_auth', format: 'jwt',
    claims: { ...SAMPLE_CLAIMS, grp: 'mtls' }, defaultScope: SAMPLE_SCOPE,
    metadata: { tls_client_auth_san_dns: 'ccgate-test-client' },
  },
];
// Benchmark-only clients (--bench-clients N): many distinct callers, so that
// a gateway's cache holds many tokens. Like basic-client otherwise. Static
// clients are instantiated by oidc-provider on first use, so even 100,000
// of them cost little until they ask for tokens.
for (let i = 1; i <= opts.benchClients; i += 1) {
  CLIENTS.push({
    id: `bench-client-${i}`, secret: `bench-secret-${i}`, method: 'client_secret_basic', format: 'jwt',
    claims: SAMPLE_CLAIMS, defaultScope: SAMPLE_SCOPE,
  });
}
const CLIENTS_BY_ID = new Map(CLIENTS.map((c) => [c.id, c]));

// ---------------------------------------------------------------------------
// Instrumentation state (see /__test/ routes below)
// ---------------------------------------------------------------------------

function freshStats() {
  return {
    received: 0, // token requests that arrived (counted on arrival)
    introspections: 0, // introspection requests that arrived (POST /token/introspection)
    jwks: 0, // JWKS requests that arrived (GET /jwks)
    total: 0, // token requests answered (counted when the response is ready)
    success: 0, // HTTP 200 with an access token
    failure: 0, // everything else (including injected failures)
    injected: 0, // failures produced by /__test/fail
    in_flight: 0, // token requests currently being processed (incl. delay)
    max_in_flight: 0, // high-water mark of in_flight since the last reset
    by_client: {}, // client id -> { total, success, failure }
    by_status: {}, // HTTP status -> count
    // The last MAX_RECORDED token requests, oldest first: their form
    // parameters (client_secret's value replaced by "<redacted>",
    // client_assertion left out) and the decoded header and claims of
    // their client_assertion, if any.
    requests: [],
  };
}
let stats = freshStats();
let delayMs = 0; // set by POST /__test/delay?ms=N
let failure = { status: 503, count: 0, retryAfter: undefined }; // set by POST /__test/fail

const TOKEN_PATH = '/token';
const INTROSPECTION_PATH = '/token/introspection';
const JWKS_PATH = '/jwks';
const MAX_RECORDED = 50;

// The JOSE header and claims of a compact JWS, unverified; null if it is not one.
function decodeJws(jws) {
  const parts = typeof jws === 'string' ? jws.split('.') : [];
  if (parts.length !== 3) return null;
  try {
    const [header, claims] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')));
    return { header, claims };
  } catch {
    return null;
  }
}

function recordRequest(body) {
  if (!body || typeof body !== 'object') return;
  const params = {};
  for (const [name, value] of Object.entries(body)) {
    if (name === 'client_secret') params[name] = '<redacted>';
    else if (name !== 'client_assertion') params[name] = value;
  }
  const assertion = body.client_assertion === undefined ? null : decodeJws(body.client_assertion);
  stats.requests.push({ params, assertion });
  if (stats.requests.length > MAX_RECORDED) stats.requests.shift();
}
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// Client id a request *claims* to be, without verifying it: from the Basic
// header (decoded as application/x-www-form-urlencoded, like oidc-provider does)
// or from the client_id form field.
function claimedClientId(ctx, body) {
  const header = ctx.get('authorization');
  if (/^basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) {
      try {
        return decodeURIComponent(decoded.slice(0, i).replace(/\+/g, '%20'));
      } catch {
        return decoded.slice(0, i);
      }
    }
  }
  if (body && typeof body.client_id === 'string' && body.client_id) return body.client_id;
  return '(unknown)';
}

async function readFormBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return querystring.parse(Buffer.concat(chunks).toString('utf8'));
}

function record(clientId, status, injected) {
  const ok = status === 200;
  stats.total += 1;
  stats[ok ? 'success' : 'failure'] += 1;
  if (injected) stats.injected += 1;
  const perClient = (stats.by_client[clientId] ||= { total: 0, success: 0, failure: 0 });
  perClient.total += 1;
  perClient[ok ? 'success' : 'failure'] += 1;
  stats.by_status[status] = (stats.by_status[status] || 0) + 1;
}

function sendJson(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('cache-control', 'no-store');
  ctx.body = body;
}

// Koa middleware (mounted with provider.use, so it runs *before* and *around*
// oidc-provider's own routing).
async function instrumentation(ctx, next) {
  // --- /__test/ control API ------------------------------------------------
  if (ctx.path.startsWith('/__test/')) {
    const q = ctx.query;
    const route = `${ctx.method} ${ctx.path}`;
    if (route === 'GET /__test/stats') {
      return sendJson(ctx, 200, stats);
    }
    if (route === 'POST /__test/reset') {
      // Only the counters; delay and failure injection are left as they are.
      const inFlight = stats.in_flight;
      stats = freshStats();
      stats.in_flight = inFlight;
      stats.max_in_flight = inFlight;
      return sendJson(ctx, 200, stats);
    }
    if (route === 'POST /__test/delay') {
      const ms = Number(q.ms ?? 0);
      if (!Number.isSafeInteger(ms) || ms < 0) return sendJson(ctx, 400, { error: 'ms must be an integer >= 0' });
      delayMs = ms;
      return sendJson(ctx, 200, { delay_ms: delayMs });
    }
    if (route === 'POST /__test/fail') {
      const status = Number(q.status ?? 503);
      const count = Number(q.count ?? 1);
      const retryAfter = q.retry_after;
      if (!Number.isSafeInteger(status) || status < 400 || status > 599) return sendJson(ctx, 400, { error: 'status must be 400..599' });
      if (!Number.isSafeInteger(count) || count < 0) return sendJson(ctx, 400, { error: 'count must be an integer >= 0' });
      failure = { status, count, retryAfter };
      return sendJson(ctx, 200, { status, count, retry_after: retryAfter ?? null });
    }
    return sendJson(ctx, 404, { error: `no such test route: ${route}` });
  }

  if (ctx.path === INTROSPECTION_PATH) {
    stats.introspections += 1;
    return next();
  }
  if (ctx.path === JWKS_PATH) {
    stats.jwks += 1;
    return next();
  }
  if (ctx.path !== TOKEN_PATH) return next();

  // --- token endpoint: count, delay, inject failures -----------------------
  stats.received += 1;
  stats.in_flight += 1;
  stats.max_in_flight = Math.max(stats.max_in_flight, stats.in_flight);
  let clientId = '(unknown)';
  let injected = false;
  try {
    if (delayMs > 0) await sleep(delayMs);

    if (failure.count > 0) {
      failure.count -= 1;
      injected = true;
      // oidc-provider will not see this request, so read the body ourselves
      // to find the client id for the counters.
      const body = ctx.is('application/x-www-form-urlencoded') ? await readFormBody(ctx.req) : {};
      clientId = claimedClientId(ctx, body);
      recordRequest(body);
      if (failure.retryAfter !== undefined) ctx.set('retry-after', String(failure.retryAfter));
      const error = failure.status === 503 || failure.status === 429 ? 'temporarily_unavailable' : 'server_error';
      return sendJson(ctx, failure.status, {
        error, error_description: `injected failure (HTTP ${failure.status})`,
      });
    }

    await next();

    // ctx.oidc only exists when oidc-provider routed the request (POST /token).
    const { oidc } = ctx;
    clientId = oidc?.client?.clientId ?? claimedClientId(ctx, oidc?.body);
    recordRequest(oidc?.body);
  } finally {
    // ctx.status is final here: oidc-provider renders its errors itself.
    // Counted at completion into the current counters (a reset while this
    // request was in flight does not lose it).
    stats.in_flight = Math.max(0, stats.in_flight - 1);
    record(clientId, ctx.status, injected);
    if (opts.verbose) {
      process.stderr.write(`idp: ${ctx.method} ${ctx.path} client=${clientId} -> ${ctx.status}${injected ? ' (injected)' : ''}\n`);
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

// Fresh signing key on every start (no dev keystore warning). EC P-256 keys
// are generated in well under a millisecond; RSA-2048 takes ~0.2 s.
function signingJwk(alg) {
  const { privateKey } = alg === 'RS256'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `test-${alg.toLowerCase()}-${crypto.randomBytes(4).toString('hex')}` };
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

const tls = !!opts.tlsCert;
let server;
if (tls) {
  const tlsOptions = {
    cert: fs.readFileSync(opts.tlsCert),
    key: fs.readFileSync(opts.tlsKey),
  };
  if (opts.clientCa) {
    // mTLS: the handshake fails unless the client presents a certificate
    // that chains to this CA.
    tlsOptions.ca = fs.readFileSync(opts.clientCa);
    tlsOptions.requestCert = true;
    tlsOptions.rejectUnauthorized = true;
  }
  server = https.createServer(tlsOptions);
} else {
  server = http.createServer();
}
// Tests hammer the server with short-lived connections; no reason to keep
// idle keep-alive sockets around for long, but allow reuse between requests.
server.keepAliveTimeout = 5000;
if (opts.verbose) {
  server.on('tlsClientError', (err) => process.stderr.write(`idp: TLS error: ${err.message}\n`));
}

// The issuer contains the port, so listen first and build the provider after.
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(opts.port, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;

// The audience for the JWT comes from the `audience` form parameter. It is not
// a parameter oidc-provider knows, so it never reaches ctx.oidc.params, but
// ctx.oidc.body holds the whole parsed form body of the token request.
// With resource indicators enabled, every client credentials token is bound to
// one "resource"; we default that resource to a fixed placeholder URN and
// return the real audience from getResourceServerInfo (its `audience` may be
// any string, unlike a `resource` indicator which must be an absolute URI).
const DEFAULT_RESOURCE = 'urn:ccgate:test-idp:default-resource';
const DEFAULT_AUDIENCE = 'urn:ccgate:test-idp:default-audience';

function requestedAudience(ctx, resourceIndicator) {
  const aud = ctx.oidc.body?.audience;
  if (typeof aud === 'string' && aud !== '') return aud;
  if (Array.isArray(aud) && aud.length > 0) return aud[aud.length - 1];
  // A client that sent a real `resource` indicator instead gets that.
  if (resourceIndicator && resourceIndicator !== DEFAULT_RESOURCE) return resourceIndicator;
  return DEFAULT_AUDIENCE;
}

const provider = new Provider(issuer, {
  clients: CLIENTS.map((c) => ({
    client_id: c.id,
    ...(c.secret === undefined ? {} : { client_secret: c.secret }),
    ...(c.jwks === undefined ? {} : { jwks: c.jwks }),
    ...(c.metadata ?? {}),
    token_endpoint_auth_method: c.method,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  })),
  jwks: { keys: [signingJwk(opts.alg)] },
  // The default list lacks tls_client_auth (needed by `tls-client`).
  clientAuthMethods: ['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'none'],
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  clientDefaults: { id_token_signed_response_alg: opts.alg },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Lets tests check opaque tokens: POST /token/introspection, any
    // authenticated client may introspect any token, except
    // no-introspect-client (answered {"active": false}).
    introspection: {
      enabled: true,
      allowedPolicy: (ctx, client) => client.clientId !== 'no-introspect-client',
    },
    // tls_client_auth (RFC 8705 §2.1.1) for `tls-client`; the certificate
    // is the one of the TLS connection (with --client-ca it has been
    // verified against that CA by the handshake).
    mTLS: {
      enabled: true,
      tlsClientAuth: true,
      getCertificate: (ctx) => {
        const peer = typeof ctx.socket?.getPeerCertificate === 'function' ? ctx.socket.getPeerCertificate() : null;
        if (!peer || !peer.raw) return undefined;
        return new crypto.X509Certificate(peer.raw).toString();
      },
      certificateAuthorized: (ctx) => ctx.socket?.authorized === true,
      certificateSubjectMatches: (ctx, property, expected) => {
        const pem = ctx.socket.getPeerCertificate()?.raw;
        if (!pem) return false;
        const cert = new crypto.X509Certificate(pem);
        switch (property) {
          case 'tls_client_auth_san_dns':
            return (cert.subjectAltName ?? '').split(', ').includes(`DNS:${expected}`);
          default:
            return false;
        }
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => DEFAULT_RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator, client) => {
        const conf = CLIENTS_BY_ID.get(client.clientId);
        return {
          audience: requestedAudience(ctx, resourceIndicator),
          // The resource server's scope is the set of scopes it allows; allow
          // exactly what was requested so that any scope value is granted.
          scope: ctx.oidc.params.scope || '',
          accessTokenTTL: opts.ttl,
          accessTokenFormat: conf?.format ?? 'jwt',
          jwt: { sign: { alg: opts.alg } },
        };
      },
    },
  },
  ttl: { ClientCredentials: opts.ttl },
  extraTokenClaims: (ctx, token) => {
    const conf = CLIENTS_BY_ID.get(token.clientId);
    return conf ? structuredClone(conf.claims) : undefined;
  },
  formats: {
    customizers: {
      // Runs on the final JWT payload; the provider's own claims (scope, aud,
      // ...) are already in place. Fill in the client's default scope when
      // none was requested, so the sample `scope` claim is present.
      jwt: (ctx, token, jwt) => {
        const conf = CLIENTS_BY_ID.get(token.clientId);
        if (jwt.payload.scope === undefined && conf?.defaultScope) {
          jwt.payload.scope = conf.defaultScope;
        }
      },
    },
  },
  // Keep error responses small and JSON.
  renderError: (ctx, out) => {
    ctx.type = 'application/json';
    ctx.body = out;
  },
});

// oidc-provider accepts *either* Basic or body credentials for clients
// registered with client_secret_basic or client_secret_post. ccgate's tests
// need the registered method to be enforced, so reject a mismatch with the
// same error oidc-provider uses for other authentication failures
// (401 invalid_client). compareClientSecret is the hook that runs for both
// methods, inside the request's async context (Provider.ctx).
const { compareClientSecret } = provider.Client.prototype;
provider.Client.prototype.compareClientSecret = function strictCompareClientSecret(actual) {
  const ctx = Provider.ctx;
  if (ctx?.oidc) {
    const used = ctx.oidc.params.client_secret !== undefined ? 'client_secret_post' : 'client_secret_basic';
    if (used !== this.clientAuthMethod) {
      throw new errors.InvalidClientAuth(
        `the client is registered for ${this.clientAuthMethod} but authenticated with ${used}`,
      );
    }
  }
  return compareClientSecret.call(this, actual);
};

if (opts.verbose) {
  const logError = (label) => (ctx, err) => {
    process.stderr.write(`idp: ${label}: ${err.error || err.name}: ${err.error_detail || err.error_description || err.message}\n`);
  };
  provider.on('grant.error', logError('grant.error'));
  provider.on('server_error', logError('server_error'));
}

provider.use(instrumentation);
server.on('request', provider.callback());

// ---------------------------------------------------------------------------
// Lifetime
// ---------------------------------------------------------------------------

function shutdown(reason) {
  if (opts.verbose) process.stderr.write(`idp: exiting (${reason})\n`);
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

// Exit when the parent closes our stdin (or dies). Only when stdin is a pipe or
// socket: with stdin at /dev/null it would be at EOF immediately, and on a
// terminal Ctrl-C is the way out.
{
  let stdinIsPipe = false;
  try {
    const st = fs.fstatSync(0);
    stdinIsPipe = st.isFIFO() || st.isSocket();
  } catch {
    stdinIsPipe = false;
  }
  if (stdinIsPipe) {
    process.stdin.on('data', () => {}); // discard anything written to us
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('close', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
  }
}

// The one and only line on stdout.
process.stdout.write(`${JSON.stringify({
  issuer,
  token_endpoint: `${issuer}${TOKEN_PATH}`,
  introspection_endpoint: `${issuer}${INTROSPECTION_PATH}`,
  jwks_uri: `${issuer}${JWKS_PATH}`,
  port,
})}\n`);
