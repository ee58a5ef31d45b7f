// Boost dashboard: the little JavaScript the server-rendered pages need.
// Everything user-supplied is written with textContent, never innerHTML.
(function () {
  'use strict';
  var csrf = document.body.dataset.csrf || '';
  var SVG = 'http://www.w3.org/2000/svg';
  var PALETTE = ['#4f46e5', '#0ea5e9', '#10b981', '#f59e0b', '#ef4444', '#8b5cf6', '#14b8a6', '#9ca3af'];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  function pad(n) { return n < 10 ? '0' + n : '' + n; }
  function when(iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + ' UTC';
  }
  function num(n) { return Number(n).toLocaleString('en-US'); }

  // Copy buttons.
  document.querySelectorAll('[data-copy]').forEach(function (b) {
    b.addEventListener('click', function () {
      var src = document.querySelector(b.dataset.copy);
      if (!src) return;
      var text = src.textContent;
      var done = function () { var t = b.textContent; b.textContent = 'Copied'; setTimeout(function () { b.textContent = t; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallback(src); done(); });
      } else { fallback(src); done(); }
    });
  });
  function fallback(src) {
    var r = document.createRange(); r.selectNodeContents(src);
    var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
    try { document.execCommand('copy'); } catch (e) { /* selected for a manual copy */ }
  }

  // "Send a test event" without leaving the page.
  var testForm = document.getElementById('test-event');
  if (testForm) {
    testForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var b = testForm.querySelector('button');
      b.disabled = true;
      fetch(testForm.action, { method: 'POST', credentials: 'same-origin',
        headers: { 'X-CSRF-Token': csrf, 'Accept': 'application/json' } })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
        .then(function (res) {
          b.textContent = res.ok ? 'Test event sent ✓' : 'Not sent: ' + ((res.j.error || {}).message || 'error');
        })
        .catch(function () { b.textContent = 'Not sent: the server did not answer'; })
        .finally(function () { setTimeout(function () { b.disabled = false; b.textContent = 'Send a test event'; }, 1500); });
    });
  }

  // Live tail over Server-Sent Events.
  var tail = document.getElementById('tail');
  if (tail && tail.dataset.stream) {
    var body = tail.querySelector('tbody');
    var base = tail.dataset.base;
    var state = document.getElementById('live-state');
    var pauseBtn = document.getElementById('pause');
    var paused = false, queued = [], held = 0;
    var setState = function (text, cls) { if (state) { state.textContent = text; state.className = 'pill ' + cls; } };

    var statusCell = function (td, status, reason) {
      td.textContent = '';
      td.appendChild(el('span', { 'class': 'status ' + status }, status));
      if (reason) { td.appendChild(document.createTextNode(' ')); td.appendChild(el('span', { 'class': 'reason' }, reason)); }
    };
    var apply = function (e) {
      var row = body.querySelector('tr[data-id="' + CSS.escape(e.id) + '"]');
      if (e.outcome) {
        if (row) statusCell(row.cells[3], e.status, e.reason);
        return;
      }
      if (row) { statusCell(row.cells[3], e.status, e.reason); return; }
      row = el('tr', { 'data-id': e.id, 'class': 'fresh' });
      row.appendChild(el('td', { 'class': 'nowrap', title: 'received ' + when(e.receivedAt) }, when(e.occurredAt)));
      var name = el('td'); name.appendChild(el('a', { href: base + '/events/' + encodeURIComponent(e.id), 'class': 'event-name' }, e.event));
      row.appendChild(name);
      var user = el('td', { 'class': 'mono' });
      if (e.userId) user.appendChild(el('a', { href: base + '/users/profile?id=' + encodeURIComponent(e.userId) }, e.userId));
      else user.appendChild(el('span', { 'class': 'muted' }, e.anonymousId || ''));
      row.appendChild(user);
      var st = el('td'); statusCell(st, e.status, e.reason); row.appendChild(st);
      body.insertBefore(row, body.firstChild);
      while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
      var empty = document.getElementById('tail-empty'); if (empty) empty.remove();
    };
    var source = new EventSource(tail.dataset.stream);
    source.onopen = function () { setState(paused ? 'Paused' : 'Live', paused ? 'paused' : 'live'); };
    source.onerror = function () { setState('Reconnecting…', 'down'); };
    source.onmessage = function (m) {
      var e; try { e = JSON.parse(m.data); } catch (x) { return; }
      if (paused) {
        if (queued.length < 5000) queued.push(e);
        if (!e.outcome) { held++; setState('Paused · ' + held + ' new', 'paused'); }
        return;
      }
      apply(e);
    };
    if (pauseBtn) pauseBtn.addEventListener('click', function () {
      paused = !paused;
      pauseBtn.textContent = paused ? 'Resume' : 'Pause';
      if (!paused) { queued.splice(0).forEach(apply); held = 0; setState('Live', 'live'); } else setState('Paused', 'paused');
    });
  }

  // Charts: plain SVG, drawn from the query API (GET /v1/projects/{id}/analytics/…),
  // which accepts the dashboard's session for reads.
  // Bucket labels in the page's time zone (buckets start at its midnights).
  var label = function (iso, bucket, tz) {
    var parts = {};
    try {
      new Intl.DateTimeFormat('en-GB', { timeZone: tz || 'UTC', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' })
        .formatToParts(new Date(iso)).forEach(function (p) { parts[p.type] = p.value; });
    } catch (e) {
      var d = new Date(iso);
      parts = { month: pad(d.getUTCMonth() + 1), day: pad(d.getUTCDate()), hour: pad(d.getUTCHours()) };
    }
    var md = parts.month + '-' + parts.day;
    return bucket === 'hour' || bucket === 'minute' ? md + ' ' + parts.hour + 'h' : md;
  };
  var money = function (cents) {
    return (cents / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  };
  // The seven busiest types keep their own colour; the rest are summed.
  var busiest = function (series) {
    if (series.length <= 8) return series;
    var sorted = series.slice().sort(function (a, b) { return b.total - a.total || (a.name < b.name ? -1 : 1); });
    var other = { name: '(other)', counts: sorted[0].counts.map(function () { return 0; }), total: 0 };
    sorted.slice(7).forEach(function (s) {
      s.counts.forEach(function (c, i) { other.counts[i] += c; });
      other.total += s.total;
    });
    return sorted.slice(0, 7).concat([other]);
  };
  var legend = function (id, items) {
    var ul = document.getElementById(id);
    if (!ul) return;
    ul.textContent = '';
    items.forEach(function (it, i) {
      var li = el('li', { 'data-series': it.name });
      li.appendChild(el('span', { 'class': 'swatch c' + (i % 8) }));
      li.appendChild(el('span', { 'class': 'event-name' }, it.name));
      li.appendChild(document.createTextNode(' '));
      li.appendChild(el('strong', { 'class': 'total' }, it.total));
      if (it.note) { li.appendChild(document.createTextNode(' ')); li.appendChild(el('span', { 'class': 'muted' }, it.note)); }
      ul.appendChild(li);
    });
  };
  document.querySelectorAll('.chart[data-src]').forEach(function (host) {
    host.textContent = 'Loading…';
    fetch(host.dataset.src, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) throw new Error((j.error && j.error.message) || ('HTTP ' + r.status));
          return j;
        });
      })
      .then(function (j) {
        var bucket = host.dataset.bucket, series;
        if (host.dataset.kind === 'events') {
          series = busiest(j.series || []);
          var total = series.reduce(function (a, s) { return a + s.total; }, 0);
          var t = document.getElementById(host.dataset.total); if (t) t.textContent = num(total);
          legend(host.dataset.legend, series.map(function (s) { return { name: s.name, total: num(s.total) }; }));
          barChart(host, j.buckets, series.map(function (s, i) { return { name: s.name, values: s.counts, color: i }; }), bucket, true);
        } else if (host.dataset.kind === 'users') {
          barChart(host, j.buckets, [{ name: 'users', values: j.users || [], color: 1 }], bucket, false);
        } else if (host.dataset.kind === 'revenue') {
          var cur = j.currencies || [];
          if (!cur.length) {
            host.hidden = true;
            var e = document.getElementById(host.dataset.empty); if (e) e.hidden = false;
            return;
          }
          legend(host.dataset.legend, cur.map(function (c) {
            return { name: c.currency, total: money(c.totalAmount), note: 'from ' + num(c.totalCount) + ' orders' };
          }));
          barChart(host, j.buckets, cur.map(function (c, i) {
            return { name: c.currency, values: c.amounts.map(function (a) { return a / 100; }), color: i };
          }), bucket, false);
        }
      })
      .catch(function (err) { host.textContent = 'Could not load this chart: ' + err.message; host.classList.add('chart-error'); });
  });

  function barChart(host, buckets, series, bucket, stacked) {
    if (!buckets || !buckets.length) { host.textContent = 'No data in this range.'; return; }
    host.textContent = '';
    var W = host.clientWidth || 800, H = host.clientHeight || 240;
    var m = { l: 48, r: 8, t: 10, b: 24 };
    var n = buckets.length, totals = new Array(n).fill(0), max = 0;
    series.forEach(function (s) {
      s.values.forEach(function (v, i) { totals[i] += v; if (!stacked) max = Math.max(max, v); });
    });
    if (stacked) max = Math.max.apply(null, totals);
    max = niceMax(max);
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none' });
    var iw = W - m.l - m.r, ih = H - m.t - m.b;
    for (var g = 0; g <= 4; g++) {
      var y = m.t + ih - ih * g / 4;
      root.appendChild(svg('line', { x1: m.l, x2: W - m.r, y1: y, y2: y, 'class': g ? 'grid-line' : 'axis' }));
      root.appendChild(svg('text', { x: m.l - 6, y: y + 4, 'text-anchor': 'end' }, short(max * g / 4)));
    }
    var slot = iw / n, bw = Math.min(48, Math.max(1, slot * (stacked ? 0.72 : 0.72 / series.length)));
    var every = Math.ceil(n / Math.max(1, Math.floor(iw / 70)));
    for (var i = 0; i < n; i++) {
      var x0 = m.l + i * slot + (slot - (stacked ? bw : bw * series.length)) / 2, acc = 0;
      var group = svg('g');
      var tip = [label(buckets[i], bucket, host.dataset.tz)];
      series.forEach(function (s, si) {
        var v = s.values[i] || 0;
        if (v) tip.push(s.name + ': ' + num(v));
        var h = max ? ih * v / max : 0;
        var x = stacked ? x0 : x0 + si * bw;
        var y = m.t + ih - (stacked ? acc : 0) - h;
        if (h > 0) group.appendChild(svg('rect', { x: x, y: y, width: bw, height: h, fill: PALETTE[s.color % 8] }));
        if (stacked) acc += h;
      });
      // A hover target over the whole slot, with a native tooltip.
      var hit = svg('rect', { x: m.l + i * slot, y: m.t, width: slot, height: ih, fill: 'transparent' });
      hit.appendChild(svg('title', {}, tip.join('\n')));
      group.appendChild(hit);
      root.appendChild(group);
      if (i % every === 0) root.appendChild(svg('text', { x: m.l + i * slot + slot / 2, y: H - 6, 'text-anchor': 'middle' }, label(buckets[i], bucket, host.dataset.tz)));
    }
    host.appendChild(root);
  }
  function niceMax(v) {
    if (v <= 4) return 4; // whole-number ticks for small counts
    if (v <= 8) return 8;
    var p = Math.pow(10, Math.floor(Math.log10(v))), f = v / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }
  function short(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + 'M';
    if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + 'k';
    return String(Math.round(v * 100) / 100);
  }

  // Editing a date picks the custom range.
  var af = document.getElementById('analytics-form');
  if (af) af.querySelectorAll('input[type=date]').forEach(function (d) {
    d.addEventListener('change', function () { af.querySelector('select[name=range]').value = 'custom'; });
  });

  // A duration in seconds, as the health page shows it.
  function secs(s) {
    if (s >= 3600) return (s / 3600).toFixed(1) + ' h';
    if (s >= 60) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    return Math.round(s) + ' s';
  }

  // Pipeline health, refreshed every 2 s.
  var health = document.getElementById('health');
  if (health) {
    var fill = function (tbodySel, rows) {
      var tb = document.querySelector(tbodySel + ' tbody');
      if (!tb) return;
      tb.textContent = '';
      rows.forEach(function (cells) {
        var tr = el('tr');
        cells.forEach(function (c) { tr.appendChild(c); });
        tb.appendChild(tr);
      });
    };
    var refresh = function () {
      fetch(health.dataset.src, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (h) {
          var rate = function (f) { return f < 10 ? f.toFixed(1) : num(Math.round(f)); };
          document.getElementById('h-rate').textContent = h.rateKnown ? rate(h.ingestRate) : '…';
          document.getElementById('h-reject').textContent = h.rateKnown ? rate(h.rejectRate) : '…';
          document.getElementById('h-failed').textContent = h.failedKnown ? num(h.failedHour) : '?';
          var o = document.getElementById('h-overall'); o.textContent = '';
          o.appendChild(el('span', { 'class': h.healthy ? 'ok' : 'bad' }, h.healthy ? 'Healthy' : 'Degraded'));
          fill('#h-lags', (h.lags || []).map(function (l) {
            var v = el('td', { 'class': 'num' });
            if (l.known) v.textContent = num(l.pending); else v.appendChild(el('span', { 'class': 'muted', title: l.note || '' }, 'n/a'));
            var w = el('td', { 'class': 'num' }, l.secondsWithoutProgress ? secs(l.secondsWithoutProgress) : '–');
            var q = el('td', { 'class': 'num' });
            if (l.quarantined < 0) q.appendChild(el('span', { 'class': 'muted' }, '?'));
            else if (l.quarantined > 0) q.appendChild(el('a', { href: '/dashboard/quarantine?stage=' + encodeURIComponent(l.stage) }, num(l.quarantined)));
            else q.textContent = '0';
            var st = el('td');
            st.appendChild(el('span', { 'class': 'status ' + (l.stalled ? 'failed' : 'processed') }, l.stalled ? 'stalled' : 'moving'));
            if (l.waitingOn) { st.appendChild(document.createTextNode(' ')); st.appendChild(el('span', { 'class': 'reason' }, 'waiting on ' + l.waitingOn)); }
            if (l.stalled && l.lastError) { st.appendChild(document.createTextNode(' ')); st.appendChild(el('span', { 'class': 'reason' }, l.lastError)); }
            return [el('td', {}, l.stage), v, w, q, st];
          }));
          fill('#h-deps', (h.dependencies || []).map(function (d) {
            var s = el('td');
            s.appendChild(el('span', { 'class': 'status ' + (d.ok ? 'processed' : 'failed') }, d.ok ? 'up' : 'down'));
            if (d.error) { s.appendChild(document.createTextNode(' ')); s.appendChild(el('span', { 'class': 'reason' }, d.error)); }
            return [el('td', {}, d.name), s];
          }));
        })
        .catch(function () { /* keep the last numbers; the next tick retries */ });
    };
    setInterval(refresh, 2000);
    setTimeout(refresh, 300);
  }
})();
