// Seed steps 16–17 in the console, driven by crates/sparkyard/tests/walkthrough_priorities.rs
// after the high-priority run preempted one of the low run's executors on the node: the
// low run's timeline shows the executor removed and, later, its replacement added; the
// node's Container Insights chart shows Reserved CPU near 100 %.
//
// Environment: CONSOLE, SIGNIN_LINK, VC, RUN_ID, VICTIM_ID (the preempted executor's id),
// REPLACEMENT_ID, NODE, SCREENSHOTS, CHROMIUM.
import { run, need, check } from './lib.mjs';

const CONSOLE = need('CONSOLE');

await run(async (page, { shot }) => {
  await page.goto(need('SIGNIN_LINK'));
  await page.waitForURL(`${CONSOLE}/virtual-clusters`);
  await page.goto(`${CONSOLE}/virtual-clusters/${need('VC')}/job-runs/${need('RUN_ID')}`);
  await page.locator('#state', { hasText: 'COMPLETED' }).waitFor();
  const timeline = page.locator('#timeline');
  const removed = timeline.locator('[data-kind="spark"]', { hasText: `Executor ${need('VICTIM_ID')} removed` });
  const added = timeline.locator('[data-kind="spark"]', { hasText: `Executor ${need('REPLACEMENT_ID')} added` });
  await removed.first().waitFor();
  await added.first().waitFor();
  await timeline.locator('[data-kind="k8s"]', { hasText: 'Preempted' }).first().waitFor();
  // Rows are in time order: the removal comes before the replacement.
  const texts = await timeline.locator('[data-kind]').allTextContents();
  const at = (re) => texts.findIndex((t) => re.test(t));
  check(at(new RegExp(`Executor ${need('VICTIM_ID')} removed`)) < at(new RegExp(`Executor ${need('REPLACEMENT_ID')} added`)),
    `removed before added:\n${texts.join('\n')}`);
  await shot('job-run-preempted-timeline');

  await page.goto(`${CONSOLE}/container-insights?view=node&node=${encodeURIComponent(need('NODE'))}&range=15m`);
  const chart = page.locator('#chart-cpu-reserved svg[data-max]');
  await chart.waitFor();
  const max = Number(await chart.getAttribute('data-max'));
  check(max >= 85, `Reserved CPU on ${need('NODE')} peaked at ${max} %`);
  await shot('container-insights-node');
});
