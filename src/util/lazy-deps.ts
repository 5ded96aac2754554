// Dependencies that dependencies load at import, which the daemon uses rarely or never: ssh2 (for an
// ssh:// DOCKER_HOST), gRPC (BuildKit sessions), xml2js (D-Bus introspection). Together ~40 MiB of
// memory. Stand-ins in require's cache load the real module on first use, so every feature works.
// Imported before dockerode and dbus-next (src/docker/engine.ts, src/dbus/service.ts).
import * as nodeModule from 'node:module';
import { createRequire } from 'node:module';

type Loaded = Record<string | symbol, unknown>;
const req = createRequire(import.meta.url);

function defer(specifier: string, from: string, standIn: (load: () => Loaded) => object): void {
  const requireFrom = createRequire(req.resolve(from));
  const id = requireFrom.resolve(specifier);
  if (req.cache[id]) return;
  let real: Loaded | undefined;
  const load = (): Loaded => {
    if (!real) {
      delete req.cache[id];
      real = requireFrom(id) as Loaded;
    }
    return real;
  };
  const m = { id, filename: id, loaded: true, exports: standIn(load), children: [], paths: [] };
  req.cache[id] = m as unknown as NodeJS.Module;
}

/** An object whose properties are the real module's, read when first asked for. */
const lazyObject = (load: () => Loaded) => new Proxy({}, { get: (_t, key) => load()[key] });

// docker-modem reads `require('ssh2').Client` at load and calls `new Client()` only for ssh://.
defer('ssh2', 'docker-modem', (load) => ({
  Client: function Client(...args: unknown[]) {
    const Real = load()['Client'] as new (...a: unknown[]) => object;
    return new Real(...args);
  },
}));
defer('@grpc/grpc-js', 'dockerode', lazyObject);
// dockerode's build-context helpers (tar, .dockerignore): the supervisor never builds an image.
defer('tar-fs', 'dockerode', lazyObject);
defer(
  '@balena/dockerignore',
  'dockerode',
  (load) =>
    (...args: unknown[]) =>
      (load() as unknown as (...a: unknown[]) => unknown)(...args),
);
defer('@grpc/proto-loader', 'dockerode', lazyObject);

// dbus-next builds an xml2js Builder for every bus (used only to answer Introspect) and a Parser per
// proxy object (used when a proxy introspects its peer): both made on first use.
function lazyInstance(load: () => Loaded, name: string, methods: string[]) {
  return function (...args: unknown[]) {
    type Real = Record<string, (...a: unknown[]) => unknown>;
    let real: Real | undefined;
    const make = (): Real => (real ??= new (load()[name] as new (...a: unknown[]) => Real)(...args));
    return Object.fromEntries(methods.map((m) => [m, (...a: unknown[]) => make()[m]?.(...a)]));
  };
}
defer('xml2js', 'dbus-next', (load) => ({
  Builder: lazyInstance(load, 'Builder', ['buildObject']),
  Parser: lazyInstance(load, 'Parser', ['parseString']),
}));

// docker-modem requires https (with tls: ~5 MiB) for a tcp:// DOCKER_HOST with TLS, and dockerode
// zlib for build contexts: builtins cannot be cached ahead, so a resolve hook gives those two
// packages stand-ins that require the builtin on first use. Without registerHooks (older Node),
// they load as before.
const LAZY_BUILTINS: Readonly<Record<string, RegExp>> = {
  https: /\/node_modules\/docker-modem\//,
  zlib: /\/node_modules\/dockerode\//,
};
const STAND_IN_URL = 'gptoss-lazy-builtin:';
const registerHooks = (nodeModule as { registerHooks?: unknown }).registerHooks as
  | ((hooks: {
      resolve?: (s: string, c: { parentURL?: string }, next: (s: string, c?: unknown) => { url: string }) => object;
      load?: (url: string, c: unknown, next: (url: string, c?: unknown) => object) => object;
    }) => unknown)
  | undefined;
registerHooks?.({
  resolve(specifier, context, next) {
    const name = specifier.replace(/^node:/, '');
    const from = LAZY_BUILTINS[name];
    if (from && from.test(context.parentURL ?? '')) return { url: `${STAND_IN_URL}${name}`, shortCircuit: true };
    return next(specifier, context);
  },
  load(url, context, next) {
    if (!url.startsWith(STAND_IN_URL)) return next(url, context);
    const name = url.slice(STAND_IN_URL.length);
    const source =
      `let m; const load = () => (m ??= require('node:${name}'));\n` +
      'module.exports = new Proxy({}, { get: (_t, k) => load()[k], has: (_t, k) => k in load() });\n';
    return { format: 'commonjs', source, shortCircuit: true };
  },
});
