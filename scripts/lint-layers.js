// An ESLint plugin of our own: imports point one way (down the layer table), never in a circle,
// and the core imports nothing but the core. `node scripts/lint-layers.js` prints the structure.
import fs from 'node:fs';
import path from 'node:path';

/**
 * src/'s folders, lowest first: a folder imports only from folders of lower layers, never from its
 * own layer's neighbours or above. A new folder must be placed here before it can import anything.
 */
export const LAYERS = [
  ['util'],
  ['core'],
  ['encodings', 'log', 'watch', 'gpu', 'health'],
  ['config'],
  ['container', 'reader', 'alerts', 'metrics', 'dbus', 'systemd', 'gate'],
  ['docker', 'export', 'state', 'desired'],
  ['preflight'],
  ['runtime'],
  ['cli'],
];
/** The core's own layers: the vocabulary, the rules, the machine. */
export const CORE_LAYERS = [['model'], ['rules'], ['machine']];

const rankIn = (table, name) => table.findIndex((row) => row.includes(name));
const SRC = path.resolve(import.meta.dirname, '..', 'src');

/** `core/rules`, `docker`, ...: the unit the layer table speaks of, for a file under src/. */
function unitOf(file) {
  const parts = path.relative(SRC, file).split(path.sep);
  if (parts.length < 2) return undefined;
  return parts[0] === 'core' && parts.length > 2 ? `core/${parts[1]}` : parts[0];
}

/** Where a relative specifier leads, as a .ts file (the sources import `.js`). */
function resolveSpec(from, spec) {
  return path.resolve(path.dirname(from), spec).replace(/\.js$/, '.ts');
}

/** Why `from` may not import `to`, or undefined. */
export function climbs(from, to) {
  const a = unitOf(from);
  const b = unitOf(to);
  if (!a || !b || a === b) return undefined;
  const [ta, tb] = [a.split('/')[0], b.split('/')[0]];
  if (ta === 'core' && tb !== 'core') return `the core imports only the core (${b} is outside it)`;
  if (ta === tb) {
    const [sa, sb] = [rankIn(CORE_LAYERS, a.split('/')[1]), rankIn(CORE_LAYERS, b.split('/')[1])];
    if (sa < 0 || sb < 0) return `${sa < 0 ? a : b} is not in CORE_LAYERS (scripts/lint-layers.js)`;
    return sb >= sa ? `${a} may not import ${b}: core's layers go model <- rules <- machine` : undefined;
  }
  const [ra, rb] = [rankIn(LAYERS, ta), rankIn(LAYERS, tb)];
  if (ra < 0 || rb < 0) return `${ra < 0 ? ta : tb} is not in LAYERS (scripts/lint-layers.js): place it first`;
  if (rb > ra) return `${ta} (layer ${ra}) may not import ${tb} (layer ${rb}): imports point down the layer table`;
  if (rb === ra) return `${ta} and ${tb} share layer ${ra}: neither imports the other (move the shared part down)`;
  return undefined;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g;

/** src/'s import graph: file -> files it imports (relative imports only). */
export function importGraph(root = SRC) {
  const files = [];
  (function walk(d) {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  })(root);
  const g = new Map();
  for (const f of files) {
    const deps = new Set();
    for (const m of fs.readFileSync(f, 'utf8').matchAll(IMPORT)) {
      const t = resolveSpec(f, m[1] ?? m[2]);
      if (fs.existsSync(t)) deps.add(t);
    }
    g.set(f, [...deps]);
  }
  return g;
}

/** Strongly connected components of more than one file (Tarjan): each is an import circle. */
export function circles(g) {
  let index = 0;
  const stack = [];
  const on = new Set();
  const idx = new Map();
  const low = new Map();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const c = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (g.get(v) ?? []).includes(v)) out.push(c);
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

let cached;
/** The circle each file is in (computed once per lint run). */
function circleOf(file) {
  if (!cached) {
    cached = new Map();
    for (const c of circles(importGraph())) for (const f of c) cached.set(f, c);
  }
  return cached.get(file);
}

const short = (f) => path.relative(SRC, f);

function sources(node) {
  if (node.type === 'ImportExpression') return node.source.type === 'Literal' ? node.source : undefined;
  return node.source ?? undefined;
}

const visitorFor = (check) => {
  const on = (node) => {
    const src = sources(node);
    if (src && typeof src.value === 'string') check(node, src.value);
  };
  return { ImportDeclaration: on, ExportNamedDeclaration: on, ExportAllDeclaration: on, ImportExpression: on };
};

const noClimb = {
  meta: { type: 'problem', schema: [], docs: { description: 'imports point down the layer table' } },
  create(context) {
    const file = context.filename;
    if (!file.startsWith(SRC + path.sep)) return {};
    const inCore = unitOf(file)?.startsWith('core');
    return visitorFor((node, spec) => {
      if (!spec.startsWith('.')) {
        if (inCore)
          context.report({ node, message: `the core is pure: no '${spec}' (no node:*, no packages; the shell acts)` });
        return;
      }
      const why = climbs(file, resolveSpec(file, spec));
      if (why) context.report({ node, message: why });
    });
  },
};

const noCycle = {
  meta: { type: 'problem', schema: [], docs: { description: 'no import circle' } },
  create(context) {
    const file = context.filename;
    if (!file.startsWith(SRC + path.sep)) return {};
    return visitorFor((node, spec) => {
      if (!spec.startsWith('.')) return;
      const c = circleOf(file);
      if (c?.includes(resolveSpec(file, spec)))
        context.report({ node, message: `import circle: ${c.map(short).join(' -> ')} (move the shared part down)` });
    });
  },
};

export const layersPlugin = { rules: { 'no-climb': noClimb, 'no-cycle': noCycle } };

/** The structure in figures: circles, imports that climb, the largest files. */
function report() {
  const g = importGraph();
  const cs = circles(g);
  const climbing = [];
  for (const [f, deps] of g) for (const d of deps) if (climbs(f, d)) climbing.push(`${short(f)} -> ${short(d)}`);
  const sizes = [...g.keys()]
    .map((f) => [short(f), fs.readFileSync(f, 'utf8').split('\n').length])
    .sort((a, b) => b[1] - a[1]);
  console.log(`files: ${g.size}; import circles: ${cs.length}; imports that climb: ${climbing.length}`);
  for (const c of cs) console.log(`  circle: ${c.map(short).join(' , ')}`);
  for (const c of climbing) console.log(`  climbs: ${c}`);
  console.log('largest files:');
  for (const [f, n] of sizes.slice(0, 8)) console.log(`  ${n} ${f}`);
}

if (process.argv[1] === import.meta.filename) report();
