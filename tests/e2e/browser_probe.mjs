// A scriptable headless Chromium for the end-to-end tests, driven in JSON lines.
//
// Runs under node with playwright-core from the project's npm install and Debian's chromium
// (/usr/bin/chromium; no browser is downloaded). Commands arrive one JSON object per line on
// stdin ({"cmd": ..., "id": n}); each is answered by one JSON line on stdout carrying the same
// id ({"event": "ok"|"canvas"|"text"|"error", ...}). Everything the page does that a test may
// want to check is printed as an event as it happens: console messages, uncaught page errors,
// dialogs (dismissed at once, so spice_auto-style prompt() calls never block), WebSocket
// opens, closes and errors, failed requests and HTTP error responses.
//
// Usage: node browser_probe.mjs [--trust-spki BASE64_SHA256] [--ignore-https-errors] [--timeout SECONDS]
// The watchdog (--timeout) prints {"event": "watchdog"} and exits 3, so a hung browser fails
// a test in bounded time. EOF on stdin or {"cmd": "quit"} closes the browser and exits 0.

import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const args = process.argv.slice(2);
const ignoreHttpsErrors = args.includes('--ignore-https-errors');
const spkiIndex = args.indexOf('--trust-spki');
const trustSpki = spkiIndex >= 0 ? args[spkiIndex + 1] : null;
const timeoutIndex = args.indexOf('--timeout');
const watchdogSeconds = timeoutIndex >= 0 ? Number(args[timeoutIndex + 1]) : 60;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const t0 = Date.now();
function emit(obj) {
    process.stdout.write(JSON.stringify({ t: (Date.now() - t0) / 1000, ...obj }) + '\n');
}

let browser = null;
let cleaningUp = false;

async function cleanup(code) {
    if (cleaningUp) return;
    cleaningUp = true;
    try {
        if (browser) await browser.close();
    } catch (e) {
        emit({ event: 'error', message: 'closing the browser: ' + e });
    }
    process.exit(code);
}

const watchdog = setTimeout(() => {
    emit({ event: 'watchdog' });
    cleanup(3);
}, watchdogSeconds * 1000);

// The flags TESTING.md lists as working on this machine; playwright adds --headless and a
// fresh temporary profile (--user-data-dir) of its own for every launch.
browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // spice-html5's playback is an <audio autoplay> element fed through MediaSource; with
        // no user gesture in a test, Chromium's default policy would keep it paused.
        '--autoplay-policy=no-user-gesture-required',
        // Trust exactly one server key (the test's generated certificate), nothing else.
        ...(trustSpki ? [`--ignore-certificate-errors-spki-list=${trustSpki}`] : []),
    ],
});
const context = await browser.newContext({
    ignoreHTTPSErrors: ignoreHttpsErrors,
    viewport: { width: 1200, height: 900 },
});
const page = await context.newPage();

page.on('console', (msg) => emit({ event: 'console', type: msg.type(), text: msg.text() }));
page.on('pageerror', (err) => emit({ event: 'pageerror', text: String(err && err.stack || err) }));
page.on('dialog', async (dialog) => {
    emit({ event: 'dialog', type: dialog.type(), message: dialog.message() });
    await dialog.dismiss().catch(() => {});
});
page.on('requestfailed', (req) =>
    emit({ event: 'requestfailed', url: req.url(), failure: req.failure() && req.failure().errorText }));
page.on('response', (res) => {
    if (res.status() >= 400) emit({ event: 'http-error', url: res.url(), status: res.status() });
});
page.on('websocket', (ws) => {
    emit({ event: 'websocket', url: ws.url() });
    ws.on('close', () => emit({ event: 'websocket-close', url: ws.url() }));
    ws.on('socketerror', (e) => emit({ event: 'websocket-error', url: ws.url(), error: String(e) }));
});
emit({ event: 'ready', version: browser.version() });

async function canvasBox() {
    const canvas = page.locator('#spice-screen canvas').first();
    await canvas.waitFor({ state: 'visible', timeout: 10000 });
    return await canvas.boundingBox();
}

// Installed before the page's scripts run (command instrument_media, then goto): watches the
// MediaSource path spice-html5's playback.js takes, without changing what it does. It records
// the isTypeSupported answers (which decide the Opus cap), each SourceBuffer created and every
// append (count, bytes, updateend, error events), and, once playback.js's <audio> element is
// in the page, its state and an AnalyserNode on its output: the decoded sound's loudest
// frequency. window.__trioMedia.snapshot() returns all of it as plain JSON.
const MEDIA_INSTRUMENT = `(() => {
    const rec = { queries: [], sourceBuffers: [], appends: 0, appendedBytes: 0, updateEnds: 0,
                  bufferErrors: 0, mediaErrors: [], peaks: [] };
    if (!window.MediaSource) { window.__trioMedia = { snapshot: () => ({ ...rec, noMediaSource: true }) }; return; }
    const isTypeSupported = MediaSource.isTypeSupported.bind(MediaSource);
    MediaSource.isTypeSupported = (type) => {
        const answer = isTypeSupported(type);
        rec.queries.push({ type, answer });
        return answer;
    };
    const addSourceBuffer = MediaSource.prototype.addSourceBuffer;
    MediaSource.prototype.addSourceBuffer = function (type) {
        const buffer = addSourceBuffer.call(this, type);
        rec.sourceBuffers.push(type);
        buffer.addEventListener('updateend', () => { rec.updateEnds += 1; });
        buffer.addEventListener('error', () => { rec.bufferErrors += 1; });
        return buffer;
    };
    const appendBuffer = SourceBuffer.prototype.appendBuffer;
    SourceBuffer.prototype.appendBuffer = function (data) {
        rec.appends += 1;
        rec.appendedBytes += data.byteLength;
        return appendBuffer.call(this, data);
    };
    let watched = null, analyser = null, context = null;
    function watch(audio) {
        watched = audio;
        audio.addEventListener('error', () => rec.mediaErrors.push(audio.error ? audio.error.code + ' ' + audio.error.message : 'error'));
        context = new AudioContext();
        const source = context.createMediaElementSource(audio);
        analyser = context.createAnalyser();
        analyser.fftSize = 8192;
        source.connect(analyser);
        analyser.connect(context.destination);
    }
    function peak() {
        const bins = new Float32Array(analyser.frequencyBinCount);
        analyser.getFloatFrequencyData(bins);
        let best = 0;
        for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
        return { hz: best * context.sampleRate / analyser.fftSize, db: bins[best] };
    }
    window.__trioMedia = {
        snapshot() {
            const audio = document.querySelector('audio');
            if (audio && audio !== watched) watch(audio);
            const out = { ...rec, audio: null };
            if (audio) {
                const ranges = [];
                for (let i = 0; i < audio.buffered.length; i++) ranges.push([audio.buffered.start(i), audio.buffered.end(i)]);
                out.audio = { readyState: audio.readyState, paused: audio.paused, currentTime: audio.currentTime,
                              buffered: ranges, contextState: context.state, peak: peak() };
            }
            return out;
        },
    };
})();`;

const commands = {
    async goto({ url }) {
        const response = await page.goto(url, { waitUntil: 'load' });
        return { event: 'ok', status: response && response.status() };
    },
    async wait_state({ state, seconds }) {
        await page.waitForFunction((s) => document.body && document.body.dataset.state === s, state,
            { timeout: (seconds || 10) * 1000 });
        return { event: 'ok' };
    },
    async state() {
        return await page.evaluate(() => ({
            event: 'state',
            state: document.body ? document.body.dataset.state : null,
            status: (document.getElementById('status') || {}).textContent || null,
            statusVisible: !!(document.getElementById('status') && document.getElementById('status').offsetParent),
            loginVisible: !!(document.getElementById('login') && document.getElementById('login').offsetParent),
        }));
    },
    async canvas() {
        // The primary surface's canvas, read back pixel for pixel (RGBA).
        const result = await page.evaluate(() => {
            const canvas = document.querySelector('#spice-screen canvas');
            if (!canvas) return null;
            const ctx = canvas.getContext('2d');
            const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let binary = '';
            const step = 0x8000;
            for (let i = 0; i < data.length; i += step) {
                binary += String.fromCharCode.apply(null, data.subarray(i, i + step));
            }
            return { width: canvas.width, height: canvas.height, rgba: btoa(binary) };
        });
        if (result === null) return { event: 'canvas', width: 0, height: 0, rgba: '' };
        return { event: 'canvas', ...result };
    },
    async click({ x, y, button }) {
        const box = await canvasBox();
        await page.mouse.click(box.x + x, box.y + y, { button: button || 'left' });
        return { event: 'ok' };
    },
    async move({ x, y }) {
        const box = await canvasBox();
        await page.mouse.move(box.x + x, box.y + y);
        return { event: 'ok' };
    },
    async press({ key }) {
        await page.keyboard.press(key);
        return { event: 'ok' };
    },
    async login({ password }) {
        await page.fill('#password', password);
        await page.click('#connect');
        return { event: 'ok' };
    },
    async shown() {
        // What the user sees of the primary surface: the canvas with spice-html5's <video>
        // elements (VP8 streams) composed on top where they lie, each showing its current
        // frame at the element's size, as the page's compositor does. (A page screenshot
        // would do the same but waits for a compositor frame: hundreds of ms with video.)
        const result = await page.evaluate(() => {
            const canvas = document.querySelector('#spice-screen canvas');
            if (!canvas) return null;
            const out = document.createElement('canvas');
            out.width = canvas.width;
            out.height = canvas.height;
            const ctx = out.getContext('2d', { willReadFrequently: true });
            ctx.drawImage(canvas, 0, 0);
            const origin = canvas.getBoundingClientRect();
            let videos = 0;
            for (const v of document.querySelectorAll('#spice-screen video')) {
                if (v.readyState < 2) continue;
                const r = v.getBoundingClientRect();
                ctx.drawImage(v, r.left - origin.left, r.top - origin.top, r.width, r.height);
                videos += 1;
            }
            const data = ctx.getImageData(0, 0, out.width, out.height).data;
            let binary = '';
            const step = 0x8000;
            for (let i = 0; i < data.length; i += step) {
                binary += String.fromCharCode.apply(null, data.subarray(i, i + step));
            }
            return { width: out.width, height: out.height, rgba: btoa(binary), videos };
        });
        if (result === null) return { event: 'shown', width: 0, height: 0, rgba: '', videos: 0 };
        return { event: 'shown', ...result };
    },
    async screenshot({ path }) {
        await page.screenshot({ path });
        return { event: 'ok' };
    },
    async viewport({ width, height }) {
        await page.setViewportSize({ width, height });
        return { event: 'ok' };
    },
    async instrument_media() {
        await page.addInitScript(MEDIA_INSTRUMENT);
        return { event: 'ok' };
    },
    async media() {
        return { event: 'media', ...(await page.evaluate(() => window.__trioMedia ? window.__trioMedia.snapshot() : null)) };
    },
    async eval({ expression }) {
        return { event: 'value', value: await page.evaluate(expression) };
    },
};

const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
    if (!line.trim()) return;
    let message;
    try {
        message = JSON.parse(line);
    } catch (e) {
        emit({ event: 'error', message: 'bad JSON: ' + line });
        return;
    }
    // One command at a time, in order.
    queue = queue.then(async () => {
        const { cmd, id } = message;
        if (cmd === 'quit') {
            emit({ event: 'bye', id });
            clearTimeout(watchdog);
            await cleanup(0);
            return;
        }
        const handler = commands[cmd];
        if (!handler) {
            emit({ event: 'error', id, message: 'unknown command ' + cmd });
            return;
        }
        try {
            emit({ id, ...(await handler(message)) });
        } catch (e) {
            emit({ event: 'error', id, message: String(e && e.message || e) });
        }
    });
});
lines.on('close', () => {
    queue.then(() => {
        clearTimeout(watchdog);
        return cleanup(0);
    });
});
for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => cleanup(1));
}
