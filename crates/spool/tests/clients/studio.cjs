// Drives Spool Studio in a real headless Chromium with playwright-core, as a user would, and
// prints what it saw as one JSON object; `tests/studio.rs` asserts on it. Screenshots of each
// page go to $SHOTS.
//
// Environment: PLAYWRIGHT (the playwright-core folder), CHROMIUM, STUDIO (the server's URL),
// ALICE and BOB (tokens), DONE_JOB, PIPELINE, RUNNING_JOB, SESSION (alice's), SHOTS.
"use strict";

const path = require("path");
const { chromium } = require(process.env.PLAYWRIGHT);

const base = process.env.STUDIO;
const seen = {};
const shots = process.env.SHOTS;

async function signIn(browser, token) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const first = await page.goto(`${base}/studio/jobs`);
  const status = first.status();
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(/\/studio\/jobs$/), page.click("button[type=submit]")]);
  return { context, page, status };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  try {
    // Alice signs in where she wanted to go, and sees her jobs.
    const alice = await signIn(browser, process.env.ALICE);
    const page = alice.page;
    seen.unsigned_status = alice.status;
    seen.user = (await page.textContent("[data-testid=user]")).trim();
    seen.jobs = await page.$$eval("[data-testid=jobs] tbody tr", (rows) =>
      rows.map((r) => Array.from(r.cells).map((c) => c.textContent.trim())),
    );
    await shot(page, "jobs");

    // A completed job: its status, phase timeline and log.
    await page.goto(`${base}/studio/jobs/${process.env.DONE_JOB}`);
    seen.done_status = (await page.textContent("[data-testid=status]")).trim();
    seen.done_phases = await page.$$eval("[data-testid=timeline] .segment", (segments) =>
      segments.map((s) => ({
        name: s.querySelector(".name").textContent,
        duration: s.querySelector(".duration").textContent,
      })),
    );
    await page.waitForFunction(
      () => Array.from(document.querySelectorAll("[data-testid=log]")).some((p) =>
        p.textContent.includes("hello from the studio test")),
      null,
      { timeout: 20000 },
    );
    seen.done_log = true;
    await shot(page, "job");

    // A pipeline: its graph, then a click on a node opens that node's job.
    await page.goto(`${base}/studio/jobs/${process.env.PIPELINE}`);
    seen.graph = await page.$$eval("[data-testid=graph-node]", (nodes) =>
      nodes.map((n) => ({ node: n.dataset.node, status: n.dataset.status })),
    );
    seen.graph_edges = await page.$$eval("[data-testid=graph] path.edge", (edges) => edges.length);
    await shot(page, "pipeline");
    await Promise.all([page.waitForURL(/\/studio\/jobs\//), page.click("[data-testid=graph-node][data-node=second]")]);
    seen.node_page_title = (await page.textContent("h1")).trim();
    seen.node_page_parent = (await page.textContent(".crumbs a:nth-of-type(2)")).trim();
    await page.waitForFunction(
      () => Array.from(document.querySelectorAll("[data-testid=log]")).some((p) =>
        p.textContent.includes("rows read")),
      null,
      { timeout: 20000 },
    );
    seen.node_log = await page.$$eval("[data-testid=log]", (pres) => pres.map((p) => p.textContent).join(""));
    await shot(page, "node");
    // The node's input is the first node's output folder: its link browses it.
    await Promise.all([page.waitForURL(/\/studio\/datastores\//), page.click("table a[href^='/studio/datastores/']")]);
    seen.node_input_files = await page.$$eval("[data-testid=entries] tbody tr td:first-child", (cells) =>
      cells.map((c) => c.textContent.trim()),
    );

    // A running job: its log grows on the page without a reload.
    await page.goto(`${base}/studio/jobs/${process.env.RUNNING_JOB}`);
    const logText = () =>
      page.$$eval("[data-testid=log]", (pres) => pres.map((p) => p.textContent).join(""));
    await page.waitForFunction(
      () => Array.from(document.querySelectorAll("[data-testid=log]")).some((p) =>
        p.textContent.includes("tick 1")),
      null,
      { timeout: 180000 },
    );
    const navigations = await page.evaluate(() => performance.getEntriesByType("navigation").length);
    seen.running_status = (await page.textContent("[data-testid=status]")).trim();
    const before = (await logText()).length;
    const ticks = (await logText()).match(/tick \d+/g) || [];
    const next = `tick ${Number(ticks[ticks.length - 1].split(" ")[1]) + 2}\n`;
    await page.waitForFunction(
      (next) => Array.from(document.querySelectorAll("[data-testid=log]")).some((p) =>
        p.textContent.includes(next)),
      next,
      { timeout: 60000 },
    );
    const after = (await logText()).length;
    seen.running_log_grew = after > before;
    seen.running_same_document =
      navigations === (await page.evaluate(() => performance.getEntriesByType("navigation").length));
    await shot(page, "running-job");
    // The Spark UI button: the driver's pages through the server, whose links lead back there.
    await page.click("[data-testid=spark-ui]");
    await page.waitForLoadState("load");
    seen.spark_ui_page = new URL(page.url()).pathname;
    seen.spark_ui_links = await page.$$eval("a[href], link[href], script[src]", (els) =>
      els.map((e) => e.getAttribute("href") || e.getAttribute("src")).filter((u) => u.startsWith("/")),
    );
    seen.spark_ui_stylesheet = await page.evaluate(async () => {
      const css = document.querySelector("link[rel=stylesheet]");
      return css ? (await fetch(css.href)).status : null;
    });
    await shot(page, "spark-ui");
    await page.click("a[href$='/stages/']");
    await page.waitForLoadState("load");
    seen.spark_ui_stages = new URL(page.url()).pathname;
    // Its REST API the same way, opened by the sign-in cookie alone.
    const ui = await page.goto(`${base}/api/v1/jobs/${process.env.RUNNING_JOB}/sparkui/api/v1/applications`);
    seen.spark_ui_status = ui.status();
    seen.spark_ui_apps = JSON.parse(await page.textContent("body")).map((app) => app.id);

    // A session: run a statement and see its output.
    await page.goto(`${base}/studio/sessions/${process.env.SESSION}`);
    seen.session_state = (await page.textContent("[data-testid=state]")).trim();
    await page.fill("#code", "spark.range(1000).selectExpr('sum(id)').first()[0]");
    await page.click("form.run button[type=submit]");
    await page.waitForSelector("[data-testid=output]", { timeout: 120000 });
    seen.statement_output = (await page.textContent("[data-testid=output]")).trim();
    seen.session_phases = await page.$$eval("[data-testid=timeline] .segment .name", (names) =>
      names.map((n) => n.textContent),
    );
    await shot(page, "session");

    // The datastore: the pipeline's first node wrote its output under `azureml/`.
    await page.goto(`${base}/studio/datastores/workspaceblobstore`);
    await Promise.all([page.waitForURL(/path=azureml/), page.click("[data-testid=entries] a >> text=azureml/")]);
    seen.datastore_folders = await page.$$eval("[data-testid=entries] tbody tr td:first-child", (cells) =>
      cells.map((c) => c.textContent.trim()),
    );
    await shot(page, "datastore");

    // The compute page shows the clusters in use; the start-time chart has the session's start.
    await page.goto(`${base}/studio/compute`);
    seen.clusters = await page.$$eval("[data-testid=clusters] tbody tr", (rows) =>
      rows.map((r) => r.cells[1].textContent.trim()),
    );
    seen.cluster_workers = await page.$$eval("[data-testid=workers] div", (lines) =>
      lines.map((l) => l.textContent.trim()),
    );
    await shot(page, "compute");
    await page.goto(`${base}/studio/starts`);
    seen.starts = await page.$$eval("[data-testid=starts] .start-row", (rows) =>
      rows.map((r) => ({
        what: r.dataset.what,
        kind: r.dataset.kind,
        href: r.querySelector("a").getAttribute("href"),
        phases: r.querySelectorAll(".segment").length,
      })),
    );
    await shot(page, "starts");
    await page.goto(`${base}/studio/sessions`);
    seen.sessions_rows = await page.$$eval("[data-testid=sessions] tbody tr", (rows) => rows.length);
    await shot(page, "sessions");
    await page.goto(`${base}/studio/datastores`);
    seen.datastores_names = await page.$$eval("[data-testid=datastores] tbody tr td:first-child", (cells) =>
      cells.map((c) => c.textContent.trim()),
    );
    await shot(page, "datastores");
    await page.goto(`${base}/studio/environments`);
    seen.environments_rows = await page.$$eval("[data-testid=environments] tbody tr", (rows) => rows.length);
    await shot(page, "environments");
    await page.click("[data-testid=build-log]");
    await page.waitForLoadState("load");
    seen.environment_log = await page.textContent("body");

    // A narrow window: nothing spills sideways (wide tables scroll inside their card).
    await page.setViewportSize({ width: 390, height: 844 });
    for (const url of [
      `/studio/jobs`,
      `/studio/jobs/${process.env.DONE_JOB}`,
      `/studio/jobs/${process.env.PIPELINE}`,
      `/studio/sessions/${process.env.SESSION}`,
      `/studio/compute`,
      `/studio/starts`,
      `/studio/sessions`,
      `/studio/datastores`,
      `/studio/environments`,
    ]) {
      await page.goto(`${base}${url}`);
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      seen[`narrow_overflow ${url}`] = overflow;
    }
    await shot(page, "narrow-session");

    // Signing out ends the session: the next page asks to sign in again.
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${base}/studio/jobs`);
    await Promise.all([page.waitForURL(/signin/), page.click("header .signout button")]);
    const again = await page.goto(`${base}/studio/jobs`);
    seen.after_signout_status = again.status();
    await alice.context.close();

    // Bob cannot see Alice's job, and a form without its CSRF token is refused.
    const bob = await signIn(browser, process.env.BOB);
    const refused = await bob.page.goto(`${base}/studio/jobs/${process.env.DONE_JOB}`);
    seen.bob_status = refused.status();
    seen.bob_message = (await bob.page.textContent("[role=alert]")).trim();
    seen.bob_jobs = await bob.page.$$eval("[data-testid=jobs] tbody tr", (rows) => rows.length);
    await shot(bob.page, "refused");
    seen.forged_post_status = await bob.page.evaluate(async (name) => {
      const response = await fetch(`/studio/jobs/${name}/cancel`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "csrf=forged",
      });
      return response.status;
    }, process.env.RUNNING_JOB);
    await bob.context.close();

    // A wrong token gets the form back with a message.
    const stranger = await browser.newContext();
    const spage = await stranger.newPage();
    await spage.goto(`${base}/studio/signin`);
    await spage.fill("#token", "spool_not-a-token");
    const [answer] = await Promise.all([
      spage.waitForResponse((r) => r.url().endsWith("/studio/signin") && r.request().method() === "POST"),
      spage.click("button[type=submit]"),
    ]);
    seen.wrong_token_status = answer.status();
    seen.wrong_token_message = (await spage.textContent("[role=alert]")).trim();
    await stranger.close();
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify(seen) + "\n");
  console.error(e);
  process.exit(1);
});
