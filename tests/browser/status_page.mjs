// SPDX-License-Identifier: Apache-2.0
// status_page.mjs - loads pullcache's status page in Debian's chromium
// (playwright-core, no browser download) for tests/e2e/test_status_page.sh:
//   node status_page.mjs URL SCREENSHOT.png PROFILE_DIR [USER:PASSWORD]
// Waits until the page has refreshed at least twice, then prints one JSON
// line: the requests that failed or answered >= 400, what each upstream's
// budget plot drew (its data-* attributes), the rows of the tables, and
// whether the page said it had a problem. Exit 0 when the page loaded (the
// test judges the report), 1 when it could not be driven at all.
import { chromium } from 'playwright-core';

const [url, shot, profile, creds] = process.argv.slice(2);
if (!url || !shot || !profile) {
  console.error('usage: node status_page.mjs URL SCREENSHOT PROFILE_DIR [USER:PASSWORD]');
  process.exit(2);
}
const options = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage'],
  viewport: { width: 1280, height: 1100 },
  timeout: 60000,
};
if (creds) // Basic credentials on every request, as an admin's browser would send them
  options.extraHTTPHeaders = { Authorization: 'Basic ' + Buffer.from(creds).toString('base64') };
let context;
try {
  context = await chromium.launchPersistentContext(profile, options);
  const page = context.pages()[0] || await context.newPage();
  const failed = [], console_errors = [], requests = [];
  page.on('requestfailed', r => failed.push({ url: r.url(), error: r.failure()?.errorText }));
  page.on('response', r => {
    requests.push(`${r.status()} ${r.url()}`);
    if (r.status() >= 400) failed.push({ url: r.url(), status: r.status() });
  });
  page.on('console', m => { if (m.type() === 'error') console_errors.push(m.text()); });
  page.on('pageerror', e => console_errors.push(String(e)));
  const resp = await page.goto(url, { waitUntil: 'load' });
  // polled from here: waitForFunction evaluates a string, which the page's
  // Content-Security-Policy (no 'unsafe-eval') rightly refuses
  for (let i = 0; ; i++) {
    if (await page.evaluate(() => Number(document.body.dataset.refreshes || 0)) >= 2) break;
    if (i >= 150) throw new Error('the page did not refresh twice within 30 s');
    await page.waitForTimeout(200);
  }
  const report = await page.evaluate(() => {
    const plots = {};
    for (const p of document.querySelectorAll('svg.budget')) {
      plots[p.dataset.upstream] = {
        t: JSON.parse(p.dataset.t), remaining: JSON.parse(p.dataset.remaining),
        limit: JSON.parse(p.dataset.limit), n429: JSON.parse(p.dataset.n429),
        reserve: Number(p.dataset.reserve), paths: p.querySelectorAll('path.remaining').length,
      };
    }
    const rows = id => [...document.querySelectorAll(`#${id} tbody tr`)].map(
      tr => [...tr.cells].map(c => c.textContent));
    return {
      title: document.title,
      plots,
      images: rows('images'),
      errors: rows('errors'),
      fetches: rows('fetches'),
      cache: document.getElementById('cache').textContent,
      figures: [...document.querySelectorAll('.upstream .figure')].map(f => f.textContent),
      problem: document.getElementById('problem').hidden ? null : document.getElementById('problem').textContent,
      refreshes: Number(document.body.dataset.refreshes),
    };
  });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ status: resp.status(), failed, console_errors, requests, ...report }));
  await context.close();
} catch (e) {
  console.error('status_page.mjs: ' + (e.stack || e));
  if (context) await context.close().catch(() => {});
  process.exit(1);
}
