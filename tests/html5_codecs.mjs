// Decodes SPICE images with spice-html5's own code, the way display.js does: spicetype.js's
// SpiceImage.from_dv() parses the image (descriptor, uint32 data_size, the big-endian LZ
// header), then lz.js's convert_spice_lz_to_web() turns an LZ_RGB image, or the alpha stream
// of a JPEG_ALPHA image, into canvas ImageData.
//
//   node tests/html5_codecs.mjs SPICE_HTML5_SRC_DIR < frames > decoded
//
// stdin: frames of [uint32 LE length][a SpiceImage: 18-byte descriptor + payload].
// stdout, per frame: [uint32 LE width, height][width * height * 4 bytes R, G, B, A in canvas
// order, as html5 hands them to putImageData]. Exit status 1 when html5 refuses an image.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const srcDir = process.argv[2];
if (!srcDir) {
    console.error("usage: node html5_codecs.mjs SPICE_HTML5_SRC_DIR");
    process.exit(2);
}
// The html5 sources are ES modules importing each other ('./enums.js') from a package without
// "type": "module"; copies next to a package.json that says so load as they do in a browser.
const moduleDir = mkdtempSync(join(tmpdir(), "html5-codecs-"));
let chunks;
try {
    for (const name of ["enums.js", "quic.js", "lz.js", "spicetype.js", "spicedataview.js"]) {
        copyFileSync(join(srcDir, name), join(moduleDir, name));
    }
    writeFileSync(join(moduleDir, "package.json"), '{"type": "module"}\n');
    const load = (name) => import(pathToFileURL(join(moduleDir, name)).href);
    const { Constants } = await load("enums.js");
    const { SpiceImage } = await load("spicetype.js");
    const { SpiceDataView } = await load("spicedataview.js");
    const { convert_spice_lz_to_web } = await load("lz.js");

    // All lz.js asks of the canvas context.
    const context = {
        createImageData: (width, height) => ({
            width,
            height,
            data: new Uint8ClampedArray(width * height * 4),
        }),
    };

    const input = readFileSync(0);
    chunks = [];
    let at = 0;
    while (at < input.length) {
        const length = input.readUInt32LE(at);
        at += 4;
        // A fresh ArrayBuffer per message, as the websocket hands display.js one.
        const message = new Uint8Array(input.subarray(at, at + length)).buffer;
        at += length;
        const image = new SpiceImage();
        image.from_dv(new SpiceDataView(message), 0, message);
        let lz;
        if (image.descriptor.type === Constants.SPICE_IMAGE_TYPE_LZ_RGB) {
            lz = image.lz_rgb;
        } else if (image.descriptor.type === Constants.SPICE_IMAGE_TYPE_JPEG_ALPHA) {
            lz = image.jpeg_alpha.alpha;
        }
        const decoded = lz && convert_spice_lz_to_web(context, lz);
        if (!decoded) {
            throw new Error(`spice-html5 refused image type ${image.descriptor.type}`);
        }
        const head = Buffer.alloc(8);
        head.writeUInt32LE(decoded.width, 0);
        head.writeUInt32LE(decoded.height, 4);
        chunks.push(head, Buffer.from(decoded.data.buffer));
    }
} finally {
    rmSync(moduleDir, { recursive: true, force: true });
}
process.stdout.write(Buffer.concat(chunks));
