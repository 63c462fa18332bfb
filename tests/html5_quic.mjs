// Decodes QUIC images with spice-html5's own decoder (quic.js), the way display.js does:
// SpiceQuic.from_dv() on a message buffer holding the image's uint32 data_size and the stream.
//
//   node tests/html5_quic.mjs PATH/TO/quic.js < frames > decoded
//
// stdin: frames of [uint32 LE length][SPICE QUIC image data: uint32 data_size + QUIC stream].
// stdout, per frame: [uint32 LE type, width, height][width * height * 4 bytes of the decoder's
// output: B, G, R, pad (RGB32) or B, G, R, alpha (RGBA)]. One process decodes every frame, so
// the decoder's module-level state carries over from image to image as in a browser session.
import { readFileSync } from "node:fs";

const quicPath = process.argv[2];
if (!quicPath) {
    console.error("usage: node html5_quic.mjs PATH/TO/quic.js");
    process.exit(2);
}
// quic.js is an ES module in a package without "type": "module"; a data: URL loads it as one.
const source = readFileSync(quicPath);
const Quic = await import(`data:text/javascript;base64,${source.toString("base64")}`);

const input = readFileSync(0);
const chunks = [];
let at = 0;
while (at < input.length) {
    const length = input.readUInt32LE(at);
    at += 4;
    // A fresh ArrayBuffer per message, as the websocket hands display.js one.
    const message = new Uint8Array(input.subarray(at, at + length)).buffer;
    at += length;
    const image = new Quic.SpiceQuic();
    image.from_dv(new DataView(message), 0, message);
    if (!image.outptr) {
        console.error("spice-html5 refused the QUIC stream");
        process.exit(1);
    }
    const head = Buffer.alloc(12);
    head.writeUInt32LE(image.type, 0);
    head.writeUInt32LE(image.width, 4);
    head.writeUInt32LE(image.height, 8);
    chunks.push(head, Buffer.from(image.outptr.buffer, image.outptr.byteOffset, image.outptr.length));
}
process.stdout.write(Buffer.concat(chunks));
