// wot-live web dashboard. Plain JavaScript, no build step.
//
// Data flow: GET api/snapshot once, then one EventSource on api/stream?after=<last_id>; each
// message changes `state` and marks what it touched as dirty; one requestAnimationFrame callback
// redraws only the dirty parts (charts at most every CHART_INTERVAL_MS). A `reset` message, or a
// stream the browser gave up on, reloads the snapshot and reopens the stream from its last_id.
//
// Everything a Thing or the server sends is inserted with textContent / createTextNode /
// new Option(text): never as HTML. `?bench=24x3600` runs the chart benchmark instead.
'use strict';

(() => {
  /** Longest chart window (s): the history kept per property. */
  const HISTORY_S = 15 * 60;
  /** Most chart points kept per property, whatever the window. */
  const MAX_POINTS = 20000;
  /** Most timeline entries kept (the server's default timeline limit). */
  const MAX_EVENTS = 1000;
  /** Most timeline rows drawn at once (the newest that pass the filters). */
  const SHOWN_EVENTS = 300;
  /** Most notices kept. */
  const MAX_NOTICES = 50;
  /** Most resolved alerts listed. */
  const SHOWN_RESOLVED = 10;
  /** Shortest time between two chart redraws (at most 10 per second). */
  const CHART_INTERVAL_MS = 100;
  /** Shortest time between two timeline redraws caused by arriving events. */
  const TIMELINE_INTERVAL_MS = 250;
  /** Longest text shown for one value or event preview (the detail view shows it all). */
  const MAX_TEXT = 200;
  const TOKEN_KEY = 'wot-dashboard-token';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  /** A new element with an optional class and text (as text, never HTML). */
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function chip(text, cls) {
    return el('span', 'chip ' + (cls || ''), text);
  }

  const pad = (n) => String(n).padStart(2, '0');

  function clockTime(ms) {
    if (!Number.isFinite(ms)) return '--:--:--';
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function duration(ms) {
    if (!Number.isFinite(ms)) return '?';
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    const h = Math.floor(s / 3600);
    return `${h} h ${Math.floor((s % 3600) / 60)} min`;
  }

  function clip(text, max) {
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  /** One number, compactly and always the same way. */
  function formatNumber(v) {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    const a = Math.abs(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
    return String(Number(v.toFixed(a >= 100 ? 1 : 2)));
  }

  function formatValue(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number') return formatNumber(v);
    if (typeof v === 'string') return clip(v, MAX_TEXT);
    if (typeof v === 'boolean') return String(v);
    return clip(safeJson(v), MAX_TEXT);
  }

  function safeJson(v, indent) {
    try {
      return JSON.stringify(v, null, indent);
    } catch (e) {
      return String(v);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Token: `#token=...` in the URL goes to sessionStorage and out of the address bar.

  function takeToken() {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match) {
      try {
        sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      } catch (e) {
        /* storage disabled: the token is lost, POSTs will say so */
      }
      history.replaceState(null, '', location.pathname + location.search);
    }
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------------------------------
  // State

  const state = {
    lastId: 0,
    /** Server clock minus ours (ms), from the snapshot. */
    offset: 0,
    things: new Map(),
    events: [],
    seqs: new Set(),
    stats: null,
    alerts: { active: [], resolved: [], silences: [] },
    rules: [],
    ruleWarnings: [],
    notices: [],
    /** The page's own notices: they survive a snapshot reload. */
    localNotices: [],
    windowS: 300,
    expanded: new Set(),
    /** The views the user chose, by Thing and property: they survive a snapshot reload. */
    chosenModes: new Map(),
    filter: { thing: '', event: '', severity: '', text: '' },
  };

  /** Counters the browser test reads. */
  const probe = {
    ready: false,
    streamOpen: false,
    snapshots: 0,
    /** Stream messages dropped because their id was not above the last one seen. */
    repeatedIds: 0,
    /** Event items dropped because their seq was already in the timeline. */
    repeatedSeqs: 0,
    /** Content-Security-Policy violations seen (there should be none). */
    cspViolations: [],
    state,
  };
  window.wotDashboard = probe;
  document.addEventListener('securitypolicyviolation', (e) => {
    probe.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
  });

  const serverNow = () => Date.now() + state.offset;

  function isNumberType(type) {
    return type === 'number' || type === 'integer';
  }

  function hasRange(prop) {
    return Number.isFinite(prop.minimum) && Number.isFinite(prop.maximum) && prop.minimum < prop.maximum;
  }

  function isNumeric(prop) {
    if (isNumberType(prop.type)) return true;
    return prop.type == null && prop.latest != null && typeof prop.latest.value === 'number';
  }

  function makeProperty(p) {
    const prop = {
      name: String(p.name),
      title: p.title == null ? String(p.name) : String(p.title),
      unit: p.unit == null ? '' : String(p.unit),
      type: p.type == null ? null : String(p.type),
      minimum: typeof p.minimum === 'number' ? p.minimum : null,
      maximum: typeof p.maximum === 'number' ? p.maximum : null,
      latest: p.latest && typeof p.latest === 'object' ? p.latest : null,
      xs: [],
      ys: [],
      mode: 'value',
      auto: true,
      dom: null,
      chart: null,
      chartDirty: true,
      lastDraw: -Infinity,
    };
    if (Array.isArray(p.history)) {
      for (const point of p.history) {
        if (Array.isArray(point)) addPoint(prop, point[0], point[1]);
      }
    }
    prop.mode = autoMode(prop);
    return prop;
  }

  function autoMode(prop) {
    if (!isNumeric(prop)) return 'value';
    return hasRange(prop) ? 'gauge' : 'chart';
  }

  /** Adds one chart point (time in ms); the x values stay sorted. */
  function addPoint(prop, at, value) {
    if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isFinite(at)) return;
    const n = prop.xs.length;
    const x = n > 0 ? Math.max(at / 1000, prop.xs[n - 1]) : at / 1000;
    prop.xs.push(x);
    prop.ys.push(value);
    if (prop.xs.length > MAX_POINTS + MAX_POINTS / 10) trimHistory(prop, serverNow());
  }

  /** First index whose x is at least `x`. */
  function lowerBound(xs, x) {
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (xs[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function trimHistory(prop, now) {
    const drop = Math.max(lowerBound(prop.xs, now / 1000 - HISTORY_S), prop.xs.length - MAX_POINTS);
    if (drop > 0) {
      prop.xs.splice(0, drop);
      prop.ys.splice(0, drop);
    }
  }

  function makeThing(t) {
    const thing = {
      id: String(t.id),
      title: t.title == null ? String(t.id) : String(t.title),
      links: new Map(),
      props: new Map(),
      eventNames: Array.isArray(t.events) ? t.events.map(String) : [],
      dom: null,
    };
    for (const link of t.links || []) thing.links.set(String(link.label), link);
    for (const p of t.properties || []) {
      const prop = makeProperty(p);
      const chosen = state.chosenModes.get(modeKey(thing.id, prop.name));
      if (chosen) {
        prop.mode = chosen;
        prop.auto = false;
      }
      thing.props.set(prop.name, prop);
    }
    return thing;
  }

  const modeKey = (thing, property) => `${thing}\u0000${property}`;

  function thingTitle(id) {
    const thing = state.things.get(id);
    return thing ? thing.title : id;
  }

  function applySnapshot(snap) {
    for (const thing of state.things.values()) destroyCharts(thing);
    state.lastId = Number(snap.last_id) || 0;
    if (Number.isFinite(snap.now)) state.offset = snap.now - Date.now();
    state.things = new Map();
    for (const t of snap.things || []) {
      const thing = makeThing(t);
      state.things.set(thing.id, thing);
    }
    state.events = [];
    state.seqs = new Set();
    for (const item of snap.events || []) addEvent(item);
    state.stats = snap.stats || null;
    state.alerts = normalizeAlerts(snap.alerts);
    state.rules = Array.isArray(snap.rules) ? snap.rules : [];
    state.ruleWarnings = Array.isArray(snap.rule_warnings) ? snap.rule_warnings : [];
    state.notices = Array.isArray(snap.notices) ? snap.notices.slice(-MAX_NOTICES) : [];
    if (Array.isArray(snap.windows_s)) windowChoices(snap.windows_s);
    probe.snapshots += 1;
    markAll();
  }

  function normalizeAlerts(a) {
    const list = (x) => (Array.isArray(x) ? x : []);
    return a && typeof a === 'object'
      ? { active: list(a.active), resolved: list(a.resolved), silences: list(a.silences) }
      : { active: [], resolved: [], silences: [] };
  }

  function addEvent(item) {
    if (!item || typeof item !== 'object') return;
    const seq = Number(item.seq);
    if (state.seqs.has(seq)) {
      probe.repeatedSeqs += 1;
      return;
    }
    state.seqs.add(seq);
    state.events.push(item);
    if (state.events.length > MAX_EVENTS) {
      const gone = state.events.splice(0, state.events.length - MAX_EVENTS);
      for (const old of gone) {
        state.seqs.delete(Number(old.seq));
        state.expanded.delete(Number(old.seq));
      }
    }
    dirty.events = true;
  }

  // ---------------------------------------------------------------------------------------
  // Live stream

  let source = null;
  let retryTimer = null;
  let retryDelay = 1000;

  const handlers = {
    property(d) {
      const thing = state.things.get(d.thing);
      if (!thing) return;
      let prop = thing.props.get(d.property);
      if (!prop) {
        prop = makeProperty({ name: d.property, latest: null });
        thing.props.set(prop.name, prop);
        dirty.things = true;
      }
      prop.latest = { value: d.value, at: d.at };
      addPoint(prop, d.at, d.value);
      if (prop.auto && prop.mode === 'value' && isNumeric(prop)) {
        prop.mode = autoMode(prop);
        dirty.things = true;
      }
      prop.chartDirty = true;
      dirty.values.add(prop);
    },
    event(d) {
      addEvent(d);
    },
    link(d) {
      const thing = state.things.get(d.thing);
      if (!thing) return;
      thing.links.set(String(d.label), d);
      dirty.links.add(thing);
    },
    alerts(d) {
      state.alerts = normalizeAlerts(d);
      dirty.alerts = true;
    },
    stats(d) {
      state.stats = d;
      dirty.stats = true;
    },
    notice(d) {
      pushNotice(d);
    },
  };

  function pushNotice(n, list = state.notices) {
    list.push(n);
    if (list.length > MAX_NOTICES) list.splice(0, list.length - MAX_NOTICES);
    dirty.notices = true;
  }

  /** A notice made by the page itself (a failed POST, a reset of the stream). */
  function localNotice(kind, text) {
    pushNotice({ at: serverNow(), kind, text }, state.localNotices);
    schedule();
  }

  function setFeed(text, cls) {
    const feed = $('feed');
    feed.textContent = text;
    feed.className = 'chip ' + cls;
  }

  function closeStream() {
    if (source) source.close();
    source = null;
    probe.streamOpen = false;
    clearTimeout(retryTimer);
  }

  function openStream() {
    closeStream();
    setFeed('connecting', 'chip-connecting');
    const es = new EventSource('api/stream?after=' + encodeURIComponent(state.lastId));
    source = es;
    for (const [type, handle] of Object.entries(handlers)) {
      es.addEventListener(type, (e) => {
        const id = Number(e.lastEventId);
        if (e.lastEventId !== '' && Number.isFinite(id)) {
          if (id <= state.lastId) {
            probe.repeatedIds += 1;
            return;
          }
          state.lastId = id;
        }
        let data;
        try {
          data = JSON.parse(e.data);
        } catch (err) {
          return;
        }
        if (data && typeof data === 'object') handle(data);
        schedule();
      });
    }
    es.addEventListener('reset', () => {
      localNotice('info', 'the server could not replay what this page missed: reloading the snapshot');
      reload();
    });
    es.onopen = () => {
      retryDelay = 1000;
      probe.streamOpen = true;
      setFeed('live', 'chip-open');
    };
    es.onerror = () => {
      probe.streamOpen = false;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error or a wrong content type): try again ourselves.
        setFeed(`disconnected, retrying in ${duration(retryDelay)}`, 'chip-closed');
        if (source === es) source = null;
        retryTimer = setTimeout(openStream, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        setFeed('reconnecting', 'chip-reconnecting');
      }
    };
  }

  async function fetchSnapshot() {
    const res = await fetch('api/snapshot', { cache: 'no-store' });
    if (!res.ok) throw new Error(`the server answered ${res.status}`);
    return res.json();
  }

  let reloading = false;

  async function reload() {
    if (reloading) return;
    reloading = true;
    closeStream();
    setFeed('loading', 'chip-connecting');
    let delay = 1000;
    for (;;) {
      try {
        applySnapshot(await fetchSnapshot());
        break;
      } catch (e) {
        setFeed(`snapshot failed (${e.message}), retrying`, 'chip-closed');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 30000);
      }
    }
    reloading = false;
    openStream();
    probe.ready = true;
    schedule();
  }

  // ---------------------------------------------------------------------------------------
  // Actions

  async function post(path, body, what) {
    const headers = { 'Content-Type': 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    let res;
    try {
      res = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store' });
    } catch (e) {
      localNotice('problem', `${what} failed: ${e.message}`);
      return null;
    }
    const json = await res.json().catch(() => ({}));
    if (res.status === 401) {
      localNotice('problem', `${what} needs the token: open the address the dashboard printed at start (…/#token=…)`);
      return null;
    }
    if (!res.ok) {
      localNotice('problem', `${what} failed: ${json && json.error ? json.error : 'HTTP ' + res.status}`);
      return null;
    }
    return json;
  }

  function comment() {
    const text = $('action-comment').value.trim();
    return text ? { comment: text } : {};
  }

  async function acknowledge(alert, button) {
    button.disabled = true;
    const ok = await post('api/alerts/acknowledge', { rule: alert.rule, thing: alert.thing, ...comment() }, 'acknowledging');
    if (!ok) button.disabled = false;
  }

  async function silence(alert, button) {
    button.disabled = true;
    const seconds = Number($('silence-duration').value);
    const ok = await post(
      'api/silences',
      { rule: alert.rule, thing: alert.thing, duration_s: seconds, ...comment() },
      'silencing',
    );
    if (!ok) button.disabled = false;
  }

  // ---------------------------------------------------------------------------------------
  // Drawing: one animation frame redraws what is dirty.

  const dirty = {
    things: true,
    links: new Set(),
    values: new Set(),
    events: true,
    stats: true,
    alerts: true,
    rules: true,
    notices: true,
  };
  let frameRequested = false;
  let lastTimelineDraw = -Infinity;
  /** The user changed a filter or opened an event: redraw the timeline in the next frame. */
  let clicked = false;

  function markAll() {
    dirty.things = dirty.events = dirty.stats = dirty.alerts = dirty.rules = dirty.notices = true;
    schedule();
  }

  function schedule() {
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(frame);
    }
  }

  function frame(now) {
    frameRequested = false;
    if (dirty.things) {
      dirty.things = false;
      dirty.links.clear();
      dirty.values.clear();
      renderThings();
    }
    for (const thing of dirty.links) renderLinks(thing);
    dirty.links.clear();
    for (const prop of dirty.values) renderValue(prop);
    dirty.values.clear();
    if (dirty.events) {
      if (now - lastTimelineDraw >= TIMELINE_INTERVAL_MS || clicked) {
        dirty.events = false;
        clicked = false;
        lastTimelineDraw = now;
        renderFilterChoices();
        renderTimeline();
      } else {
        schedule();
      }
    }
    if (dirty.stats) {
      dirty.stats = false;
      renderStats();
    }
    if (dirty.alerts) {
      dirty.alerts = false;
      renderAlerts();
    }
    if (dirty.rules) {
      dirty.rules = false;
      renderRules();
    }
    if (dirty.notices) {
      dirty.notices = false;
      renderNotices();
    }
    const charts = [];
    for (const prop of allProps()) if (prop.chart) charts.push(prop);
    const left = chartPump.run(charts, now, (prop) => {
      const end = serverNow() / 1000;
      updateChart(prop.chart, prop.xs, prop.ys, end - state.windowS, end);
    });
    if (left) schedule();
  }

  function* allProps() {
    for (const thing of state.things.values()) yield* thing.props.values();
  }

  /**
   * Spreads chart redraws over frames: each frame redraws, in turn, only as many of the charts
   * that changed as keeps every chart at CHART_INTERVAL_MS (10 per second) at the measured frame
   * rate, and no chart more often. Twenty-four charts at 60 frames per second: four per frame,
   * instead of all 24 in one frame and none in the next five.
   */
  class ChartPump {
    /** `spread` false: every due chart in one frame (the benchmark's comparison). */
    constructor(spread = true) {
      this.spread = spread;
      this.cursor = 0;
      this.lastFrame = null;
      this.frameMs = 1000 / 60;
    }

    /** Draws due charts among `items` ({chartDirty, lastDraw}); true when some wait. */
    run(items, now, draw) {
      if (this.lastFrame !== null) {
        const delta = Math.min(50, Math.max(4, now - this.lastFrame));
        this.frameMs += (delta - this.frameMs) / 8;
      }
      this.lastFrame = now;
      const n = items.length;
      const perFrame = this.spread ? Math.ceil((n * this.frameMs) / CHART_INTERVAL_MS) : n;
      let drawn = 0;
      let left = false;
      for (let k = 0; k < n; k++) {
        const i = (this.cursor + k) % n;
        const item = items[i];
        if (!item.chartDirty) continue;
        if (drawn >= perFrame || now - item.lastDraw < CHART_INTERVAL_MS - 1) {
          left = true;
          continue;
        }
        draw(item);
        item.chartDirty = false;
        item.lastDraw = now;
        drawn += 1;
        this.cursor = (i + 1) % n;
      }
      return left;
    }
  }

  const chartPump = new ChartPump();

  function updateChart(chart, xs, ys, min, max) {
    chart.batch(() => {
      chart.setData([xs, ys], false);
      chart.setScale('x', { min, max });
    });
  }

  // --- Things -------------------------------------------------------------------------------

  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const chart = entry.target.wotChart;
      const width = Math.floor(entry.contentRect.width);
      if (chart && width > 0 && Math.abs(chart.width - width) > 1) chart.setSize({ width, height: chart.height });
    }
  });

  function destroyCharts(thing) {
    for (const prop of thing.props.values()) {
      if (prop.chart) {
        resizer.unobserve(prop.chart.root.parentNode);
        prop.chart.destroy();
        prop.chart = null;
      }
    }
  }

  function renderThings() {
    const host = $('things');
    for (const thing of state.things.values()) destroyCharts(thing);
    if (state.things.size === 0) {
      host.replaceChildren(el('p', 'muted', 'No Things loaded.'));
      return;
    }
    const cards = [];
    for (const thing of state.things.values()) cards.push(thingCard(thing));
    host.replaceChildren(...cards);
    // Charts need their width, known once the cards are in the document.
    for (const prop of allProps()) {
      if (prop.dom && prop.mode === 'chart') createChart(prop);
    }
  }

  function thingCard(thing) {
    const card = el('article', 'card');
    card.dataset.thing = thing.id;
    const head = el('div', 'card-head');
    head.append(el('h2', 'title', thing.title), el('span', 'id muted mono', thing.id));
    const links = el('div', 'links');
    head.append(links);
    const props = el('div', 'props');
    thing.dom = { card, links };
    for (const prop of thing.props.values()) props.append(propertyBox(thing, prop));
    if (thing.props.size === 0) props.append(el('p', 'muted', 'no properties'));
    card.append(head, props);
    renderLinks(thing);
    return card;
  }

  function linkText(label, link) {
    const name = label === '*' ? 'properties' : label;
    switch (link.state) {
      case 'open':
        return [`${name}: open`, 'chip-open'];
      case 'connecting':
        return [`${name}: connecting`, 'chip-connecting'];
      case 'reconnecting': {
        const attempt = Number.isFinite(link.attempt) ? ` #${link.attempt}` : '';
        const next = Number.isFinite(link.next_delay_ms) ? `, next try in ${duration(link.next_delay_ms)}` : '';
        return [`${name}: reconnecting${attempt}${next}`, 'chip-reconnecting'];
      }
      case 'closed':
        return [`${name}: closed${link.reason ? ': ' + clip(String(link.reason), MAX_TEXT) : ''}`, 'chip-closed'];
      default:
        return [`${name}: ${String(link.state)}`, 'chip-connecting'];
    }
  }

  function renderLinks(thing) {
    if (!thing.dom) return;
    const chips = [];
    for (const [label, link] of thing.links) {
      const [text, cls] = linkText(label, link);
      const c = chip(text, cls);
      c.dataset.label = label;
      c.dataset.state = String(link.state);
      chips.push(c);
    }
    if (chips.length === 0) chips.push(chip('no streams', 'chip-connecting'));
    thing.dom.links.replaceChildren(...chips);
  }

  function propertyBox(thing, prop) {
    const box = el('div', 'prop');
    box.dataset.property = prop.name;
    if (prop.mode === 'chart') box.classList.add('wide');
    const head = el('div', 'prop-head');
    const name = el('span', 'name', prop.title);
    name.title = prop.name;
    head.append(name);
    if (isNumeric(prop)) head.append(modeButtons(thing, prop));
    const value = el('div', 'value');
    const when = el('div', 'when');
    box.append(head, value, when);
    prop.dom = { box, value, when, gauge: null, chartHost: null };
    if (prop.mode === 'gauge') {
      prop.dom.gauge = gauge(prop);
      box.append(prop.dom.gauge.root);
    } else if (prop.mode === 'chart') {
      prop.dom.chartHost = el('div', 'chart');
      box.append(prop.dom.chartHost);
    }
    renderValue(prop);
    return box;
  }

  function modeButtons(thing, prop) {
    const group = el('div', 'modes');
    for (const mode of ['value', 'chart', 'gauge']) {
      const b = el('button', mode === prop.mode ? 'on' : '', mode);
      b.type = 'button';
      b.dataset.mode = mode;
      if (mode === 'gauge' && !hasRange(prop)) {
        b.disabled = true;
        b.title = 'the schema gives no minimum and maximum';
      }
      b.addEventListener('click', () => {
        prop.mode = mode;
        prop.auto = false;
        state.chosenModes.set(modeKey(thing.id, prop.name), mode);
        prop.chartDirty = true;
        dirty.things = true;
        schedule();
      });
      group.append(b);
    }
    return group;
  }

  function renderValue(prop) {
    if (!prop.dom) return;
    const { value, when } = prop.dom;
    const latest = prop.latest;
    value.replaceChildren(document.createTextNode(latest ? formatValue(latest.value) : '—'));
    if (prop.unit && latest && typeof latest.value === 'number') value.append(el('span', 'unit', prop.unit));
    when.textContent = latest ? clockTime(latest.at) : 'no value yet';
    if (prop.dom.gauge) prop.dom.gauge.set(latest ? latest.value : null);
  }

  /** A half-circle gauge in SVG over the schema's range. */
  function gauge(prop) {
    const root = el('div', 'gauge');
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 120 68');
    const arc = (cls) => {
      const path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('d', 'M 10 60 A 50 50 0 0 1 110 60');
      path.setAttribute('pathLength', '100');
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke-width', '10');
      path.setAttribute('stroke-linecap', 'round');
      path.setAttribute('class', cls);
      svg.append(path);
      return path;
    };
    arc('track');
    const fill = arc('fill');
    const range = el('div', 'range', `${formatNumber(prop.minimum)} … ${formatNumber(prop.maximum)}${prop.unit ? ' ' + prop.unit : ''}`);
    root.append(svg, range);
    return {
      root,
      set(v) {
        let ratio = 0;
        if (typeof v === 'number' && Number.isFinite(v)) {
          // Halved to keep the span finite for ranges near ±f64::MAX.
          ratio = (v / 2 - prop.minimum / 2) / (prop.maximum / 2 - prop.minimum / 2);
          ratio = Math.min(1, Math.max(0, ratio));
        }
        fill.setAttribute('stroke-dasharray', `${(ratio * 100).toFixed(2)} 100`);
      },
    };
  }

  const css = getComputedStyle(document.documentElement);
  const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;

  function chartOptions(width, height, unit) {
    const axis = {
      stroke: color('--muted', '#8a94a3'),
      grid: { stroke: color('--line', '#2a313c'), width: 1 },
      ticks: { stroke: color('--line', '#2a313c'), width: 1 },
      font: '11px system-ui, sans-serif',
    };
    return {
      width,
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { ...axis, values: (u, ticks) => ticks.map(tickTime) },
        { ...axis, size: 52, values: (u, ticks) => ticks.map(formatNumber) },
      ],
      series: [
        {},
        {
          label: unit || 'value',
          stroke: color('--accent', '#5fb3f9'),
          width: 1.5,
          fill: 'rgba(95, 179, 249, 0.08)',
          points: { show: false },
        },
      ],
    };
  }

  /** An x-axis label: the time of day, with seconds when the ticks are closer than a minute. */
  function tickTime(seconds, i, ticks) {
    const d = new Date(seconds * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const fine = ticks && ticks.length > 1 && ticks[1] - ticks[0] < 60;
    return fine ? `${hm}:${pad(d.getSeconds())}` : hm;
  }

  function createChart(prop) {
    const host = prop.dom.chartHost;
    const width = Math.max(200, Math.floor(host.clientWidth || 400));
    const chart = new uPlot(chartOptions(width, 150, prop.unit), [[], []], host);
    host.wotChart = chart;
    resizer.observe(host);
    prop.chart = chart;
    prop.chartDirty = true;
  }

  // --- Events -------------------------------------------------------------------------------

  function severityOf(item) {
    return ['info', 'warning', 'critical'].includes(item.severity) ? item.severity : 'none';
  }

  function eventText(item) {
    if (item.wotText === undefined) {
      item.wotText = [item.thing, item.thing_title, item.event, safeJson(item.data)].join('\n').toLowerCase();
    }
    return item.wotText;
  }

  function passes(item) {
    const f = state.filter;
    if (f.thing && item.thing !== f.thing) return false;
    if (f.event && item.event !== f.event) return false;
    if (f.severity && severityOf(item) !== f.severity) return false;
    if (f.text && !eventText(item).includes(f.text.toLowerCase())) return false;
    return true;
  }

  /** Refills a select with (value, text) pairs, keeping the choice. */
  function fillSelect(select, pairs) {
    const key = pairs.map((p) => p[0]).join('\u0000');
    if (select.wotKey === key) return;
    select.wotKey = key;
    const chosen = select.value;
    select.replaceChildren(new Option('all', ''), ...pairs.map(([value, text]) => new Option(text, value)));
    select.value = pairs.some((p) => p[0] === chosen) ? chosen : '';
  }

  function renderFilterChoices() {
    const things = new Map();
    const names = new Set();
    for (const thing of state.things.values()) {
      things.set(thing.id, thing.title);
      for (const name of thing.eventNames) names.add(name);
    }
    for (const item of state.events) {
      if (!things.has(item.thing)) things.set(String(item.thing), String(item.thing_title || item.thing));
      names.add(String(item.event));
    }
    fillSelect($('f-thing'), [...things].map(([id, title]) => [id, clip(title, 60)]));
    fillSelect($('f-event'), [...names].sort().map((n) => [n, clip(n, 60)]));
  }

  function renderTimeline() {
    const rows = [];
    let matching = 0;
    for (let i = state.events.length - 1; i >= 0; i--) {
      const item = state.events[i];
      if (!passes(item)) continue;
      matching += 1;
      if (rows.length < SHOWN_EVENTS) rows.push(eventRow(item));
    }
    const list = $('timeline');
    if (rows.length === 0) {
      const text = state.events.length === 0 ? 'no events yet' : `no event matches the filters (${state.events.length} kept)`;
      list.replaceChildren(el('li', 'empty', text));
    } else {
      list.replaceChildren(...rows);
    }
    const shown = matching > rows.length ? `, newest ${rows.length} shown` : '';
    $('events-count').textContent = `${matching} of ${state.events.length}${shown}`;
  }

  function eventRow(item) {
    const seq = Number(item.seq);
    const li = el('li');
    li.dataset.seq = String(seq);
    li.dataset.thing = String(item.thing);
    li.dataset.event = String(item.event);
    const row = el('button', 'row');
    row.type = 'button';
    const sev = severityOf(item);
    const sevCell = el('span', 'muted', sev === 'none' ? '—' : null);
    if (sev !== 'none') sevCell.append(chip(sev, 'sev-' + sev));
    row.append(
      el('span', 'seq', '#' + seq),
      el('span', 'when', clockTime(item.at)),
      el('span', 'thing', item.thing_title || item.thing),
      el('span', 'event', item.event),
      sevCell,
      el('span', 'preview', clip(safeJson(item.data) || '', MAX_TEXT)),
    );
    row.title = 'show the data';
    row.setAttribute('aria-expanded', String(state.expanded.has(seq)));
    li.append(row);
    if (state.expanded.has(seq)) li.append(el('pre', 'detail', safeJson(item.data, 2)));
    row.addEventListener('click', () => {
      if (state.expanded.has(seq)) state.expanded.delete(seq);
      else state.expanded.add(seq);
      dirty.events = true;
      clicked = true;
      schedule();
    });
    return li;
  }

  function countTable(title, entries, name) {
    const wrap = el('div');
    wrap.append(el('h3', '', title));
    if (entries.length === 0) {
      wrap.append(el('div', 'empty', 'none yet'));
      return wrap;
    }
    const table = el('table');
    for (const [key, n] of entries) {
      const tr = el('tr');
      tr.append(el('td', '', clip(name(key), 60)), el('td', 'n', n));
      table.append(tr);
    }
    wrap.append(table);
    return wrap;
  }

  function renderStats() {
    const s = state.stats;
    const host = $('stats');
    if (!s || typeof s !== 'object') {
      host.replaceChildren(el('div', 'empty', 'no statistics yet'));
      return;
    }
    const byCount = (obj) =>
      Object.entries(obj && typeof obj === 'object' ? obj : {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const top = el('div');
    top.append(
      el('span', 'big', formatNumber(Number(s.total) || 0)),
      document.createTextNode(' events, '),
      el('span', 'big', formatNumber(Number(s.rate_per_min) || 0)),
      document.createTextNode(' per minute'),
    );
    const busiest = Array.isArray(s.busiest) ? s.busiest.filter(Array.isArray) : [];
    host.replaceChildren(
      top,
      countTable('busiest Things', busiest, thingTitle),
      countTable('per event type', byCount(s.per_event), String),
      countTable('per Thing', byCount(s.per_thing), thingTitle),
    );
  }

  // --- Alerts, rules, notices ------------------------------------------------------------------

  /** Refreshes the ages shown in the alerts panel without rebuilding it (buttons stay put). */
  let ageUpdaters = [];

  function alertMeta(a, active) {
    const meta = [];
    if (a.property) meta.push(`${a.property}${a.value != null ? ' = ' + formatValue(a.value) : ''}`);
    const now = serverNow();
    if (active) {
      meta.push(`${a.state} for ${duration(now - (a.fired_at || a.active_since))}`);
    } else if (Number.isFinite(a.resolved_at)) {
      meta.push(`resolved ${duration(now - a.resolved_at)} ago`);
    }
    if (a.acknowledged) {
      const ack = a.acknowledged;
      const note = ack.comment ? ' (' + clip(String(ack.comment), 200) + ')' : '';
      meta.push(`acknowledged by ${ack.by || '?'} at ${clockTime(ack.at)}${note}`);
    }
    return meta.join(' · ');
  }

  function alertItem(a, active) {
    const li = el('li', String(a.state));
    li.dataset.rule = String(a.rule);
    li.dataset.thing = String(a.thing);
    li.dataset.state = String(a.state);
    const line = el('div', 'line');
    const sev = ['info', 'warning', 'critical'].includes(a.severity) ? a.severity : 'none';
    line.append(chip(sev, 'sev-' + sev), chip(String(a.state), 'state-' + a.state));
    if (a.acknowledged) line.append(chip('acknowledged', 'state-acknowledged'));
    if (a.silenced) line.append(chip('silenced', 'state-silenced'));
    line.append(el('strong', 'rule', a.rule), el('span', 'muted', thingTitle(a.thing)));
    li.append(line);
    if (a.summary) li.append(el('div', 'summary', clip(String(a.summary), 400)));
    const meta = el('div', 'meta');
    const describe = () => {
      meta.textContent = alertMeta(a, active);
    };
    describe();
    ageUpdaters.push(describe);
    li.append(meta);
    if (active) {
      const actions = el('div', 'actions');
      const ack = el('button', 'ack', a.acknowledged ? 'Acknowledged' : 'Acknowledge');
      ack.type = 'button';
      ack.disabled = Boolean(a.acknowledged);
      ack.addEventListener('click', () => acknowledge(a, ack));
      const sil = el('button', 'silence', a.silenced ? 'Silenced' : 'Silence');
      sil.type = 'button';
      sil.disabled = Boolean(a.silenced);
      sil.title = 'silence this rule on this Thing for the chosen time';
      sil.addEventListener('click', () => silence(a, sil));
      actions.append(ack, sil);
      li.append(actions);
    }
    return li;
  }

  function renderAlerts() {
    const { active, resolved, silences } = state.alerts;
    ageUpdaters = [];
    const firing = active.filter((a) => a.state === 'firing').length;
    $('alerts-count').textContent = `${firing} firing, ${active.length - firing} pending`;
    document.title = firing > 0 ? `(${firing} firing) wot-live dashboard` : 'wot-live dashboard';
    const activeList = $('alerts-active');
    if (active.length > 0) activeList.replaceChildren(...active.map((a) => alertItem(a, true)));
    else activeList.replaceChildren(el('li', 'empty', state.rules.length ? 'no alert is pending or firing' : 'no rules loaded'));
    const recent = resolved.slice(-SHOWN_RESOLVED).reverse();
    const resolvedList = $('alerts-resolved');
    if (recent.length > 0) resolvedList.replaceChildren(...recent.map((a) => alertItem(a, false)));
    else resolvedList.replaceChildren(el('li', 'empty', 'none yet'));
    const silenceList = $('silences');
    if (silences.length === 0) {
      silenceList.replaceChildren(el('li', 'empty', 'none'));
    } else {
      silenceList.replaceChildren(
        ...silences.map((s) => {
          const what = [s.rule ? `rule ${s.rule}` : 'every rule', s.thing ? `on ${thingTitle(s.thing)}` : 'on every Thing'];
          const li = el('li', '', `#${s.id} ${what.join(' ')} until ${clockTime(s.ends_at)}${s.comment ? ' (' + clip(String(s.comment), 200) + ')' : ''}`);
          li.dataset.silence = String(s.id);
          return li;
        }),
      );
    }
  }

  /** A rule's `for` (seconds, maybe fractional). */
  function forText(seconds) {
    if (!Number.isFinite(seconds) || seconds <= 0) return '—';
    return seconds < 60 ? `${formatNumber(seconds)} s` : duration(seconds * 1000);
  }

  function renderRules() {
    const body = $('rules').tBodies[0];
    const rows = state.rules.map((r) => {
      const tr = el('tr');
      const sev = ['info', 'warning', 'critical'].includes(r.severity) ? r.severity : 'none';
      const sevCell = el('td');
      sevCell.append(chip(String(r.severity || '—'), 'sev-' + sev));
      tr.append(
        el('td', 'mono', r.id),
        el('td', '', `${thingTitle(r.thing)} · ${r.property}`),
        el('td', 'mono', r.condition),
        el('td', '', forText(r.for_s)),
        sevCell,
      );
      return tr;
    });
    if (rows.length === 0) {
      const tr = el('tr');
      const td = el('td', 'empty', 'no rules loaded');
      td.colSpan = 5;
      tr.append(td);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    $('rule-warnings').replaceChildren(...state.ruleWarnings.map((w) => el('li', '', '⚠ ' + clip(String(w), 500))));
  }

  function renderNotices() {
    const list = $('notices');
    const notices = state.notices
      .concat(state.localNotices)
      .sort((a, b) => (Number(b.at) || 0) - (Number(a.at) || 0))
      .slice(0, MAX_NOTICES);
    if (notices.length === 0) {
      list.replaceChildren(el('li', 'empty', 'nothing yet'));
      return;
    }
    const kinds = { fired: 'state-firing', resolved: 'state-resolved', problem: 'chip-closed', silenced: 'state-silenced' };
    list.replaceChildren(
      ...notices.map((n) => {
        const li = el('li');
        li.append(
          el('span', 'when muted', clockTime(n.at) + ' '),
          chip(String(n.kind), kinds[n.kind] || ''),
          document.createTextNode(' ' + clip(String(n.text), 1000)),
        );
        return li;
      }),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Controls and timers

  /** The chart windows the server keeps history for (1, 5 and 15 min by default). */
  function windowChoices(seconds) {
    const usable = seconds.filter((s) => Number.isInteger(s) && s > 0 && s <= HISTORY_S);
    if (usable.length === 0) return;
    if (!usable.includes(state.windowS)) state.windowS = usable.includes(300) ? 300 : usable[0];
    const label = (s) => (s % 60 === 0 ? `${s / 60} min` : `${s} s`);
    const select = $('window');
    select.replaceChildren(...usable.map((s) => new Option(label(s), String(s))));
    select.value = String(state.windowS);
  }

  function bindControls() {
    $('window').addEventListener('change', (e) => {
      state.windowS = Number(e.target.value) || 300;
      for (const prop of allProps()) prop.chartDirty = true;
      schedule();
    });
    const filterChanged = () => {
      state.filter = {
        thing: $('f-thing').value,
        event: $('f-event').value,
        severity: $('f-severity').value,
        text: $('f-text').value.trim(),
      };
      dirty.events = true;
      clicked = true;
      schedule();
    };
    for (const id of ['f-thing', 'f-event', 'f-severity']) $(id).addEventListener('change', filterChanged);
    for (const type of ['input', 'change', 'search']) $('f-text').addEventListener(type, filterChanged);
    $('filters').addEventListener('submit', (e) => e.preventDefault());
    // Once a second: the clock, alert ages, and charts slide with time even without data.
    setInterval(() => {
      const now = serverNow();
      $('clock').textContent = clockTime(now);
      for (const prop of allProps()) {
        trimHistory(prop, now);
        prop.chartDirty = true;
      }
      for (const update of ageUpdaters) update();
      schedule();
    }, 1000);
  }

  function addCommentBox() {
    const input = el('input');
    input.id = 'action-comment';
    input.type = 'text';
    input.placeholder = 'comment (optional)';
    input.maxLength = 500;
    $('alerts-panel').querySelector('.silence-choice').append(' ', input);
  }

  // ---------------------------------------------------------------------------------------
  // Benchmark: `?bench=24x3600[&hz=10&seconds=10]` draws N charts of M points each, adds a point
  // to every chart HZ times a second, and records requestAnimationFrame deltas.

  function percentile(sorted, p) {
    if (sorted.length === 0) return NaN;
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  }

  function runBench(spec, params) {
    const match = /^(\d{1,3})x(\d{1,6})$/.exec(spec);
    const charts = match ? Math.min(100, Number(match[1])) : 24;
    const points = match ? Math.min(100000, Number(match[2])) : 3600;
    const hz = Math.min(60, Math.max(1, Number(params.get('hz')) || 10));
    const seconds = Math.min(120, Math.max(1, Number(params.get('seconds')) || 10));
    // `spread=0` redraws every due chart in one frame, for comparison.
    const spread = params.get('spread') !== '0';
    document.querySelector('main').hidden = true;
    $('bench').hidden = false;
    const status = $('bench-status');
    status.textContent = `${charts} charts × ${points} points, a new point in each ${hz} times a second, for ${seconds} s…`;
    const result = { charts, points, hz, seconds, spread, done: false };
    window.wotBench = result;

    const host = $('bench-charts');
    const series = [];
    const step = 1 / hz;
    const t0 = Date.now() / 1000 - points * step;
    for (let c = 0; c < charts; c++) {
      const box = el('div', 'chart');
      host.append(box);
      const xs = [];
      const ys = [];
      for (let i = 0; i < points; i++) {
        xs.push(t0 + i * step);
        ys.push(Math.sin(i / 50 + c) * 10 + Math.random());
      }
      series.push({ box, xs, ys, chart: null, chartDirty: false, lastDraw: -Infinity });
    }
    for (const s of series) s.chart = new uPlot(chartOptions(Math.max(200, s.box.clientWidth), 100, ''), [s.xs, s.ys], s.box);

    let n = points;
    const feed = setInterval(() => {
      n += 1;
      const t = Date.now() / 1000;
      for (let c = 0; c < series.length; c++) {
        const s = series[c];
        s.xs.push(t);
        s.ys.push(Math.sin(n / 50 + c) * 10 + Math.random());
        s.xs.shift();
        s.ys.shift();
        s.chartDirty = true;
      }
    }, 1000 / hz);

    // The first second (building the charts, first paints) is a warm-up and not recorded.
    const start = performance.now() + 1000;
    let longFrames = 0;
    let observer = null;
    if (PerformanceObserver.supportedEntryTypes && PerformanceObserver.supportedEntryTypes.includes('long-animation-frame')) {
      observer = new PerformanceObserver((list) => {
        longFrames += list.getEntries().filter((e) => e.startTime > start).length;
      });
      observer.observe({ type: 'long-animation-frame' });
    }

    const pump = new ChartPump(spread);
    const deltas = [];
    const workMs = [];
    let draws = 0;
    let last = null;
    const tick = (now) => {
      const measuring = now > start;
      if (last !== null && measuring) deltas.push(now - last);
      last = now;
      const before = performance.now();
      let drawn = 0;
      const end = Date.now() / 1000;
      pump.run(series, now, (s) => {
        updateChart(s.chart, s.xs, s.ys, end - points * step, end);
        drawn += 1;
      });
      if (drawn > 0 && measuring) {
        // uPlot draws in a microtask queued by setData; this one runs after it.
        queueMicrotask(() => workMs.push(performance.now() - before));
        draws += drawn;
      }
      if (now - start < seconds * 1000) {
        requestAnimationFrame(tick);
        return;
      }
      clearInterval(feed);
      if (observer) observer.disconnect();
      const round = (x) => Math.round(x * 100) / 100;
      const summary = (values) => {
        const sorted = values.slice().sort((a, b) => a - b);
        return {
          p50: round(percentile(sorted, 50)),
          p95: round(percentile(sorted, 95)),
          p99: round(percentile(sorted, 99)),
          max: round(sorted[sorted.length - 1]),
        };
      };
      Object.assign(result, {
        frames: deltas.length,
        fps: round(deltas.length / seconds),
        frameMs: summary(deltas),
        chartWorkMs: summary(workMs),
        redrawsPerChartPerSecond: round(draws / charts / seconds),
        longAnimationFrames: observer ? longFrames : null,
        userAgent: navigator.userAgent,
        done: true,
      });
      const f = result.frameMs;
      const w = result.chartWorkMs;
      status.textContent =
        `${charts} charts × ${points} points at ${hz} Hz for ${seconds} s: ${result.fps} frames per second, ` +
        `frame time p50 ${f.p50} ms, p95 ${f.p95} ms, p99 ${f.p99} ms, max ${f.max} ms; ` +
        `chart work per frame p50 ${w.p50} ms, p95 ${w.p95} ms, max ${w.max} ms; ` +
        `each chart redrawn ${result.redrawsPerChartPerSecond} times a second` +
        (observer ? `; long animation frames (> 50 ms): ${longFrames}` : '');
    };
    requestAnimationFrame(tick);
  }

  // ---------------------------------------------------------------------------------------

  function main() {
    const params = new URLSearchParams(location.search);
    if (params.has('bench')) {
      runBench(params.get('bench'), params);
      return;
    }
    takeToken();
    addCommentBox();
    bindControls();
    reload();
  }

  main();
})();
