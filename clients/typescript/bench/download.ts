/**
 * Upload and download rates of the typed client, with Node's HTTP/2 defaults and with the
 * client's windows and frame size, against a running server:
 *
 *   MODELCATALOG_ADDRESS=127.0.0.1:50051 MODELCATALOG_CA_CERT=data/tls/server.crt \
 *     npm run bench -- [MiB, default 256]
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { CHUNK_BYTES, CatalogClient, type CatalogClientOptions } from "../src/client.js";

/** What Node's http2 module uses when nothing is set: RFC 9113's initial values. */
const NODE_DEFAULTS = { streamWindowBytes: 65_535, sessionWindowBytes: 65_535, maxFrameBytes: 16_384 };

const SETUPS: Record<string, Partial<CatalogClientOptions>> = {
  "node defaults (64 KiB windows, 16 KiB frames)": NODE_DEFAULTS,
  "client windows, 16 KiB frames": { maxFrameBytes: NODE_DEFAULTS.maxFrameBytes },
  "client windows and 1 MiB frames (the default)": {},
};

function rate(bytes: number, startedAt: bigint): string {
  const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
  return `${(bytes / 2 ** 20 / seconds).toFixed(1)} MiB/s (${seconds.toFixed(2)} s)`;
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const file = await open(path, "w");
  try {
    for (let written = 0; written < bytes; written += CHUNK_BYTES) {
      await file.write(randomBytes(Math.min(CHUNK_BYTES, bytes - written)));
    }
  } finally {
    await file.close();
  }
}

async function main(): Promise<void> {
  const address = process.env.MODELCATALOG_ADDRESS ?? "127.0.0.1:50051";
  const caPath = process.env.MODELCATALOG_CA_CERT;
  const caCert = caPath === undefined ? undefined : await readFile(caPath);
  const bytes = Number(process.argv[2] ?? "256") * 2 ** 20;
  const workdir = await mkdtemp(join(tmpdir(), "modelcatalog-bench-"));
  const source = join(workdir, "model.bin");
  try {
    await writeRandomFile(source, bytes);
    const username = `bench-${randomUUID().slice(0, 8)}`;
    const uploader = new CatalogClient({ address, caCert });
    await uploader.signUp(username, "benchmark password");
    await uploader.signIn(username, "benchmark password");
    const { folder } = await uploader.folders.createFolder({ name: username });
    const { model } = await uploader.models.createModel({ folderId: folder!.id, name: "bench" });
    let startedAt = process.hrtime.bigint();
    const version = await uploader.uploadFile(model!.id, source);
    console.log(`upload ${bytes / 2 ** 20} MiB: ${rate(bytes, startedAt)}`);
    uploader.close();
    for (const [name, setup] of Object.entries(SETUPS)) {
      const client = new CatalogClient({ address, caCert, ...setup });
      await client.signIn(username, "benchmark password");
      let received = 0;
      startedAt = process.hrtime.bigint();
      try {
        const digest = createHash("sha256");
        for await (const message of client.models.downloadModelVersion({ modelId: model!.id, version: version.version })) {
          if (message.content.case === "chunk") {
            digest.update(message.content.value);
            received += message.content.value.length;
          }
        }
        console.log(`stream and hash, ${name}: ${rate(received, startedAt)}`);
      } catch (error) {
        console.log(`stream and hash, ${name}: ${rate(received, startedAt)} for ${received / 2 ** 20} MiB, then ${error}`);
      } finally {
        client.close();
      }
    }
    const client = new CatalogClient({ address, caCert });
    await client.signIn(username, "benchmark password");
    startedAt = process.hrtime.bigint();
    await client.downloadFile(model!.id, version.version, join(workdir, "download.bin"));
    console.log(`downloadFile (write, hash, compare), default client: ${rate(bytes, startedAt)}`);
    client.close();
  } finally {
    await rm(workdir, { recursive: true, force: true });
  }
}

await main();
