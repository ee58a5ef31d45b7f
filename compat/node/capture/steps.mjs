// Helpers for capture scripts: run one client call, wait for the requests it
// causes, and file them under a call name.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Collects { call, note, rec } entries from a recorder, one step at a time. */
export class Steps {
  constructor(rec) {
    this.rec = rec;
    this.entries = [];
  }

  /**
   * Runs `fn`, then waits until `expect` requests (matching `match`, default
   * all) have arrived since it started, lets `settle` ms pass for stragglers,
   * and files every request that arrived meanwhile under `call`.
   */
  async run(call, fn, { note, expect = 1, match = () => true, settle = 150, timeout = 30_000 } = {}) {
    const mark = this.rec.requests.length;
    await fn();
    await this.rec.waitFor(`${call}: ${expect} request(s)`, (all) => all.slice(mark).filter(match).length >= expect, timeout);
    await sleep(settle);
    this.take(call, mark, note);
  }

  /**
   * Files every request since `mark` under `call`; when there are several,
   * each is named by what it is (describe()).
   */
  take(call, mark, note) {
    const got = this.rec.requests.slice(mark);
    const names = got.map(describe);
    const seen = new Map();
    got.forEach((rec, i) => {
      let name = call;
      if (got.length > 1) {
        const total = names.filter((n) => n === names[i]).length;
        const k = (seen.get(names[i]) ?? 0) + 1;
        seen.set(names[i], k);
        name = `${call} (${names[i]}${total > 1 ? ` #${k}` : ''})`;
      }
      this.entries.push({ call: name, note, rec });
    });
    return got;
  }
}

/** A short name for what a request is: "POST /v1/t", "CORS preflight /v1/t", "CDN settings", … */
export function describe(rec) {
  const p = new URL(rec.url, 'http://x').pathname;
  if (rec.method === 'OPTIONS') return `CORS preflight ${p}`;
  if (rec.method === 'GET') {
    if (/\/settings$/.test(p)) return 'CDN settings';
    if (/analytics(\.min)?\.js$/.test(p)) return 'analytics.min.js';
    if (p.startsWith('/analytics-next/bundles/')) return `chunk ${p.split('/').pop()}`;
    if (p.startsWith('/static/')) return `static ${p.split('/').pop()}`;
    if (/^\/array\/[^/]+\/config\.js$/.test(p)) return 'remote config.js';
    if (/^\/array\/[^/]+\/config$/.test(p)) return 'remote config';
  }
  if (/^\/(flags|decide)\/?$/.test(p)) return `flags ${p}`;
  return `${rec.method} ${p}`;
}
