// The encoder runs in a Web Worker, so the page's main thread keeps running while a large
// batch is embedded. Measured from the page's side only: how long the main thread went
// without running a timer or an animation frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedBrowser, openPage, golden } from './helpers.mjs';

// A frame is 16 ms; a main thread that ran the embedding itself would stall for seconds.
const MAX_GAP_MS = 200;
// Frames also wait for the compositor, another process that, on a loaded 2-core machine,
// competes with the worker for a core (one frame took 250 ms under a parallel build):
// they get a looser bound, still far below what a blocked main thread would show.
const MAX_FRAME_GAP_MS = 500;

const session = sharedBrowser();

test(`the main thread keeps ticking (timer gaps < ${MAX_GAP_MS} ms, frames < ${MAX_FRAME_GAP_MS} ms) while 256 texts are embedded`, { timeout: 300_000 }, async (t) => {
  const { page, errors } = await openPage(session.browser, session.served.blank);
  const texts = Array.from({ length: 256 }, (_, i) => `${golden()[i % 32].text} (variant ${i})`);
  const out = await page.evaluate(async (texts) => {
    const { Encoder } = await import('/pkg/index.js');
    const enc = await Encoder.load('/model/', { backend: 'cpu' });
    // Warm up, so the measured call is all embedding.
    await enc.embed(texts.slice(0, 2));
    const gaps = { timer: [], frame: [] };
    let running = true;
    let lastTimer = performance.now();
    const onTimer = () => {
      const now = performance.now();
      gaps.timer.push(now - lastTimer);
      lastTimer = now;
      if (running) setTimeout(onTimer, 4);
    };
    let lastFrame = null;
    const onFrame = (now) => {
      if (lastFrame !== null) gaps.frame.push(now - lastFrame);
      lastFrame = now;
      if (running) requestAnimationFrame(onFrame);
    };
    setTimeout(onTimer, 4);
    requestAnimationFrame(onFrame);
    const outcome = await settle(() => enc.embed(texts), 240_000);
    running = false;
    // The gap from the last tick to the moment the result arrived counts too.
    gaps.timer.push(performance.now() - lastTimer);
    await enc.close();
    return { outcome: { ok: outcome.ok, length: outcome.value?.length, message: outcome.message }, gaps };
  }, texts);
  assert.deepEqual(out.outcome, { ok: true, length: 256 * 384, message: undefined });
  // Without enough ticks the embedding was too quick for the gaps to say anything.
  assert.ok(out.gaps.timer.length >= 20, `only ${out.gaps.timer.length} timer ticks during the embedding`);
  const maxTimer = Math.max(...out.gaps.timer);
  assert.ok(maxTimer < MAX_GAP_MS, `the main thread went ${maxTimer.toFixed(0)} ms without a timer tick`);
  assert.ok(out.gaps.frame.length >= 5, `only ${out.gaps.frame.length} animation frames during the embedding`);
  const maxFrame = Math.max(...out.gaps.frame);
  assert.ok(maxFrame < MAX_FRAME_GAP_MS, `the main thread went ${maxFrame.toFixed(0)} ms without an animation frame`);
  t.diagnostic(
    `${out.gaps.timer.length} timer ticks, longest gap ${maxTimer.toFixed(1)} ms; ` +
      `${out.gaps.frame.length} frames, longest gap ${maxFrame.toFixed(1)} ms`,
  );
  assert.deepEqual(errors, []);
  await page.close();
});
