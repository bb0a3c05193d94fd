#!/usr/bin/env node
// Run by `postinstall` (npm install / npm ci, with or without dev dependencies): replaces, in pinned
// versions of dependencies, code whose cost we measured and reported upstream, with code of the same
// behaviour. Each patch applies only to the exact version and the exact original text it was written
// for; anything else is left alone with a warning (the install never fails for it), so upgrading a
// dependency means checking whether its patch is still needed. Running it again changes nothing.
// Plain Node, no dependencies: it must run before anything is built and without dev dependencies.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * @trpc/server's build spreads objects (`{ ...opts, ctx }`, on every middleware of every call) through
 * this transpiled helper: per key a closure, a `typeof`/`toPrimitive` key coercion and an `in` check,
 * plus a filter of the symbols. See docs/upstream/trpc-object-spread.md.
 */
export const TRPC_OBJECT_SPREAD_ORIGINAL = `function ownKeys(e, r) {
	var t = Object.keys(e);
	if (Object.getOwnPropertySymbols) {
		var o = Object.getOwnPropertySymbols(e);
		r && (o = o.filter(function(r) {
			return Object.getOwnPropertyDescriptor(e, r).enumerable;
		})), t.push.apply(t, o);
	}
	return t;
}
function _objectSpread2(e) {
	for (var r = 1; r < arguments.length; r++) {
		var t = null != arguments[r] ? arguments[r] : {};
		r % 2 ? ownKeys(Object(t), !0).forEach(function(r) {
			_defineProperty(e, r, t[r]);
		}) : Object.getOwnPropertyDescriptors ? Object.defineProperties(e, Object.getOwnPropertyDescriptors(t)) : ownKeys(Object(t)).forEach(function(r) {
			Object.defineProperty(e, r, Object.getOwnPropertyDescriptor(t, r));
		});
	}
	return e;
}
`;

/**
 * The same helper as plain loops. Same behaviour: sources at odd positions are spread (own enumerable
 * string keys, then own enumerable symbols, listed before any value is read; getters invoked; a key
 * already present, own or inherited such as `__proto__`, is redefined as a data property, any other
 * assigned), sources at even positions have their own properties copied with their descriptors (all
 * read before any is defined), later sources override earlier ones, null and undefined sources add
 * nothing. Where a copied property is a plain data property and the target's is too (or it has none
 * and may get one), the copy is an assignment, which has the same result and keeps the target a fast
 * object: redefining properties through `Object.defineProperties` (the original's path for the
 * object literals tRPC writes after each spread, on every middleware) is what cost most. Only a
 * Proxy could tell the two apart, by the traps it sees.
 */
export const TRPC_OBJECT_SPREAD_PATCHED = `function _objectSpread2(e) {
	/* patched by telemetry-service scripts/patch-dependencies.mjs: the helper's semantics without its per-key closures */
	for (var r = 1; r < arguments.length; r++) {
		var t = arguments[r];
		if (t == null) continue;
		if (r % 2) {
			var o = Object(t), k = Object.keys(o), s = Object.getOwnPropertySymbols(o);
			for (var i = 0; i < s.length; i++) if (Object.prototype.propertyIsEnumerable.call(o, s[i])) k.push(s[i]);
			for (var j = 0; j < k.length; j++) {
				var key = k[j], value = t[key];
				if (key in e) Object.defineProperty(e, key, { value: value, enumerable: true, configurable: true, writable: true });
				else e[key] = value;
			}
		} else {
			var so = Object(t), ks = Reflect.ownKeys(so), ds = new Array(ks.length);
			for (var m = 0; m < ks.length; m++) ds[m] = Object.getOwnPropertyDescriptor(so, ks[m]);
			for (var n = 0; n < ks.length; n++) {
				var dk = ks[n], d = ds[n];
				if (d === undefined) continue;
				if (d.writable && d.enumerable && d.configurable) {
					var own = Object.getOwnPropertyDescriptor(e, dk);
					if (own ? own.writable && own.enumerable && own.configurable : !(dk in e) && Object.isExtensible(e)) {
						e[dk] = d.value;
						continue;
					}
				}
				Object.defineProperty(e, dk, d);
			}
		}
	}
	return e;
}
`;

/**
 * postgres.js: a `COPY ... FROM STDIN` whose stream has ended waits for the server's CommandComplete
 * to finish the stream. When the server refuses the COPY instead (a unique violation, a value it
 * cannot store, a Citus worker it cannot reach), or the connection drops, the error reaches
 * `errored`, which had no stream left to destroy and a query already resolved (with the stream):
 * the COPY's `pipeline` never settled and its transaction held its connection for ever. The patch
 * hands the error to the waiting stream, so the COPY rejects with it. See
 * docs/upstream/postgres-copy-error.md.
 */
export const POSTGRES_COPY_ERROR_ORIGINAL = `  function errored(err) {
    stream && (stream.destroy(err), stream = null)
`;

export const POSTGRES_COPY_ERROR_PATCHED = `  function errored(err) {
    /* patched by telemetry-service scripts/patch-dependencies.mjs: an ended COPY stream gets the error */
    final && (final(err), final = null)
    stream && (stream.destroy(err), stream = null)
`;

export const PATCHES = [
  {
    name: '@trpc/server object spread helper',
    packageName: '@trpc/server',
    version: '11.25.2',
    // The ESM and CommonJS builds each carry their own copy of the helper.
    files: ['dist/getErrorShape-B5jPKHJ3.mjs', 'dist/getErrorShape-BAuHhNuh.cjs'],
    original: TRPC_OBJECT_SPREAD_ORIGINAL,
    patched: TRPC_OBJECT_SPREAD_PATCHED,
  },
  {
    name: 'postgres COPY error after the stream ended',
    packageName: 'postgres',
    version: '3.4.9',
    files: ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'],
    original: POSTGRES_COPY_ERROR_ORIGINAL,
    patched: POSTGRES_COPY_ERROR_PATCHED,
  },
];

/**
 * Applies every patch under `root`'s node_modules. Returns one outcome per file: `patched` (done now),
 * `already-patched`, or `skipped` with the reason (also passed to `warn`).
 */
export function patchDependencies({ root = fileURLToPath(new URL('..', import.meta.url)), patches = PATCHES, warn = defaultWarn } = {}) {
  const outcomes = [];
  for (const patch of patches) {
    const packageDir = join(root, 'node_modules', patch.packageName);
    const skip = (file, reason) => {
      warn(`${patch.name} not applied${file ? ` to ${file}` : ''}: ${reason}`);
      outcomes.push({ patch: patch.name, file, outcome: 'skipped', reason });
    };
    const manifest = join(packageDir, 'package.json');
    if (!existsSync(manifest)) {
      skip(undefined, `${patch.packageName} is not installed`);
      continue;
    }
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
    if (version !== patch.version) {
      skip(undefined, `written for ${patch.packageName} ${patch.version}, installed is ${version}; check whether it is still needed`);
      continue;
    }
    for (const file of patch.files) {
      const path = join(packageDir, file);
      const text = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
      if (text === undefined) skip(file, 'file not found');
      else if (text.includes(patch.patched)) outcomes.push({ patch: patch.name, file, outcome: 'already-patched' });
      else if (occurrences(text, patch.original) !== 1) skip(file, 'the original text was not found exactly once');
      else {
        writeFileSync(
          path,
          text.replace(patch.original, () => patch.patched),
        );
        outcomes.push({ patch: patch.name, file, outcome: 'patched' });
      }
    }
  }
  return outcomes;
}

function occurrences(text, part) {
  return text.split(part).length - 1;
}

function defaultWarn(message) {
  process.stderr.write(`patch-dependencies: warning: ${message}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const { patch, file, outcome } of patchDependencies()) {
    if (outcome !== 'skipped') process.stdout.write(`patch-dependencies: ${patch}: ${file} ${outcome}\n`);
  }
}
