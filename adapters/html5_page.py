"""The page served at ``/``: a small HTML document of our own that imports spice-html5's ES
modules from the same server and connects back to the host and port it was loaded from
(``ws://`` or, when the page came over TLS, ``wss://``), on ``/websockify``.

With no password it connects as soon as it loads; with one it shows a password field. Errors
(a wrong password, a lost connection) are shown in the status line, and ``data-state`` on
``<body>`` (``connecting``, ``connected``, ``error``, ``login``) lets tests and scripts follow it.
Once the agent is up (``data-agent="ready"``), as spice-html5's own spice_auto.html does: a
resized browser window asks the server for that display size (its resize.js), and files
dropped on the display are sent to the server (its filexfer.js). Unlike spice_auto.html the
page does not ask for the window's size on connect: the application's size stands until the
user resizes the window.
spice-html5's own code is not copied: only imported.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

#: Where spice-html5's entry module sits: at the top of Debian's package, under src/ in npm's.
MODULE_CANDIDATES = ("main.js", "src/main.js")
WEBSOCKET_PATH = "/websockify"


def find_client_module(root: Path | None) -> str | None:
    """The path of spice-html5's ``main.js`` relative to ``root``, or None."""
    if root is None:
        return None
    for candidate in MODULE_CANDIDATES:
        if (root / candidate).is_file():
            return candidate
    return None


_STYLE = """
html, body { margin: 0; background: #20242b; color: #e8e8e8; font: 14px system-ui, sans-serif; }
header { display: flex; gap: 1em; align-items: center; padding: 6px 12px; background: #2f3540; }
header h1 { font-size: 15px; margin: 0; font-weight: 600; }
#status { flex: 1; }
#status.error { color: #ff8a80; font-weight: 600; }
#status.connected { color: #a5d6a7; }
#login { display: none; gap: .5em; align-items: center; }
body[data-state="login"] #login, body[data-state="error"].ticketing #login { display: flex; }
#spice-area { padding: 12px; }
#spice-screen canvas { display: block; outline: none; image-rendering: pixelated; }
/* resize.js subtracts this element's height from the window's when it is hidden */
#spice-messages { display: none; height: 0; }
"""

_SCRIPT = """
import * as SpiceHtml5 from './%(module)s';

const config = JSON.parse(document.getElementById('trio-spice-config').textContent);
const statusLine = document.getElementById('status');
const form = document.getElementById('login');
const field = document.getElementById('password');
let connection = null;

function setState(state, text) {
    document.body.dataset.state = state;
    statusLine.className = state;
    statusLine.textContent = text;
}

let agentWired = false;

function onAgent(sc) {
    window.spice_connection = sc;
    if (!agentWired) {
        agentWired = true;
        window.addEventListener('resize', SpiceHtml5.handle_resize);
        const area = document.getElementById('spice-area');
        // spice-html5 shows each transfer's progress bar (and Cancel) in this element.
        const xfers = document.createElement('div');
        xfers.id = 'spice-xfer-area';
        area.appendChild(xfers);
        area.addEventListener('dragover', SpiceHtml5.handle_file_dragover, false);
        area.addEventListener('drop', SpiceHtml5.handle_file_drop, false);
    }
    document.body.dataset.agent = 'ready';
}

function stop() {
    delete document.body.dataset.agent;
    if (connection) {
        try { connection.stop(); } catch (e) { /* already stopped */ }
        connection = null;
    }
}

// SPICE link errors spice-html5 reports by number (spice/enums.h).
const LINK_ERRORS = {
    5: 'the server wants this channel over TLS: open the page with https://',
    6: 'the server wants this channel without TLS: open the page with http://',
    7: 'wrong password',
};

function onError(e) {
    stop();
    let text = e && e.message ? e.message : 'Connection lost.';
    const code = /link error (\\d+)/.exec(text);
    if (code && LINK_ERRORS[code[1]]) {
        text += ' (' + LINK_ERRORS[code[1]] + ')';
    }
    setState('error', 'Not connected: ' + text);
    if (config.password) {
        field.value = '';
        field.focus();
    }
}

function connect(password) {
    stop();
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    setState('connecting', 'Connecting\\u2026');
    try {
        connection = new SpiceHtml5.SpiceMainConn({
            uri: scheme + location.host + config.path,
            screen_id: 'spice-screen',
            message_id: 'spice-messages',
            password: password,
            onerror: onError,
            onsuccess: () => setState('connected', 'Connected'),
            onagent: onAgent,
        });
    } catch (e) {
        onError(e);
    }
}

form.addEventListener('submit', (event) => {
    event.preventDefault();
    connect(field.value);
});

if (config.password) {
    setState('login', 'Password required');
    field.focus();
} else {
    connect('');
}
"""

_MISSING = """
document.body.dataset.state = 'error';
document.getElementById('status').className = 'error';
document.getElementById('status').textContent =
    'The spice-html5 client is not installed on the server (see --html5-dir).';
"""


def render_page(*, title: str, module: str | None, password: bool) -> bytes:
    """The page's HTML. ``module`` is spice-html5's entry module relative to the site root
    (None when no spice-html5 was found: the page then says so); ``password`` shows the
    password field instead of connecting at once."""
    config = json.dumps({"path": WEBSOCKET_PATH, "password": password})
    # Inside <script>, only "</" can end the element early.
    config = config.replace("</", "<\\/")
    script = _SCRIPT % {"module": module} if module is not None else _MISSING
    body_class = ' class="ticketing"' if password else ""
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<style>{_STYLE}</style>
<script type="application/json" id="trio-spice-config">{config}</script>
<script type="module">{script}</script>
</head>
<body data-state="loading"{body_class}>
<header>
<h1>{html.escape(title)}</h1>
<span id="status" role="status">Loading\u2026</span>
<form id="login">
<input type="text" name="username" autocomplete="username" value="spice" hidden>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password">
<button type="submit" id="connect">Connect</button>
</form>
</header>
<div id="spice-area"><div id="spice-screen"></div></div>
<div id="spice-messages"></div>
</body>
</html>
"""
    return page.encode("utf-8")
