// The console in a real browser, driven by crates/sparkyard/tests/console.rs, which
// prepares the server (no job-run controller: runs stay PENDING) and checks the results
// with the aws CLI afterwards.
//
// Environment: CONSOLE (base URL), SIGNIN_LINK, VC_IDS (the five, comma-separated),
// VC_MONTHLY, VC_NIGHTLY, RUN_ID, OTHER_RUN_ID, READER_KEY_ID, READER_SECRET,
// READER_TOKEN, SCREENSHOTS (directory), CHROMIUM (path).
import { run, need, check, env, signInWithKey } from './lib.mjs';

const CONSOLE = need('CONSOLE');
const MONTHLY = need('VC_MONTHLY');

await run(async (page, { shot, context }) => {
  const rows = (table) => page.locator(`#${table} tbody tr[data-id]`);

  // 1. The one-time link signs the administrator in and lands on the virtual clusters:
  //    the seed's five.
  await page.goto(need('SIGNIN_LINK'));
  await page.waitForURL(`${CONSOLE}/virtual-clusters`);
  for (const vc of need('VC_IDS').split(',')) {
    await page.locator(`#virtual-clusters tr[data-id="${vc}"]`).waitFor();
  }
  check((await rows('virtual-clusters').count()) === 5, 'five virtual clusters');
  const who = await page.locator('#principal').textContent();
  check(who.endsWith(':root'), `signed in as the administrator, not ${who}`);
  const monthly = page.locator(`#virtual-clusters tr[data-id="${MONTHLY}"]`);
  check((await monthly.locator('td').nth(0).textContent()).trim() === 'monthly-batch-emr-cluster', 'name column');
  check((await monthly.locator('td').nth(3).textContent()) === 'monthly-batch', 'namespace column');
  check((await monthly.locator('td.running').textContent()) === '0', 'running job runs column');
  await shot('virtual-clusters');

  // 2. A virtual cluster's job runs, and the filters.
  await monthly.locator('a').click();
  await page.locator(`#job-runs tr[data-id="${need('RUN_ID')}"]`).waitFor();
  await page.locator(`#job-runs tr[data-id="${need('OTHER_RUN_ID')}"]`).waitFor();
  const theRun = page.locator(`#job-runs tr[data-id="${env.RUN_ID}"]`);
  check((await theRun.locator('td').nth(4).textContent()) === 'emr-7.2.0-latest', 'release column');
  await shot('job-runs');
  await page.selectOption('#filter-state', 'COMPLETED');
  await page.locator('#filters button[type=submit]').click();
  await page.waitForURL(/state=COMPLETED/);
  await page.locator('#job-runs tr.empty').waitFor();
  await page.selectOption('#filter-state', '');
  await page.fill('#filter-name', 'console-pi');
  await page.locator('#filters button[type=submit]').click();
  await page.waitForURL(/name=console-pi/);
  await theRun.waitFor();
  check((await rows('job-runs').count()) === 1, 'the name filter keeps one run');
  await page.fill('#filter-name', '');
  await page.fill('#filter-created-after', '2099-01-01');
  await page.locator('#filters button[type=submit]').click();
  await page.waitForURL(/created_after=2099-01-01/);
  await page.locator('#job-runs tr.empty').waitFor();

  // 3. Live: with the runs list open, a run started from a second tab (the console's
  //    Start job run form) appears in the first without a reload.
  await page.goto(`${CONSOLE}/virtual-clusters/${MONTHLY}`);
  await theRun.waitFor();
  await page.evaluate(() => { window.__notReloaded = true; });
  const before = await rows('job-runs').count();
  const second = await context.newPage();
  await second.goto(`${CONSOLE}/virtual-clusters/${MONTHLY}`);
  await second.locator('#start-job-run').click();
  await second.locator('#start-form').waitFor();
  await second.fill('#start-form [name=name]', 'started-in-the-console');
  await second.fill('#start-form [name=execution_role_arn]', 'arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole');
  await second.fill('#start-form [name=release_label]', 'emr-7.2.0-latest');
  await second.fill('#start-form [name=entry_point]', 'local:///usr/lib/spark/examples/src/main/python/pi.py');
  await second.screenshot({ path: `${need('SCREENSHOTS')}/start-job-run.png`, fullPage: true });
  await second.locator('#start-form button[type=submit]').click();
  await second.waitForURL(/\/job-runs\/[0-9a-z]+(\?started=1)?$/);
  await second.locator('#state').waitFor();
  await second.close();
  await page.locator('#job-runs tr[data-id] a', { hasText: 'started-in-the-console' }).waitFor();
  check(await page.evaluate(() => window.__notReloaded === true), 'the list updated in place, not by a reload');
  check((await rows('job-runs').count()) === before + 1, 'one more run in the live list');

  // 4. The job run's page, and Cancel.
  await theRun.locator('a').click();
  await page.locator('#state', { hasText: 'PENDING' }).waitFor();
  check((await page.locator('#release').textContent()) === 'emr-7.2.0-latest', 'release');
  check((await page.locator('#configuration').textContent()).includes('sparkSubmitJobDriver'), 'configuration JSON');
  await shot('job-run-pending');
  await page.locator('#cancel').click();
  await page.locator('#notice', { hasText: 'Cancellation requested' }).waitFor();
  const state = (await page.locator('#state').textContent()).trim();
  check(['CANCELLED', 'CANCEL_PENDING'].includes(state), `state after cancel: ${state}`);
  check((await page.locator('#cancel').count()) === 0, 'no Cancel button on a cancelled run');

  // 5. EKS: compute (the m5 node with its instance type), resources, one object, events.
  await page.locator('#nav-eks').click();
  await page.locator('#tab-compute').click();
  const node = page.locator('#nodes tr[data-node]').first();
  await node.waitFor();
  const instanceType = (await node.locator('.instance-type').textContent()).trim();
  check(/^m5\./.test(instanceType), `the node's instance type: ${instanceType}`);
  check((await node.locator('.capacity-type').textContent()).trim() !== '', 'capacity type shown');
  check((await node.locator('.zone').textContent()).trim() !== '', 'zone shown');
  await shot('eks-compute');
  await page.locator('#tab-resources').click();
  await page.locator('#resource-types').waitFor();
  for (const plural of ['pods', 'nodes', 'configmaps', 'priorityclasses']) {
    await page.locator(`#resource-types a[href*="/${plural}"]`).first().waitFor();
  }
  await shot('eks-resources');
  await page.goto(`${CONSOLE}/eks/resources/core/v1/configmaps?namespace=monthly-batch`);
  await page.locator('#resource-list a', { hasText: 'monthly-settings' }).click();
  await page.locator('#object-structured').waitFor();
  check((await page.locator('#object-structured').textContent()).includes('team'), 'structured view shows the data');
  await shot('eks-object');
  await page.locator('#view-raw').click();
  await page.locator('#object-raw').waitFor();
  check((await page.locator('#object-raw').textContent()).includes('"monthly-settings"'), 'raw JSON view');
  await page.locator('#tab-events').click();
  await page.locator('#events').waitFor();
  await shot('eks-events');

  // 6. Container Insights: the cluster's dashboard renders its charts.
  await page.locator('#nav-insights').click();
  for (const id of ['chart-cpu-utilization', 'chart-memory-utilization', 'chart-cpu-reserved', 'chart-memory-reserved', 'chart-node-count', 'chart-pod-count']) {
    await page.locator(`#${id}`).waitFor();
  }
  await shot('container-insights');

  // 7. Delete a virtual cluster (adhoc-ml-batch, the fifth): DeleteVirtualCluster.
  const adhoc = need('VC_IDS').split(',')[4];
  await page.goto(`${CONSOLE}/virtual-clusters/${adhoc}`);
  await page.locator('#delete-vc').click();
  await page.locator('#notice', { hasText: 'Virtual cluster deleted' }).waitFor();
  await page.locator('#vc-facts .state', { hasText: 'TERMINATED' }).waitFor();
  check((await page.locator('#delete-vc').count()) === 0, 'no Delete on a terminated cluster');

  // 8. Sign out; the link does not work a second time; nothing answers without a session.
  await page.locator('#signout').click();
  await page.waitForURL(`${CONSOLE}/signin`);
  await page.goto(env.SIGNIN_LINK);
  await page.locator('#message', { hasText: 'already been used' }).waitFor();
  const api = await page.request.get(`${CONSOLE}/api/virtual-clusters`);
  check(api.status() === 401, `API without a session: ${api.status()}`);
  await page.goto(`${CONSOLE}/virtual-clusters`);
  await page.waitForURL(`${CONSOLE}/signin`);

  // 9. The reader: a wrong secret first; then clusters yes, runs no (IAM), and in EKS
  //    only monthly-batch (RBAC through aws-auth).
  await page.fill('#access_key_id', need('READER_KEY_ID'));
  await page.fill('#secret_access_key', 'not-the-secret');
  await page.fill('#session_token', need('READER_TOKEN'));
  await page.locator('#signin button[type=submit]').click();
  await page.locator('#error', { hasText: 'not valid' }).waitFor();
  await shot('signin');
  await signInWithKey(page, CONSOLE, need('READER_KEY_ID'), need('READER_SECRET'), need('READER_TOKEN'));
  const reader = await page.locator('#principal').textContent();
  check(reader.includes(':assumed-role/'), `signed in as the role session, not ${reader}`);
  const readerMonthly = page.locator(`#virtual-clusters tr[data-id="${MONTHLY}"]`);
  await readerMonthly.waitFor();
  check((await readerMonthly.locator('td.running').textContent()) === '—', 'no running count without ListJobRuns');
  await readerMonthly.locator('a').click();
  await page.locator('#error', { hasText: 'not authorized to list the job runs' }).waitFor();
  check((await rows('job-runs').count()) === 0, 'no job runs without ListJobRuns');
  await shot('job-runs-denied');
  await page.goto(`${CONSOLE}/eks/resources/core/v1/configmaps?namespace=monthly-batch`);
  await page.locator('#resource-list a', { hasText: 'monthly-settings' }).waitFor();
  await page.goto(`${CONSOLE}/eks/resources/core/v1/configmaps?namespace=nightly-batch`);
  await page.getByText(/forbidden/i).first().waitFor();
  check((await page.locator('#resource-list a', { hasText: 'nightly-settings' }).count()) === 0, 'no other namespace');
  await shot('eks-namespace-denied');
});
