// The demo page: loads the encoder through the public `localrec` API and shows what
// a typed text becomes.
import { Encoder } from './pkg/index.js';

const $ = (id) => document.getElementById(id);
const status = $('model-status');
const bar = $('model-progress');
const files = new Map();

function showProgress(p) {
  if (p.phase === 'init') {
    status.textContent = 'Starting the model…';
    return;
  }
  files.set(p.file, p);
  let loaded = 0;
  let total = 0;
  for (const f of files.values()) {
    loaded += f.loaded;
    total += f.total;
  }
  bar.max = Math.max(total, 1);
  bar.value = loaded;
  status.textContent = `Downloading the model: ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
}

async function main() {
  const started = performance.now();
  let encoder;
  try {
    encoder = await Encoder.load(new URL('model/', location.href), { backend: 'auto', onProgress: showProgress });
  } catch (e) {
    status.textContent = `The model could not be loaded: ${e.message} (${e.code ?? 'error'})`;
    status.classList.add('error');
    return;
  }
  bar.value = bar.max;
  status.textContent = `Model ready in ${((performance.now() - started) / 1000).toFixed(2)} s`;
  $('backend').textContent = `Backend: ${encoder.backend}, ${encoder.dims} dimensions`;
  document.body.dataset.ready = 'true';
  const input = $('text');
  const button = $('encode');
  input.disabled = false;
  button.disabled = false;
  input.focus();

  $('encode-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    const text = input.value;
    const result = $('result');
    try {
      const t0 = performance.now();
      const [vector, [ids]] = await Promise.all([encoder.embed([text]), encoder.tokenize([text])]);
      const ms = performance.now() - t0;
      const first = Array.from(vector.slice(0, 8), (v) => v.toFixed(4)).join(', ');
      result.replaceChildren();
      const p1 = document.createElement('p');
      p1.innerHTML = `<strong>${ids.length}</strong> tokens → <strong>${encoder.dims}</strong>-d vector in <strong id="ms"></strong>`;
      p1.querySelector('#ms').textContent = `${ms.toFixed(1)} ms`;
      const p2 = document.createElement('p');
      p2.className = 'vector';
      p2.id = 'vector';
      p2.textContent = `[${first}, …]`;
      result.append(p1, p2);
      result.dataset.values = JSON.stringify(Array.from(vector.slice(0, 8)));
    } catch (e) {
      result.textContent = `Encoding failed: ${e.message}`;
      result.className = 'error';
    } finally {
      button.disabled = false;
    }
  });
}

main();
