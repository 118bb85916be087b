// Shared by the console's browser scripts: launch Debian's chromium through
// playwright-core, check conditions, take screenshots, and report. Every wait is for a
// selector, URL or text; nothing sleeps. A script prints `ok` on success; on the first
// failed check it prints the page's text and exits 1.
import { chromium } from 'playwright-core';

export const env = process.env;

export function need(k) {
  if (!env[k]) throw new Error(`${k} is not set`);
  return env[k];
}

export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

// Runs `steps(page, tools)` in a fresh browser; `tools.shot(name)` saves
// `$SCREENSHOTS/<name>.png`.
export async function run(steps) {
  const browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium' });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(90_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Script errors and CSP violations; not "Failed to load resource" (the refusals the
  // scripts provoke on purpose answer 401/403).
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  const shot = (name) => page.screenshot({ path: `${need('SCREENSHOTS')}/${name}.png`, fullPage: true });
  try {
    await steps(page, { shot, context, errors });
    check(errors.length === 0, `no script or CSP errors in the pages: ${errors.join('\n')}`);
    console.log('ok');
  } catch (e) {
    console.error(e.stack || String(e));
    console.error(`--- at ${page.url()} ---\n${await page.locator('body').innerText().catch(() => '')}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

// Signs in with an access key through the form.
export async function signInWithKey(page, base, keyId, secret, token) {
  await page.goto(`${base}/signin`);
  await page.fill('#access_key_id', keyId);
  await page.fill('#secret_access_key', secret);
  if (token) await page.fill('#session_token', token);
  await page.locator('#signin button[type=submit]').click();
  await page.waitForURL(`${base}/virtual-clusters`);
}
