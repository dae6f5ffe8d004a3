// voicebridge demo page: one WebRTC call that receives the bot's voice and,
// with the microphone on, sends the user's voice and keypad (DTMF) to bots.
//
// Plain modern JavaScript, no framework, no build step. It talks to the API of
// docs/API.md: GET /config.json, POST/DELETE /v1/calls, POST /v1/calls/{id}/text
// and /clear, and the bot WebSocket /v1/calls/{id}/ws. It holds no secret: the
// API token, when the server needs one, is typed by the user and kept in this
// tab only.
//
// window.voicebridgeDemo is a read-only view of the page's state for tests and
// for poking at in the console: {state, events, stats, caller}, each a frozen
// snapshot (caller: the user's own audio as the bridge hands it to bots).
'use strict';

(() => {
  // Ranges and formats as the server validates them (docs/API.md, the seeds).
  const SPEED_MIN = 0.7, SPEED_MAX = 1.2;
  const STABILITY_MIN = 0, STABILITY_MAX = 1;
  const FORMATS = ['pcm_8000', 'pcm_16000', 'pcm_22050', 'pcm_24000'];
  const MAX_ID_BYTES = 128; // voice_id, model_id
  const OFFERED_FORMATS = ['pcm_16000', 'pcm_24000'];

  const ICE_GATHER_TIMEOUT_MS = 5000; // non-trickle: post the offer when gathering is complete, or after this
  const STATS_INTERVAL_MS = 250;      // display refresh
  const FAST_STATS_INTERVAL_MS = 20;  // while waiting for the first audio after Speak
  const STREAM_WORD_DELAY_MS = 90;    // "Stream like an LLM": gap between words
  const MEASURE_TIMEOUT_MS = 30000;   // give up measuring Speak → first audio
  const ENERGY_EPSILON = 1e-6;        // a rise of totalAudioEnergy above this is audio, not silence
  const MAX_LOG = 200;
  const TOKEN_KEY = 'voicebridge.token';
  // With the microphone on, the page's bot WebSocket listens to the caller
  // (the user) at 16 kHz: 20 ms PCM16LE mono per binary message.
  const CALLER_LISTEN = 'pcm_16000';
  const CALLER_FRAME_BYTES = 640;
  const DTMF_TONE_MS = 100, DTMF_GAP_MS = 70; // RTCDTMFSender defaults, as POST …/dtmf
  const MIC_CONSTRAINTS = { audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false };

  const $ = (id) => document.getElementById(id);
  const ui = {
    serverInfo: $('server-info'), error: $('error'),
    tokenRow: $('token-row'), token: $('token'),
    connect: $('connect'), hangup: $('hangup'), callState: $('call-state'), callId: $('call-id'),
    voice: $('voice'), model: $('model'), format: $('format'), speed: $('speed'), stability: $('stability'),
    speedHelp: $('speed-help'),
    text: $('text'), speak: $('speak'), stream: $('stream'), interrupt: $('interrupt'),
    level: $('level'), levelDb: $('level-db'),
    received: $('s-received'), lost: $('s-lost'), jitter: $('s-jitter'), jb: $('s-jb'),
    energy: $('s-energy'), codec: $('s-codec'), speaking: $('s-speaking'), firstAudio: $('s-first-audio'),
    log: $('log'), audio: $('remote-audio'),
    mic: $('mic'), keypad: $('keypad'), callerLevel: $('caller-level'), callerLevelDb: $('caller-level-db'),
    callerInfo: $('caller-info'),
  };
  const keys = [...ui.keypad.querySelectorAll('button[data-digit]')];

  // ---- state -------------------------------------------------------------

  const state = {
    phase: 'loading', // loading | idle | connecting | connected | closing | closed
    config: null,     // /config.json
    authRequired: false,
    callId: '',
    callURL: '',
    connectionState: '', // RTCPeerConnection.connectionState
    wsState: 'closed',   // connecting | open | closed
    streaming: false,
    micCall: false,   // this call sends the microphone (sendrecv) and listens to it
    marks: 'unknown', // unknown | yes | no: does this bridge answer marks?
    error: '',           // the last error shown to the user, in words
  };
  const events = [];   // {at (ISO time), t (ms since page load), type, detail}
  let stats = emptyStats();
  let caller = emptyCaller();

  let token = '';
  let pc = null;
  let ws = null;
  let statsTimer = 0;
  let fastTimer = 0;
  let streamAbort = null;  // AbortController of the running "Stream like an LLM"
  let measure = null;      // {t0, energy0} while waiting for the first audio after Speak
  let lastSample = null;   // {t, energy, duration} of the previous getStats, for the level meter
  let mic = null;          // the microphone's MediaStream during a two-way call
  let dtmfSender = null;   // RTCDTMFSender of the microphone's sender
  let markSeq = 0;
  let connectSeq = 0;      // the latest Connect; an older one waiting for the microphone gives up
  const pendingMarks = new Set(); // names sent, not yet answered

  function emptyStats() {
    return {
      packetsReceived: 0, packetsLost: 0, jitter: 0, audioLevel: 0, totalAudioEnergy: 0,
      totalSamplesDuration: 0, rms: 0, jitterBufferDelayMs: 0, codec: '',
      speakToSpeakingMs: null, speakToAudioMs: null, updatedAt: 0,
    };
  }

  // caller: the user's voice as the bridge hands it to bots (listen=pcm_16000).
  function emptyCaller() {
    return { frames: 0, badFrames: 0, rms: 0, maxRms: 0, digitsSent: '' };
  }

  Object.defineProperty(window, 'voicebridgeDemo', {
    value: Object.freeze({
      get state() { return Object.freeze({ ...state, config: state.config && Object.freeze({ ...state.config }) }); },
      get events() { return Object.freeze(events.map((e) => Object.freeze({ ...e }))); },
      get stats() { return Object.freeze({ ...stats }); },
      get caller() { return Object.freeze({ ...caller }); },
    }),
    writable: false, configurable: false,
  });

  // ---- small helpers -----------------------------------------------------

  function showError(msg) {
    state.error = msg;
    ui.error.textContent = msg;
    ui.error.hidden = !msg;
  }

  function logEvent(type, detail) {
    const now = new Date();
    const e = { at: now.toISOString(), t: Math.round(performance.now()), type, detail: detail || '' };
    events.push(e);
    if (events.length > MAX_LOG) events.shift();

    const li = document.createElement('li');
    li.className = type;
    const time = document.createElement('time');
    time.dateTime = e.at;
    time.textContent = now.toTimeString().slice(0, 8) + '.' + String(now.getMilliseconds()).padStart(3, '0');
    const kind = document.createElement('span');
    kind.className = 'type';
    kind.textContent = type;
    const text = document.createElement('span');
    text.dir = 'auto';
    text.textContent = e.detail;
    li.append(time, kind, text);
    ui.log.append(li);
    while (ui.log.children.length > MAX_LOG) ui.log.firstElementChild.remove();
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function authHeaders(extra) {
    const h = new Headers(extra || {});
    if (token) h.set('Authorization', 'Bearer ' + token);
    return h;
  }

  // apiError turns a failed response into a sentence: the API's JSON error
  // {"error":{"code","message"}} when there is one, the status otherwise.
  async function apiError(resp, what) {
    let code = '', message = '';
    try {
      const body = await resp.json();
      if (body && body.error) { code = body.error.code || ''; message = body.error.message || ''; }
    } catch { /* not JSON */ }
    let msg = `${what} failed: `;
    if (resp.status === 401) {
      msg += 'the server refused the API token' + (message ? ` (${message})` : '') + '. Check it and try again.';
    } else if (message) {
      msg += message;
    } else {
      msg += `HTTP ${resp.status} ${resp.statusText}`.trim();
    }
    if (code) msg += ` [${code}, HTTP ${resp.status}]`;
    const err = new Error(msg);
    err.status = resp.status;
    return err;
  }

  async function api(method, path, body, what) {
    const init = { method, headers: authHeaders() };
    if (body !== undefined) {
      init.headers.set('Content-Type', 'application/json');
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new Error(`${what} failed: could not reach the server (${e.message}).`);
    }
    if (!resp.ok) throw await apiError(resp, what);
    return resp;
  }

  const sleep = (ms, signal) => new Promise((resolve, reject) => {
    const id = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(id); reject(signal.reason); }, { once: true });
  });

  // ---- controls and validation --------------------------------------------

  // fieldError shows (or clears) a field's error next to it and returns msg.
  function fieldError(input, msg) {
    input.setCustomValidity(msg);
    input.setAttribute('aria-invalid', msg ? 'true' : 'false');
    const out = $(input.id + '-err');
    if (out) out.textContent = msg;
    return msg;
  }

  function idTooLong(v, name) {
    const n = new TextEncoder().encode(v).length;
    return n > MAX_ID_BYTES ? `${name} must be at most ${MAX_ID_BYTES} bytes; it is ${n}.` : '';
  }

  function readNumber(input, lo, hi, name) {
    const raw = input.value.trim();
    if (raw === '') return { err: fieldError(input, `${name} is required (${lo} to ${hi}).`) };
    const v = Number(raw);
    if (!Number.isFinite(v)) return { err: fieldError(input, `${name} must be a number.`) };
    if (v < lo || v > hi) return { err: fieldError(input, `${name} must be between ${lo} and ${hi}; ${raw} is out of range.`) };
    fieldError(input, '');
    return { v };
  }

  // callOptions validates the voice controls as the server does (out of
  // range is an error, never a clamp) and returns the POST /v1/calls fields,
  // or null after showing what is wrong.
  function callOptions() {
    const errs = [];
    const voice = ui.voice.value.trim();
    errs.push(fieldError(ui.voice, voice ? idTooLong(voice, 'The voice') : 'A voice is required.'));
    const model = ui.model.value.trim();
    errs.push(fieldError(ui.model, idTooLong(model, 'The model')));
    const format = ui.format.value;
    errs.push(fieldError(ui.format, FORMATS.includes(format) ? '' : `Unknown output format ${format}.`));
    const stability = readNumber(ui.stability, STABILITY_MIN, STABILITY_MAX, 'Stability');
    errs.push(stability.err || '');
    let speed = { v: undefined };
    if (!ui.speed.disabled) {
      speed = readNumber(ui.speed, SPEED_MIN, SPEED_MAX, 'Speed');
      errs.push(speed.err || '');
    } else {
      fieldError(ui.speed, '');
    }
    const bad = errs.filter(Boolean);
    if (bad.length) {
      showError('Fix the voice settings first: ' + bad.join(' '));
      return null;
    }
    const opts = { voice_id: voice, output_format: format, voice_settings: { stability: stability.v } };
    if (model) opts.model_id = model;
    if (speed.v !== undefined) opts.voice_settings.speed = speed.v;
    return opts;
  }

  for (const [input, lo, hi, name] of [[ui.speed, SPEED_MIN, SPEED_MAX, 'Speed'], [ui.stability, STABILITY_MIN, STABILITY_MAX, 'Stability']]) {
    input.addEventListener('input', () => readNumber(input, lo, hi, name));
  }
  ui.voice.addEventListener('input', () => fieldError(ui.voice, ui.voice.value.trim() ? '' : 'A voice is required.'));

  function render() {
    const p = state.phase;
    const inCall = p === 'connected';
    const busy = p === 'connecting' || p === 'closing' || p === 'loading';
    ui.connect.disabled = inCall || busy;
    ui.hangup.disabled = !(inCall || p === 'connecting');
    for (const el of [ui.voice, ui.model, ui.format, ui.stability, ui.token]) el.disabled = inCall || busy;
    ui.speed.disabled = inCall || busy || speedUnsupported();
    const canSpeak = inCall && ui.text.value.trim() !== '';
    ui.speak.disabled = !canSpeak;
    ui.stream.disabled = !canSpeak || state.streaming || state.wsState !== 'open';
    ui.interrupt.disabled = !inCall;
    ui.mic.disabled = busy;
    const canDial = inCall && state.micCall && dtmfSender !== null;
    for (const k of keys) k.disabled = !canDial;
    ui.keypad.title = canDial ? '' : 'The keypad works during a call with the microphone on.';

    const words = {
      loading: 'Loading…', idle: 'Not connected.', connecting: 'Connecting…',
      connected: 'Connected' + (state.connectionState && state.connectionState !== 'connected' ? ` (media: ${state.connectionState})` : '') + '.',
      closing: 'Hanging up…', closed: 'Call ended.',
    };
    ui.callState.textContent = words[p] || p;
    ui.callId.textContent = state.callId ? `call ${state.callId}` : '';
  }
  ui.text.addEventListener('input', render);
  // Ctrl+Enter (⌘+Enter) in the text box speaks.
  ui.text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && !ui.speak.disabled) {
      ev.preventDefault();
      speak();
    }
  });

  // The Faseeh dialect's initConnection has stability only (seeds): speed is
  // a Munsit setting, so the page neither offers nor sends it there.
  function speedUnsupported() {
    return !!(state.config && state.config.dialect === 'faseeh');
  }

  // ---- config and token ------------------------------------------------------

  async function loadConfig() {
    try {
      const resp = await fetch('/config.json', { cache: 'no-store' });
      if (!resp.ok) throw await apiError(resp, 'Loading /config.json');
      const cfg = await resp.json();
      state.config = cfg;
      state.authRequired = !!cfg.auth_required;
      if (cfg.voice_id) ui.voice.value = cfg.voice_id;
      if (cfg.model_id) ui.model.value = cfg.model_id;
      if (cfg.output_format) {
        if (!OFFERED_FORMATS.includes(cfg.output_format) && FORMATS.includes(cfg.output_format)) {
          const o = document.createElement('option');
          o.value = cfg.output_format;
          o.textContent = `${cfg.output_format} (server default)`;
          ui.format.append(o);
        }
        ui.format.value = cfg.output_format;
      }
      const bits = [];
      bits.push(cfg.embedded_tts ? 'embedded TTS' : 'external TTS');
      if (cfg.dialect) bits.push(`${cfg.dialect} dialect`);
      bits.push(state.authRequired ? 'API token required' : 'no API token');
      ui.serverInfo.textContent = 'Server: ' + bits.join(' · ') + '.';
      if (speedUnsupported()) {
        ui.speedHelp.hidden = false;
        ui.speedHelp.textContent = 'The Faseeh dialect has no speed setting; it is not sent.';
      }
    } catch (e) {
      ui.serverInfo.textContent = 'Server settings unknown.';
      showError(e.message.startsWith('Loading') ? e.message : `Loading /config.json failed: ${e.message}`);
    }
    if (state.authRequired) {
      ui.tokenRow.hidden = false;
      try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch { token = ''; }
      ui.token.value = token;
    }
    state.phase = 'idle';
    render();
  }

  ui.token.addEventListener('input', () => {
    token = ui.token.value.trim();
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
    } catch { /* storage disabled: memory only */ }
  });

  // ---- the call ------------------------------------------------------------

  function waitIceGathering(conn) {
    if (conn.iceGatheringState === 'complete') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { conn.removeEventListener('icegatheringstatechange', check); resolve(false); }, ICE_GATHER_TIMEOUT_MS);
      function check() {
        if (conn.iceGatheringState === 'complete') {
          clearTimeout(timer);
          conn.removeEventListener('icegatheringstatechange', check);
          resolve(true);
        }
      }
      conn.addEventListener('icegatheringstatechange', check);
    });
  }

  async function connect() {
    showError('');
    if (state.authRequired && !token) {
      fieldError(ui.token, 'Enter the API token.');
      showError('This server needs an API token: enter it above, then Connect.');
      ui.token.focus();
      return;
    }
    fieldError(ui.token, '');
    const opts = callOptions();
    if (!opts) return;

    state.phase = 'connecting';
    state.callId = '';
    state.callURL = '';
    stats = emptyStats();
    caller = emptyCaller();
    showCallerLevel(0);
    lastSample = null;
    state.micCall = ui.mic.checked;
    const attempt = ++connectSeq;
    render();

    // A two-way call asks for the microphone first: without it there is
    // nothing to send, so a refusal ends the attempt in words.
    let stream = null;
    if (state.micCall) {
      try {
        if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
          throw new Error('this browser offers no microphone here (a secure origin, https or localhost, is needed)');
        }
        stream = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
      } catch (e) {
        if (attempt !== connectSeq || state.phase !== 'connecting') return; // hung up meanwhile
        state.phase = 'idle';
        state.micCall = false;
        showError(`The microphone is not available: ${e.message || e.name || e}. Allow it, or turn the microphone off for a listen-only call.`);
        render();
        return;
      }
      if (attempt !== connectSeq || state.phase !== 'connecting') { stream.getTracks().forEach((t) => t.stop()); return; } // hung up meanwhile
    }

    const conn = new RTCPeerConnection({ iceServers: [] });
    pc = conn;
    mic = stream;
    if (stream) {
      const tr = conn.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendrecv', streams: [stream] });
      dtmfSender = tr.sender.dtmf || null;
      ui.callerInfo.textContent = 'Listening to your voice as the bot gets it (listen=pcm_16000)…';
    } else {
      conn.addTransceiver('audio', { direction: 'recvonly' });
      ui.callerInfo.textContent = 'This call is listen-only: turn the microphone on, then Connect again.';
    }
    conn.addEventListener('track', (ev) => {
      ui.audio.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      ui.audio.play().catch((e) => showError(`The browser blocked audio playback (${e.message}). Click the page, then try again.`));
    });
    conn.addEventListener('connectionstatechange', () => {
      if (pc !== conn) return;
      state.connectionState = conn.connectionState;
      if (conn.connectionState === 'failed') {
        showError('The media connection failed (ICE/DTLS): no route between this browser and the server. Hang up and try again.');
        logEvent('media', 'connection failed');
      }
      render();
    });

    try {
      await conn.setLocalDescription(await conn.createOffer());
      const complete = await waitIceGathering(conn);
      if (pc !== conn) return; // hung up meanwhile
      if (!complete) logEvent('media', `ICE gathering not complete after ${ICE_GATHER_TIMEOUT_MS} ms; offering the candidates found so far`);

      const resp = await api('POST', '/v1/calls', { sdp: conn.localDescription.sdp, ...opts }, 'Starting the call');
      const answer = await resp.json();
      if (!answer || !answer.id || !answer.sdp) throw new Error('Starting the call failed: the server\'s answer has no id or sdp.');
      const callURL = new URL(resp.headers.get('Location') || `/v1/calls/${encodeURIComponent(answer.id)}`, location.href).pathname;
      if (pc !== conn) { deleteCall(callURL, false); return; } // hung up meanwhile
      state.callId = answer.id;
      state.callURL = callURL;
      await conn.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      state.phase = 'connected';
      logEvent('call', `started ${answer.id}`);
      openSocket(state.callURL);
      startStats();
    } catch (e) {
      if (pc === conn) {
        const url = state.callURL;
        teardown();
        if (url) deleteCall(url, false);
        state.phase = 'idle';
      }
      showError(e.message || String(e));
      if (e.status === 401) { fieldError(ui.token, 'The server refused this token.'); ui.token.focus(); }
    }
    render();
  }

  function openSocket(callURL) {
    const u = new URL(callURL + '/ws', location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // Browsers cannot set headers on a WebSocket: the token goes in the query.
    if (token) u.searchParams.set('token', token);
    if (state.micCall) u.searchParams.set('listen', CALLER_LISTEN);
    const sock = new WebSocket(u);
    sock.binaryType = 'arraybuffer';
    ws = sock;
    state.wsState = 'connecting';
    sock.addEventListener('open', () => { if (ws === sock) { state.wsState = 'open'; render(); } });
    sock.addEventListener('message', (ev) => onBotEvent(ev.data));
    sock.addEventListener('error', () => {
      if (ws === sock) logEvent('error', 'bot WebSocket error (see the close code)');
    });
    sock.addEventListener('close', (ev) => {
      if (ws !== sock) return;
      ws = null;
      state.wsState = 'closed';
      if (state.phase === 'connected') {
        const why = ev.code === 1000 || ev.code === 1001 ? '' : ` (code ${ev.code}${ev.reason ? ': ' + ev.reason : ''})`;
        logEvent('socket', 'bot WebSocket closed' + why);
        if (ev.code === 1006 && state.authRequired) showError('The bot WebSocket was refused or dropped. If the token is wrong, hang up and enter it again.');
      }
      render();
    });
  }

  // onCallerAudio measures one binary message of the page's listening socket:
  // 20 ms of the user's voice, PCM16LE mono, as the bridge hands it to bots.
  function onCallerAudio(buf) {
    if (buf.byteLength !== CALLER_FRAME_BYTES) { caller.badFrames++; return; }
    const v = new DataView(buf);
    let sum = 0;
    for (let i = 0; i < buf.byteLength; i += 2) {
      const x = v.getInt16(i, true) / 32768;
      sum += x * x;
    }
    const rms = Math.sqrt(sum / (buf.byteLength / 2));
    caller.frames++;
    caller.rms = rms;
    if (rms > caller.maxRms) caller.maxRms = rms;
    showCallerLevel(rms);
  }

  function showCallerLevel(rms) {
    const level = Math.min(1, rms);
    ui.callerLevel.value = level;
    ui.callerLevelDb.textContent = level > 0 ? `${(20 * Math.log10(level)).toFixed(1)} dBFS` : '−∞ dBFS';
  }

  function onBotEvent(data) {
    if (data instanceof ArrayBuffer) { onCallerAudio(data); return; }
    let msg;
    try { msg = JSON.parse(data); } catch { logEvent('error', 'not JSON from the bot WebSocket: ' + String(data).slice(0, 80)); return; }
    switch (msg.type) {
      case 'speaking': {
        let detail = '';
        if (measure && stats.speakToSpeakingMs === null) {
          stats.speakToSpeakingMs = Math.round(performance.now() - measure.t0);
          ui.speaking.textContent = `${stats.speakToSpeakingMs} ms`;
          detail = `${stats.speakToSpeakingMs} ms after Speak`;
        }
        logEvent('speaking', detail);
        break;
      }
      case 'done':
        logEvent('done', '');
        break;
      case 'dtmf':
        logEvent('dtmf', `${msg.digit}` + (msg.duration_ms ? ` (${msg.duration_ms} ms)` : ''));
        break;
      case 'mark':
        pendingMarks.delete(msg.name);
        state.marks = 'yes';
        logEvent('mark', `${msg.name}` + (msg.cleared ? ' (cleared: a clear dropped its audio)' : ' (its audio is on the wire)'));
        break;
      case 'error': {
        // A bridge without marks refuses the message: stop sending them, quietly.
        if (pendingMarks.size && msg.code === 'invalid_field' && String(msg.message || '').includes('"mark"')) {
          pendingMarks.clear();
          state.marks = 'no';
          logEvent('mark', 'this bridge does not answer marks; the page stops sending them');
          break;
        }
        const text = [msg.message || 'unknown error', msg.code ? `[${msg.code}]` : ''].join(' ').trim();
        logEvent('error', text);
        showError('The bot connection reported an error: ' + text);
        break;
      }
      case 'closed':
        logEvent('closed', msg.reason || '');
        endCall(false, 'The server ended the call' + (msg.reason ? `: ${msg.reason}` : '.'));
        break;
      case 'connectionInitialized':
        break;
      default:
        logEvent(msg.type || 'message', JSON.stringify(msg).slice(0, 120));
    }
  }

  function deleteCall(url, keepalive) {
    return fetch(url, { method: 'DELETE', headers: authHeaders(), keepalive }).catch(() => {});
  }

  // teardown releases the browser side of the call; it never talks to the server.
  function teardown() {
    if (streamAbort) { streamAbort.abort(new Error('call ended')); streamAbort = null; }
    state.streaming = false;
    pendingMarks.clear();
    stopStats();
    measure = null;
    if (ws) { const s = ws; ws = null; s.close(1000); }
    state.wsState = 'closed';
    if (pc) { const c = pc; pc = null; c.close(); }
    if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
    dtmfSender = null;
    showCallerLevel(0);
    state.connectionState = '';
    ui.audio.srcObject = null;
    ui.level.value = 0;
    ui.levelDb.textContent = '−∞ dBFS';
  }

  async function endCall(sendDelete, reason) {
    const url = state.callURL;
    if (state.phase !== 'connected' && state.phase !== 'connecting') return;
    state.phase = 'closing';
    render();
    // DELETE before closing the peer connection, so the server ends the call
    // as a hang-up rather than noticing a vanished peer.
    if (sendDelete && url) {
      const resp = await deleteCall(url, false);
      if (resp && !resp.ok && resp.status !== 404) showError((await apiError(resp, 'Hanging up')).message);
    }
    teardown();
    state.phase = 'closed';
    state.callURL = '';
    if (reason) logEvent('call', reason);
    render();
  }

  // sendMark asks the bridge to say when the audio of the text sent so far has
  // gone on the wire: the bridge echoes the mark (or cleared: true).
  function sendMark(label) {
    if (state.marks === 'no' || !ws || ws.readyState !== WebSocket.OPEN) return;
    const name = `${label}-${++markSeq}`;
    pendingMarks.add(name);
    ws.send(JSON.stringify({ type: 'mark', name }));
  }

  // ---- speaking ------------------------------------------------------------

  function startMeasure() {
    measure = { t0: performance.now(), energy0: stats.totalAudioEnergy };
    stats.speakToSpeakingMs = null;
    stats.speakToAudioMs = null;
    ui.speaking.textContent = 'measuring…';
    ui.firstAudio.textContent = 'measuring…';
    if (!fastTimer) fastTimer = setInterval(pollStats, FAST_STATS_INTERVAL_MS);
  }

  function stopMeasure(label) {
    measure = null;
    if (fastTimer) { clearInterval(fastTimer); fastTimer = 0; }
    if (label) {
      if (stats.speakToSpeakingMs === null) ui.speaking.textContent = label;
      if (stats.speakToAudioMs === null) ui.firstAudio.textContent = label;
    }
  }

  async function speak() {
    const text = ui.text.value;
    if (!text.trim() || !state.callURL) return;
    showError('');
    startMeasure();
    try {
      await api('POST', state.callURL + '/text', { text, flush: true, try_trigger_generation: false }, 'Speak');
      logEvent('sent', `text (${[...text].length} characters, flush)`);
      sendMark('speak');
    } catch (e) {
      stopMeasure('–');
      showError(e.message);
    }
  }

  // streamLikeLLM sends the text word by word over the bot WebSocket, the way
  // a bot forwards LLM tokens: buffered text, try_trigger_generation after
  // punctuation, and flush with the last word.
  async function streamLikeLLM() {
    const words = ui.text.value.match(/\S+\s*/g) || [];
    if (!words.length || !ws || ws.readyState !== WebSocket.OPEN) return;
    showError('');
    const ctl = new AbortController();
    streamAbort = ctl;
    state.streaming = true;
    render();
    const sock = ws;
    try {
      for (let i = 0; i < words.length; i++) {
        const last = i === words.length - 1;
        if (last) startMeasure(); // the time to first audio counts from the flush
        if (sock.readyState !== WebSocket.OPEN) throw new Error('Stream like an LLM stopped: the bot WebSocket closed.');
        sock.send(JSON.stringify({
          type: 'text', text: words[i], flush: last,
          try_trigger_generation: !last && /[.!?،؟;:]\s*$/.test(words[i]),
        }));
        if (!last) await sleep(STREAM_WORD_DELAY_MS, ctl.signal);
      }
      logEvent('sent', `${words.length} words over the WebSocket, then flush`);
      sendMark('stream');
    } catch (e) {
      if (!ctl.signal.aborted) showError(e.message);
    } finally {
      if (streamAbort === ctl) streamAbort = null;
      state.streaming = false;
      render();
    }
  }

  async function interrupt() {
    if (!state.callURL) return;
    if (streamAbort) { streamAbort.abort(new Error('interrupted')); streamAbort = null; logEvent('sent', 'stream stopped'); }
    stopMeasure('interrupted');
    try {
      await api('POST', state.callURL + '/clear', undefined, 'Interrupt');
      logEvent('sent', 'clear');
    } catch (e) {
      showError(e.message);
    }
  }

  // ---- keypad ----------------------------------------------------------------

  // pressKey sends one digit as RFC 4733 DTMF on the microphone's sender.
  // RTCDTMFSender queues digits itself; a bot sees each as a dtmf event.
  function pressKey(digit) {
    if (!dtmfSender || state.phase !== 'connected') return;
    if (!dtmfSender.canInsertDTMF) {
      showError('The keypad cannot send now: the call did not negotiate telephone-event, or the audio is not flowing yet.');
      return;
    }
    dtmfSender.insertDTMF(dtmfSender.toneBuffer + digit, DTMF_TONE_MS, DTMF_GAP_MS);
    caller.digitsSent += digit;
    logEvent('sent', `DTMF ${digit}`);
  }

  // ---- getStats ------------------------------------------------------------

  function startStats() {
    stopStats();
    statsTimer = setInterval(pollStats, STATS_INTERVAL_MS);
  }

  function stopStats() {
    if (statsTimer) { clearInterval(statsTimer); statsTimer = 0; }
    if (fastTimer) { clearInterval(fastTimer); fastTimer = 0; }
  }

  let polling = false;
  async function pollStats() {
    const conn = pc;
    if (!conn || polling) return;
    polling = true;
    try {
      const report = await conn.getStats();
      if (conn !== pc) return;
      let inbound = null;
      report.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'audio') inbound = r; });
      if (!inbound) return;
      const now = performance.now();
      const s = stats;
      s.packetsReceived = inbound.packetsReceived || 0;
      s.packetsLost = inbound.packetsLost || 0;
      s.jitter = inbound.jitter || 0;
      s.audioLevel = inbound.audioLevel || 0;
      s.totalAudioEnergy = inbound.totalAudioEnergy || 0;
      s.totalSamplesDuration = inbound.totalSamplesDuration || 0;
      s.jitterBufferDelayMs = inbound.jitterBufferEmittedCount
        ? Math.round(1000 * inbound.jitterBufferDelay / inbound.jitterBufferEmittedCount) : 0;
      const codec = inbound.codecId && report.get(inbound.codecId);
      s.codec = codec ? `${codec.mimeType} ${codec.clockRate}/${codec.channels || 1}` : '';
      // RMS over the last interval, from the energy integral (W3C webrtc-stats:
      // totalAudioEnergy sums audioLevel² × duration).
      if (lastSample && s.totalSamplesDuration > lastSample.duration) {
        const dE = s.totalAudioEnergy - lastSample.energy;
        const dT = s.totalSamplesDuration - lastSample.duration;
        s.rms = Math.sqrt(Math.max(0, dE) / dT);
      } else {
        s.rms = s.audioLevel;
      }
      lastSample = { t: now, energy: s.totalAudioEnergy, duration: s.totalSamplesDuration };
      if (measure && s.speakToAudioMs === null) {
        if (s.totalAudioEnergy - measure.energy0 > ENERGY_EPSILON) {
          s.speakToAudioMs = Math.round(now - measure.t0);
          ui.firstAudio.textContent = `${s.speakToAudioMs} ms`;
          logEvent('audio', `first audio ${s.speakToAudioMs} ms after Speak (totalAudioEnergy rose)`);
          if (fastTimer) { clearInterval(fastTimer); fastTimer = 0; }
        } else if (now - measure.t0 > MEASURE_TIMEOUT_MS) {
          stopMeasure(`no audio within ${MEASURE_TIMEOUT_MS / 1000} s`);
        }
      }
      if (measure && s.speakToAudioMs !== null && s.speakToSpeakingMs !== null) stopMeasure('');
      s.updatedAt = Date.now();
      showStats();
    } catch (e) {
      // getStats fails only when the connection is closed; nothing to show.
    } finally {
      polling = false;
    }
  }

  function showStats() {
    const s = stats;
    ui.received.textContent = String(s.packetsReceived);
    ui.lost.textContent = String(s.packetsLost);
    ui.jitter.textContent = `${(s.jitter * 1000).toFixed(1)} ms`;
    ui.jb.textContent = s.jitterBufferDelayMs ? `${s.jitterBufferDelayMs} ms` : '–';
    ui.energy.textContent = s.totalAudioEnergy.toFixed(4);
    ui.codec.textContent = s.codec || '–';
    const level = Math.min(1, s.rms);
    ui.level.value = level;
    ui.levelDb.textContent = level > 0 ? `${(20 * Math.log10(level)).toFixed(1)} dBFS` : '−∞ dBFS';
  }

  // ---- wiring --------------------------------------------------------------

  ui.connect.addEventListener('click', connect);
  ui.hangup.addEventListener('click', () => {
    if (state.phase === 'connecting') {
      teardown();
      state.phase = 'idle';
      render();
      return;
    }
    endCall(true, 'hung up');
  });
  ui.speak.addEventListener('click', speak);
  ui.stream.addEventListener('click', streamLikeLLM);
  ui.interrupt.addEventListener('click', interrupt);
  for (const k of keys) k.addEventListener('click', () => pressKey(k.dataset.digit));

  // Leaving the page hangs up: a keepalive fetch outlives the page.
  // The browser closes the peer connection itself as the page goes.
  window.addEventListener('pagehide', () => {
    if (state.callURL && (state.phase === 'connected' || state.phase === 'closing')) deleteCall(state.callURL, true);
  });

  render();
  loadConfig();
})();
