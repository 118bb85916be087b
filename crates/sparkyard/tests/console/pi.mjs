// Seed steps 10–11 in the console, driven by crates/sparkyard/tests/logs.rs after pi-4
// ran on real Spark: its page says COMPLETED, shows the three pod roles (job runner,
// driver, executors), the driver's stdout read from the stored log copy, and links the
// finished run's Spark UI in the History Server; its cost record (docs/cost.md) appears on
// the run's page, pod by pod, and in the virtual cluster's list.
//
// Environment: CONSOLE, SIGNIN_LINK, VC, RUN_ID, DRIVER (pod name), HISTORY (the History
// Server's base URL), SCREENSHOTS, CHROMIUM.
import { run, need, check } from './lib.mjs';

const CONSOLE = need('CONSOLE');

await run(async (page, { shot }) => {
  await page.goto(need('SIGNIN_LINK'));
  await page.waitForURL(`${CONSOLE}/virtual-clusters`);
  await page.goto(`${CONSOLE}/virtual-clusters/${need('VC')}/job-runs/${need('RUN_ID')}`);
  await page.locator('#state', { hasText: 'COMPLETED' }).waitFor();
  for (const role of ['job-runner', 'driver', 'executor']) {
    await page.locator(`#pods tr[data-role="${role}"]`).first().waitFor();
  }
  const driver = need('DRIVER');
  check((await page.locator(`#pods tr[data-pod="${driver}"]`).count()) === 1, `the driver ${driver} in the pod chain`);
  const ui = await page.locator('#spark-ui').getAttribute('href');
  check(ui && ui.startsWith(need('HISTORY')), `Spark UI link to the History Server: ${ui}`);
  // The record is written once every pod has ended; the section refreshes itself.
  await page.locator(`#cost tr[data-pod="${driver}"]`).waitFor();
  const total = await page.locator('#cost-total').textContent();
  check(/^\$\d+\.\d{4} — EC2 \$/.test(total), `the run's cost total: ${total}`);
  await shot('job-run');
  await page.locator(`#log-${driver}-stdout`).click();
  await page.locator('#log', { hasText: 'Pi is roughly' }).waitFor();
  await shot('job-run-driver-stdout');
  await page.goto(`${CONSOLE}/virtual-clusters/${need('VC')}`);
  const cost = await page.locator(`#job-runs tr[data-id="${need('RUN_ID')}"] td[data-cost]`).textContent();
  check(/^\$\d+\.\d{4}$/.test(cost.trim()), `the run's cost in the list: ${cost}`);
  await page.locator('#cost-total', { hasText: 'with a cost record' }).waitFor();
});
