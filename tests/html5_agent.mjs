// spice-html5's own agent code as a peer of the agent machine (tests/domain/agent).
//
//   node tests/html5_agent.mjs SPICE_HTML5_SRC_DIR encode > bodies
//   node tests/html5_agent.mjs SPICE_HTML5_SRC_DIR decode < bodies > json lines
//
// encode: the client AGENT_DATA bodies html5 writes for a fixed session, built with
// spicemsg.js's classes and cut the way main.js's send_agent_message cuts them
// (VD_AGENT_MAX_DATA_SIZE minus a mini header): announce caps (request=1), a resize to 800x600,
// a 5-byte file "café.txt" and its data, a 70000-byte file with one 64 KiB data message then a
// cancel, and a file named "../evil". stdout: [uint32 LE length][body] per AGENT_DATA.
// decode: reads the server's AGENT_DATA bodies the same way and parses each as html5 does
// (spicemsg.js SpiceMsgMainAgentData, one whole message per body, then the announce or the
// transfer status); prints one JSON object per body.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [srcDir, mode] = process.argv.slice(2);
if (!srcDir || !["encode", "decode"].includes(mode)) {
    console.error("usage: node html5_agent.mjs SPICE_HTML5_SRC_DIR encode|decode");
    process.exit(2);
}
// The html5 sources are ES modules in a package without "type": "module"; a copy next to a
// package.json that says so loads as it does in a browser.
const moduleDir = mkdtempSync(join(tmpdir(), "html5-agent-"));
try {
    cpSync(srcDir, moduleDir, { recursive: true });
    writeFileSync(join(moduleDir, "package.json"), '{"type": "module"}\n');
    // spicemsg.js pulls in ticket.js, whose bundled jsbn.js probes the browser at load time.
    globalThis.navigator ??= { appName: "Netscape" };
    const load = (name) => import(pathToFileURL(join(moduleDir, name)).href);
    const { Constants } = await load("enums.js");
    const M = await load("spicemsg.js");

    const toArrayBuffer = (buf) => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);

    if (mode === "encode") {
        const out = [];
        // main.js SpiceMainConn.prototype.send_agent_message
        const send = (type, message) => {
            const agentData = new M.SpiceMsgcMainAgentData(type, message);
            const maxsize = Constants.VD_AGENT_MAX_DATA_SIZE - M.SpiceMiniData.prototype.buffer_size();
            const data = new ArrayBuffer(agentData.buffer_size());
            agentData.to_buffer(data);
            for (let sb = 0; sb < agentData.buffer_size(); ) {
                const eb = Math.min(sb + maxsize, agentData.buffer_size());
                out.push(Buffer.from(data.slice(sb, eb)));
                sb = eb;
            }
        };
        const caps = (1 << Constants.VD_AGENT_CAP_MOUSE_STATE) |
            (1 << Constants.VD_AGENT_CAP_MONITORS_CONFIG) | (1 << Constants.VD_AGENT_CAP_REPLY);
        send(Constants.VD_AGENT_ANNOUNCE_CAPABILITIES, new M.VDAgentAnnounceCapabilities(1, caps));
        send(Constants.VD_AGENT_MONITORS_CONFIG, new M.VDAgentMonitorsConfig(0, 800, 600, 32, 0, 0));
        send(Constants.VD_AGENT_FILE_XFER_START, new M.VDAgentFileXferStartMessage(0, "café.txt", 5));
        const hello = toArrayBuffer(Buffer.from("hello"));
        send(Constants.VD_AGENT_FILE_XFER_DATA, new M.VDAgentFileXferDataMessage(0, 5, hello));
        send(Constants.VD_AGENT_FILE_XFER_START, new M.VDAgentFileXferStartMessage(1, "big.bin", 70000));
        const chunk = new ArrayBuffer(32 * Constants.VD_AGENT_MAX_DATA_SIZE);  // FILE_XFER_CHUNK_SIZE
        new Uint8Array(chunk).fill(0x5a);
        send(Constants.VD_AGENT_FILE_XFER_DATA,
             new M.VDAgentFileXferDataMessage(1, chunk.byteLength, chunk));
        send(Constants.VD_AGENT_FILE_XFER_STATUS,
             new M.VDAgentFileXferStatusMessage(1, Constants.VD_AGENT_FILE_XFER_STATUS_CANCELLED));
        send(Constants.VD_AGENT_FILE_XFER_START, new M.VDAgentFileXferStartMessage(2, "../evil", 1));
        const frames = out.map((body) => {
            const length = Buffer.alloc(4);
            length.writeUInt32LE(body.length);
            return Buffer.concat([length, body]);
        });
        process.stdout.write(Buffer.concat(frames));
    } else {
        const input = readFileSync(0);
        const lines = [];
        for (let at = 0; at < input.length; ) {
            const length = input.readUInt32LE(at);
            at += 4;
            const body = toArrayBuffer(input.subarray(at, at + length));
            at += length;
            const msg = new M.SpiceMsgMainAgentData(body);
            const parsed = { type: msg.type, protocol: msg.protocol, size: msg.size,
                             carried: msg.data ? msg.data.byteLength : 0 };
            if (msg.type === Constants.VD_AGENT_ANNOUNCE_CAPABILITIES) {
                const caps = new M.VDAgentAnnounceCapabilities(msg.data);
                parsed.request = caps.request;
                parsed.caps = caps.caps;
            } else if (msg.type === Constants.VD_AGENT_FILE_XFER_STATUS) {
                const status = new M.VDAgentFileXferStatusMessage(msg.data);
                parsed.id = status.id;
                parsed.result = status.result;
            }
            lines.push(JSON.stringify(parsed));
        }
        process.stdout.write(lines.join("\n") + "\n");
    }
} finally {
    rmSync(moduleDir, { recursive: true, force: true });
}
