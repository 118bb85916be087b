// The console in a real browser (Debian's chromium through playwright-core), driven by
// crates/sparkyard/tests/console.rs, which prepares the server and checks the results
// with the aws CLI. Every wait is for a selector, URL or text; nothing sleeps. Exits 1
// with the page's text on the first failed check.
//
// Environment: CONSOLE (base URL), SIGNIN_LINK, VC_ALPHA, VC_BETA, RUN_ID, OTHER_RUN_ID,
// READER_KEY_ID, READER_SECRET, READER_TOKEN, SCREENSHOTS (directory), CHROMIUM (path).
import { chromium } from 'playwright-core';

const env = process.env;
const need = (k) => {
  if (!env[k]) throw new Error(`${k} is not set`);
  return env[k];
};
const CONSOLE = need('CONSOLE');

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

const browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium' });
const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
const page = await context.newPage();
page.setDefaultTimeout(60_000);
const shot = (name) => page.screenshot({ path: `${need('SCREENSHOTS')}/${name}.png`, fullPage: true });
const rows = (table) => page.locator(`#${table} tbody tr[data-id]`);

try {
  // 1. The one-time link signs the administrator in and lands on the virtual clusters.
  await page.goto(need('SIGNIN_LINK'));
  await page.waitForURL(`${CONSOLE}/virtual-clusters`);
  await page.locator('h1', { hasText: 'Virtual clusters' }).waitFor();
  for (const vc of [need('VC_ALPHA'), need('VC_BETA')]) {
    await page.locator(`#virtual-clusters tr[data-id="${vc}"]`).waitFor();
  }
  const who = await page.locator('#principal').textContent();
  check(who.endsWith(':root'), `signed in as the administrator, not ${who}`);
  const alpha = page.locator(`#virtual-clusters tr[data-id="${env.VC_ALPHA}"]`);
  check((await alpha.locator('td').nth(3).textContent()) === 'console-alpha', 'namespace column');
  check((await alpha.locator('td.running').textContent()) === '0', 'running job runs column');
  await shot('virtual-clusters');

  // 2. A virtual cluster's job runs, and the filters.
  await alpha.locator('a').click();
  await page.locator(`#job-runs tr[data-id="${need('RUN_ID')}"]`).waitFor();
  await page.locator(`#job-runs tr[data-id="${need('OTHER_RUN_ID')}"]`).waitFor();
  const run = page.locator(`#job-runs tr[data-id="${env.RUN_ID}"]`);
  check((await run.locator('td').nth(4).textContent()) === 'emr-7.2.0-latest', 'release column');
  await shot('job-runs');
  await page.selectOption('#filter-state', 'COMPLETED');
  await page.locator('#filters button[type=submit]').click();
  await page.waitForURL(/state=COMPLETED/);
  await page.locator('#job-runs tr.empty').waitFor();
  check((await rows('job-runs').count()) === 0, 'no COMPLETED runs');
  await page.selectOption('#filter-state', '');
  await page.fill('#filter-name', 'console-pi');
  await page.locator('#filters button[type=submit]').click();
  await page.waitForURL(/name=console-pi/);
  await run.waitFor();
  check((await rows('job-runs').count()) === 1, 'the name filter keeps one run');
  await page.fill('#filter-name', '');
  await page.fill('#filter-created-after', '2099-01-01');
  await page.locator('#filters button[type=submit]').click();
  await page.waitForURL(/created_after=2099-01-01/);
  await page.locator('#job-runs tr.empty').waitFor();

  // 3. The job run's page, and Cancel.
  await page.goto(`${CONSOLE}/virtual-clusters/${env.VC_ALPHA}`);
  await run.locator('a').click();
  await page.locator('#state', { hasText: 'PENDING' }).waitFor();
  check((await page.locator('#release').textContent()) === 'emr-7.2.0-latest', 'release');
  check((await page.locator('#configuration').textContent()).includes('sparkSubmitJobDriver'), 'configuration JSON');
  await shot('job-run');
  await page.locator('#cancel').click();
  await page.locator('#notice', { hasText: 'Cancellation requested' }).waitFor();
  const state = (await page.locator('#state').textContent()).trim();
  check(['CANCELLED', 'CANCEL_PENDING'].includes(state), `state after cancel: ${state}`);
  check((await page.locator('#cancel').count()) === 0, 'no Cancel button on a cancelled run');
  await shot('job-run-cancelled');

  // 4. Sign out; the link does not work a second time; nothing answers without a session.
  await page.locator('#signout').click();
  await page.waitForURL(`${CONSOLE}/signin`);
  await page.goto(env.SIGNIN_LINK);
  await page.locator('#message', { hasText: 'already been used' }).waitFor();
  const api = await page.request.get(`${CONSOLE}/api/virtual-clusters`);
  check(api.status() === 401, `API without a session: ${api.status()}`);
  await page.goto(`${CONSOLE}/virtual-clusters`);
  await page.waitForURL(`${CONSOLE}/signin`);

  // 5. An access key whose policy lacks ListJobRuns: clusters yes, runs no.
  await page.fill('#access_key_id', need('READER_KEY_ID'));
  await page.fill('#secret_access_key', 'not-the-secret');
  await page.fill('#session_token', need('READER_TOKEN'));
  await page.locator('#signin button[type=submit]').click();
  await page.locator('#error', { hasText: 'not valid' }).waitFor();
  await page.fill('#secret_access_key', need('READER_SECRET'));
  await page.fill('#session_token', need('READER_TOKEN'));
  await shot('signin');
  await page.locator('#signin button[type=submit]').click();
  await page.waitForURL(`${CONSOLE}/virtual-clusters`);
  const reader = await page.locator('#principal').textContent();
  check(reader.includes(':assumed-role/'), `signed in as the role session, not ${reader}`);
  const readerAlpha = page.locator(`#virtual-clusters tr[data-id="${env.VC_ALPHA}"]`);
  await readerAlpha.waitFor();
  check((await readerAlpha.locator('td.running').textContent()) === '—', 'no running count without ListJobRuns');
  await readerAlpha.locator('a').click();
  await page.locator('#error', { hasText: 'not authorized to list the job runs' }).waitFor();
  check((await rows('job-runs').count()) === 0, 'no job runs without ListJobRuns');
  await shot('job-runs-denied');

  console.log('ok');
} catch (e) {
  console.error(e.stack || String(e));
  console.error(`--- at ${page.url()} ---\n${await page.locator('body').innerText().catch(() => '')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
