#!/usr/bin/env node
/*
 * Run one ONNX model in ONNX Runtime (onnxruntime-node, CPU execution
 * provider) on a raw float32 input and write the raw float32 output.
 *
 * Usage: node bench/ort_run.js MODEL.onnx INPUT.bin OUTPUT.bin
 *            [--shape 1,3,224,224] [--threads N] [--repeat N]
 *
 * INPUT.bin is little-endian float32 in NCHW order; its size must be a
 * multiple of the product of --shape (default: the model's own input shape
 * when ORT reports it, else 1,3,224,224). Several inputs back to back are run
 * one after the other (a whole test set for a batch-1 model). OUTPUT.bin
 * receives the first output tensor of each run, concatenated.
 * With --repeat N the model also runs N more times and the median latency
 * is printed, one JSON object per run on stdout.
 */
"use strict";

const fs = require("fs");
const path = require("path");

function usage() {
        process.stderr.write("usage: ort_run.js MODEL.onnx INPUT.bin OUTPUT.bin " +
                             "[--shape 1,3,224,224] [--threads N] [--repeat N]\n");
        process.exit(2);
}

function argsParse(argv) {
        const positional = [];
        const options = { shape: null, threads: 1, repeat: 0 };
        for (let i = 0; i < argv.length; i++) {
                const a = argv[i];
                if (a === "--shape" || a === "--threads" || a === "--repeat") {
                        if (i + 1 >= argv.length)
                                usage();
                        const v = argv[++i];
                        if (a === "--shape") {
                                options.shape = v.split(",").map(Number);
                                if (options.shape.some((d) => !Number.isInteger(d) || d <= 0))
                                        usage();
                        } else {
                                options[a.slice(2)] = Number.parseInt(v, 10);
                                if (!(options[a.slice(2)] >= 0))
                                        usage();
                        }
                } else {
                        positional.push(a);
                }
        }
        if (positional.length !== 3)
                usage();
        return [positional, options];
}

function shapeFromSession(session) {
        /* inputMetadata appeared in onnxruntime-node 1.21; older versions
         * (and symbolic dimensions) fall back to the command line. */
        const meta = session.inputMetadata;
        if (!meta || !meta[0] || !meta[0].isTensor || !meta[0].shape)
                return null;
        const shape = meta[0].shape;
        return shape.every((d) => Number.isInteger(d) && d > 0) ? shape : null;
}

async function main() {
        let ort;
        try {
                ort = require(path.join(__dirname, "node_modules", "onnxruntime-node"));
        } catch (e) {
                process.stderr.write(`cannot load onnxruntime-node (run bench/compare_ort.sh once): ${e.message}\n`);
                process.exit(1);
        }
        const [[modelPath, inputPath, outputPath], options] = argsParse(process.argv.slice(2));

        /* One intra-op thread by default: the comparison is per-core, and the
         * shared CI machine has only two cores. */
        const session = await ort.InferenceSession.create(modelPath, {
                executionProviders: ["cpu"],
                graphOptimizationLevel: "all",
                intraOpNumThreads: options.threads,
                interOpNumThreads: 1,
        });
        const shape = options.shape || shapeFromSession(session) || [1, 3, 224, 224];
        const count = shape.reduce((a, b) => a * b, 1);

        const bytes = fs.readFileSync(inputPath);
        if (bytes.length === 0 || bytes.length % (count * 4) !== 0) {
                process.stderr.write(`${inputPath}: ${bytes.length} bytes, not a multiple of ` +
                                     `shape ${shape.join("x")} (${count * 4} bytes)\n`);
                process.exit(1);
        }
        const inputs = bytes.length / (count * 4);
        const outChunks = [];
        let feeds, out;
        for (let n = 0; n < inputs; n++) {
                /* Copy into an aligned buffer: a Buffer from readFileSync may
                 * share a pool slab at an offset that is not a multiple of 4. */
                const data = new Float32Array(count);
                for (let i = 0; i < count; i++)
                        data[i] = bytes.readFloatLE((n * count + i) * 4);
                feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, shape) };
                const results = await session.run(feeds);
                out = results[session.outputNames[0]];
                const outBytes = Buffer.alloc(out.data.length * 4);
                for (let i = 0; i < out.data.length; i++)
                        outBytes.writeFloatLE(out.data[i], i * 4);
                outChunks.push(outBytes);
        }
        fs.writeFileSync(outputPath, Buffer.concat(outChunks));

        const report = { model: modelPath, ort: ort.env.versions ? ort.env.versions.common : null,
                         output: session.outputNames[0], output_dims: out.dims, inputs, threads: options.threads };
        if (options.repeat > 0) {
                const times = [];
                for (let i = 0; i < options.repeat; i++) {
                        const t0 = process.hrtime.bigint();
                        await session.run(feeds);
                        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
                }
                times.sort((a, b) => a - b);
                report.repeat = options.repeat;
                report.median_ms = times[Math.floor(times.length / 2)];
                report.p90_ms = times[Math.min(Math.floor(0.9 * (times.length - 1) + 0.5), times.length - 1)];
                report.min_ms = times[0];
        }
        process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((e) => {
        process.stderr.write(`ort_run: ${e.message}\n`);
        process.exit(1);
});
