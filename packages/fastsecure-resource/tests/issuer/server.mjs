// A real authorization server for fastsecure-resource's tests: panva's oidc-provider on
// loopback, issuing RFC 9068 JWT access tokens through resource indicators (RFC 8707).
//
// Environment: PORT, KEYS_FILE (a private JWK Set; the first key signs), SECRET (the
// clients' secret), ALG (the access tokens' signing algorithm).
// GET /__stats answers how many times the JWKS was served, so tests can count fetches.
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const secret = process.env.SECRET;
const alg = process.env.ALG || 'ES256';
const API = 'https://api.example.test';
const OPAQUE_API = 'https://opaque.example.test';
const stats = { jwks: 0, introspection: 0 };

const provider = new Provider(issuer, {
  jwks: JSON.parse(readFileSync(process.env.KEYS_FILE, 'utf8')),
  clients: [
    {
      client_id: 'machine',
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'webapp',
      client_secret: secret,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    },
    {
      // The resource server's own registration, to call the introspection endpoint.
      client_id: 'api',
      client_secret: secret,
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  clientDefaults: { id_token_signed_response_alg: alg },
  scopes: ['openid', 'read', 'write'],
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => API,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator === API) {
          return {
            scope: 'read write',
            audience: API,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        }
        if (resourceIndicator === OPAQUE_API) {
          return { scope: 'read write', audience: OPAQUE_API, accessTokenTTL: 300, accessTokenFormat: 'opaque' };
        }
        throw new errors.InvalidTarget();
      },
    },
  },
});

provider.use(async (ctx, next) => {
  if (ctx.path === '/__stats') {
    ctx.body = stats;
    return;
  }
  if (ctx.path === '/jwks') stats.jwks += 1;
  if (ctx.path === '/token/introspection') stats.introspection += 1;
  await next();
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
