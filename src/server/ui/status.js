// SPDX-License-Identifier: Apache-2.0
// status.js - pullcache's status page: every few seconds it reads
// /_pullcache/status (budgets, traffic, fetches, images, errors, cache size)
// and the new samples of /_pullcache/history, and draws them: per upstream
// an SVG plot of the pull budget (remaining and limit, the reserve line,
// 429s marked) and the cache's figures. No library: DOM and SVG by hand.
// Every drawn plot carries its numbers in data-* attributes (data-t,
// data-remaining, data-limit, data-n429: JSON arrays), so what is shown can
// be checked.
'use strict';

const REFRESH_MS = 5000;
const SVGNS = 'http://www.w3.org/2000/svg';
const hist = { interval: 10, capacity: 0, fields: [], ups: new Map(), last: -1 };

// A bar filled to fraction f (0..1). Its width is set through the CSSOM:
// the page's Content-Security-Policy refuses style attributes.
function fill(f) {
  const d = document.createElement('div');
  d.style.width = (100 * Math.max(0, Math.min(1, f))).toFixed(1) + '%';
  return d;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}
function bytes(n) {
  if (n === null || n === undefined) return '?';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}
function ago(t, now) {
  const s = Math.max(0, now - t);
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min ago';
}
function clock(t) {
  const d = new Date(t * 1000);
  return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
}
function pct(a, b) { return b > 0 ? (100 * a / b).toFixed(1) + ' %' : '–'; }

async function getJSON(path) {
  const r = await fetch(path, { cache: 'no-store', credentials: 'same-origin' });
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}

// Merge the new samples of a history document into hist.
function mergeHistory(doc) {
  hist.interval = doc.interval;
  hist.capacity = doc.capacity;
  hist.fields = doc.fields;
  for (const u of doc.upstreams) {
    let rows = hist.ups.get(u.name);
    if (!rows) { rows = []; hist.ups.set(u.name, rows); }
    for (const s of u.samples) {
      if (!rows.length || s[0] > rows[rows.length - 1][0]) rows.push(s);
      if (s[0] > hist.last) hist.last = s[0];
    }
    if (rows.length > doc.capacity) rows.splice(0, rows.length - doc.capacity);
  }
}

function column(name) { return hist.fields.indexOf(name); }

// The budget plot of one upstream's samples, width pixels wide.
function budgetPlot(name, rows, reserve, width) {
  const W = Math.max(300, Math.round(width)), H = 180, L = 44, R = 8, T = 10, B = 22;
  const it = column('t'), ir = column('remaining'), il = column('limit'), i429 = column('n429');
  const p = svg('svg', { class: 'budget', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `pull budget of ${name}` });
  const ts = rows.map(r => r[it]), rem = rows.map(r => r[ir]), lim = rows.map(r => r[il]);
  const n429 = rows.map(r => r[i429]);
  p.dataset.upstream = name;
  p.dataset.t = JSON.stringify(ts);
  p.dataset.remaining = JSON.stringify(rem);
  p.dataset.limit = JSON.stringify(lim);
  p.dataset.n429 = JSON.stringify(n429);
  p.dataset.reserve = String(reserve);
  const now = Date.now() / 1000;
  const t1 = ts.length ? Math.max(ts[ts.length - 1], Math.min(now, ts[ts.length - 1] + 60)) : now;
  const t0 = ts.length ? Math.min(ts[0], t1 - 120) : t1 - 120;
  let ymax = Math.max(reserve, 1, ...rem.filter(v => v !== null), ...lim.filter(v => v !== null));
  ymax = Math.ceil(ymax * 1.05);
  const x = t => L + (W - L - R) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  for (const v of [0, Math.round(ymax / 2), ymax]) {
    p.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const lab = svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' });
    lab.textContent = String(v);
    p.append(lab);
  }
  for (const [t, anchor] of [[t0, 'start'], [t1, 'end']]) {
    const lab = svg('text', { x: x(t), y: H - 6, 'text-anchor': anchor });
    lab.textContent = clock(t);
    p.append(lab);
  }
  const line = (vals, cls) => {
    let d = '', pen = false;
    vals.forEach((v, k) => {
      if (v === null) { pen = false; return; }
      d += (pen ? 'L' : 'M') + x(ts[k]).toFixed(1) + ',' + y(v).toFixed(1);
      pen = true;
    });
    if (d) p.append(svg('path', { class: cls, d }));
  };
  line(lim, 'limit');
  if (reserve > 0)
    p.append(svg('line', { class: 'reserve', x1: L, x2: W - R, y1: y(reserve), y2: y(reserve) }));
  line(rem, 'remaining');
  n429.forEach((n, k) => {
    if (n > 0) {
      const cx = x(ts[k]);
      const m = svg('path', { class: 'e429', d: `M${cx - 5},${T}L${cx + 5},${T}L${cx},${T + 9}Z` });
      const tip = svg('title');
      tip.textContent = `${n} × 429 at ${clock(ts[k])}`;
      m.append(tip);
      p.append(m);
    }
  });
  if (!rows.length) {
    const lab = svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' });
    lab.textContent = `no samples yet (one every ${hist.interval} s)`;
    p.append(lab);
  }
  return p;
}

function figure(value, label) {
  return el('div', { class: 'figure' }, el('b', {}, value), el('span', {}, label));
}

function drawUpstreams(st) {
  const box = document.getElementById('upstreams');
  const traffic = new Map((st.traffic || []).map(t => [t.upstream, t]));
  const cards = [];
  for (const u of st.upstreams) {
    const rl = u.ratelimit;
    const state = rl ? rl.state : 'unknown';
    const tr = traffic.get(u.name) || {};
    const rows = hist.ups.get(u.name) || [];
    const head = el('h2', {}, u.name, el('span', { class: 'badge ' + state }, state));
    const sub = el('div', { class: 'muted' }, `${u.url} · credential ${u.credential}` +
      (rl && rl.remaining !== null ? ` · ${rl.remaining} of ${rl.limit ?? '?'} pulls left` : ''));
    const legend = el('div', { class: 'legend' },
      el('span', {}, el('i', { class: 'l-rem' }), 'remaining'),
      el('span', {}, el('i', { class: 'l-lim' }), 'limit'),
      el('span', {}, el('i', { class: 'l-res' }), `reserve (${u.reserve})`),
      el('span', {}, el('i', { class: 'l-429' }), '429'));
    const hits = tr.hits || 0, misses = tr.misses || 0;
    const figs = el('div', { class: 'figures' },
      figure(pct(hits, hits + misses), 'hit ratio'),
      figure(String(tr.pulls ?? 0), 'upstream pulls'),
      figure(String(tr.pulls_avoided ?? 0), 'pulls avoided'),
      figure(bytes(tr.bytes_avoided ?? 0), 'bytes avoided'),
      figure(bytes(tr.bytes ?? 0), 'from upstream'),
      figure(String(tr.errors_429 ?? 0), '429s'));
    const slot = el('div', { class: 'plot' });
    const card = el('article', { class: 'upstream', 'data-upstream': u.name }, head, sub, slot,
      legend, figs);
    card.plot = () => slot.replaceWith(budgetPlot(u.name, rows, u.reserve, slot.clientWidth || 600));
    cards.push(card);
  }
  box.replaceChildren(...cards);
  for (const c of cards) c.plot(); // now laid out: drawn at the width they have, unscaled
}

function fillTable(id, rows) {
  const t = document.getElementById(id);
  t.tBodies[0].replaceChildren(...rows);
  t.classList.toggle('has-rows', rows.length > 0);
}

function drawCache(st) {
  const s = st.store || {}, max = st.cache.max_size;
  const used = s.mirrored_bytes || 0;
  const kids = [];
  if (max > 0) {
    const bar = el('div', { class: 'bar' + (used > max ? ' over' : '') },
      fill(used / max));
    bar.setAttribute('role', 'meter');
    bar.setAttribute('aria-valuenow', String(used));
    bar.setAttribute('aria-valuemax', String(max));
    kids.push(el('p', {}, `${bytes(used)} of ${bytes(max)} (max_size) mirrored`), bar);
  } else {
    kids.push(el('p', {}, `${bytes(used)} mirrored; no max_size cap`));
  }
  kids.push(el('p', { class: 'muted' }, `store: ${s.blobs ?? 0} blobs, ${bytes(s.bytes ?? 0)}` +
    ' (counted every 5 minutes)'));
  document.getElementById('cache').replaceChildren(...kids);
}

function drawFetches(st) {
  fillTable('fetches', (st.fetches || []).map(f => {
    const frac = f.total ? f.received / f.total : 0;
    const bar = el('div', { class: 'bar', title: `${bytes(f.received)} of ${bytes(f.total)}` },
      fill(frac));
    return el('tr', {}, el('td', {}, f.upstream), el('td', {}, f.repository),
      el('td', {}, el('code', {}, f.digest.slice(0, 19))),
      el('td', {}, bar, `${bytes(f.received)} / ${f.total === null ? '?' : bytes(f.total)}`),
      el('td', {}, ago(f.started, st.now)));
  }));
}

function drawImages(st) {
  fillTable('images', (st.images || []).map(i => el('tr', {},
    el('td', {}, `${i.upstream}/${i.repository}:${i.tag}`),
    el('td', { class: 'num' }, String(i.pulls)), el('td', {}, ago(i.last, st.now)))));
}

function drawErrors(st) {
  fillTable('errors', (st.errors || []).map(e => el('tr', {},
    el('td', {}, ago(e.at, st.now)), el('td', {}, e.upstream), el('td', {}, e.class),
    el('td', {}, e.status === null ? '–' : String(e.status)),
    el('td', {}, `${e.method} ${e.kind} ${e.repository}`))));
}

function uptime(s) {
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : `${m} min ${s % 60} s`;
}

async function refresh() {
  const problem = document.getElementById('problem');
  try {
    const [st, h] = await Promise.all([getJSON('/_pullcache/status'),
      getJSON('/_pullcache/history' + (hist.last >= 0 ? '?since=' + hist.last : ''))]);
    mergeHistory(h);
    document.getElementById('version').textContent = 'version ' + st.version;
    document.getElementById('uptime').textContent = 'up ' + uptime(st.uptime_seconds);
    drawUpstreams(st);
    drawCache(st);
    drawFetches(st);
    drawImages(st);
    drawErrors(st);
    document.getElementById('refreshed').textContent = 'updated ' + new Date().toLocaleTimeString();
    problem.hidden = true;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (e) {
    problem.textContent = String(e.message || e);
    problem.hidden = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
