// Content-Security-Policy refusals, told apart from other failures. A refused worker,
// fetch or wasm compile fails like a missing file or a dead network would; the browser
// says which directive refused it only in a `securitypolicyviolation` event, fired at the
// realm that was refused (the page for a worker, the worker for its fetches and wasm),
// and queued after the failure itself. So each realm keeps the last violations it saw,
// and a failure is checked against them one task later.
import { LocalrecError } from './errors.js';

const recent = [];
globalThis.addEventListener?.('securitypolicyviolation', (e) => {
  recent.push({ directive: e.effectiveDirective || e.violatedDirective, blocked: e.blockedURI ?? '' });
  if (recent.length > 16) recent.shift();
});

/** What a page's policy must allow for the package, by directive (pkg/README.md, "Deploy"). */
const NEEDS = {
  'script-src': "'wasm-unsafe-eval' (and the package's origin)",
  'worker-src': "the package's origin, and blob: when the package is on another origin than the page",
  'connect-src': "the origins of the package, the catalog and the model",
};

/** Where a blocked URI came from: an origin, or the scheme of one that has none (blob:, data:). */
function sourceOf(blocked) {
  if (!blocked || blocked === 'eval' || blocked === 'wasm-eval' || blocked === 'inline') return null;
  try {
    const url = new URL(blocked);
    return url.origin !== 'null' ? url.origin : `${url.protocol}`;
  } catch {
    return blocked.endsWith(':') ? blocked : `${blocked}:`;
  }
}

/**
 * Once the violations of the failure just seen have been reported: a `localrec/csp`
 * error naming the directive to change and what to add, if one matches `matches(v)`
 * (`{directive, blocked}`), else null.
 */
export async function refusedByPolicy(what, matches = () => true) {
  await new Promise((resolve) => setTimeout(resolve, 0));
  const v = [...recent].reverse().find(matches);
  if (!v) return null;
  const source = sourceOf(v.blocked);
  const fix = source ? `add ${source} to ${v.directive}` : `${v.directive} must allow ${NEEDS[v.directive] ?? 'it'}`;
  return new LocalrecError('localrec/csp', `the page's Content-Security-Policy refused ${what}: ${fix} (it needs ${NEEDS[v.directive.replace(/-elem$/, '')] ?? 'what pkg/README.md lists'})`);
}

/** Whether a violation blocked `url` (a fetch of it). */
export const blocked = (url) => (v) => {
  try {
    return v.blocked === url || new URL(v.blocked).origin === new URL(url).origin;
  } catch {
    return false;
  }
};
