/**
 * The README scenarios through the TypeScript client, against a real server over TLS.
 *
 * tests/polyglot/test_typescript.py starts the server and runs these with
 * MODELCATALOG_ADDRESS ("host:port") and MODELCATALOG_CA_CERT (the server's certificate, also
 * in NODE_EXTRA_CA_CERTS). Each test signs up users of its own, so the tests share one server.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { Code, ConnectError, type Interceptor, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { CHUNK_BYTES, CatalogClient, errorReason } from "../src/client.js";
import { AccessTokenScope, AuthService } from "../src/gen/modelcatalog/v1/auth_service_pb.js";
import { ErrorReason } from "../src/gen/modelcatalog/v1/error_reason_pb.js";
import type { DownloadModelVersionResponse } from "../src/gen/modelcatalog/v1/model_service_pb.js";
import { FolderRole } from "../src/gen/modelcatalog/v1/resources_pb.js";

const PASSWORD = "correct horse battery";

function setting(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (tests/polyglot/test_typescript.py sets it)`);
  return value;
}

const address = setting("MODELCATALOG_ADDRESS");
const caCert = readFileSync(setting("MODELCATALOG_CA_CERT"));
const clients: CatalogClient[] = [];
after(() => clients.forEach((client) => client.close()));

/** A new user, signed up and signed in, with a name no other test uses. */
async function signedIn(
  role: string,
  interceptors: Interceptor[] = [],
): Promise<{ client: CatalogClient; username: string }> {
  const username = `${role}-${randomUUID().slice(0, 8)}`;
  const client = new CatalogClient({ address, caCert, interceptors });
  clients.push(client);
  await client.signUp(username, PASSWORD);
  await client.signIn(username, PASSWORD);
  return { client, username };
}

async function createFolder(client: CatalogClient, name: string): Promise<string> {
  const { folder } = await client.folders.createFolder({ name });
  assert.ok(folder);
  return folder.id;
}

/** The names of every model the client may see, page by page. */
async function modelNames(client: CatalogClient, folderId = ""): Promise<string[]> {
  const names: string[] = [];
  let pageToken = "";
  do {
    const page = await client.models.listModels({ folderId, pageSize: 1, pageToken });
    names.push(...page.models.map((model) => model.name));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return names.sort();
}

/** Whether `error` is a ConnectError with `code` and the ErrorInfo reason `reason`. */
function refusedWith(code: Code, reason: ErrorReason): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ConnectError, `expected a ConnectError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(errorReason(error), ErrorReason[reason], error.message);
    return true;
  };
}

test("creating a model in another user's folder is refused with FOLDER_ACCESS_DENIED", async () => {
  const owner = await signedIn("owner");
  const intruder = await signedIn("intruder");
  const folderId = await createFolder(owner.client, "owner-folder");
  await assert.rejects(
    intruder.client.models.createModel({ folderId, name: "intruder" }),
    refusedWith(Code.PermissionDenied, ErrorReason.FOLDER_ACCESS_DENIED),
  );
  assert.deepEqual(await modelNames(owner.client, folderId), []);
});

test("an editor grant lets the other user create a model in the folder", async () => {
  const owner = await signedIn("owner");
  const editor = await signedIn("editor");
  const folderId = await createFolder(owner.client, "shared");
  await owner.client.folders.grantFolderAccess({ folderId, username: editor.username, role: FolderRole.EDITOR });
  const { model } = await editor.client.models.createModel({ folderId, name: "welcome" });
  assert.equal(model?.creatorUsername, editor.username);
  assert.deepEqual(await modelNames(owner.client, folderId), ["welcome"]);
});

test("each user lists exactly the models they may see: 2, then 3 once a folder is shared", async () => {
  const first = await signedIn("first");
  const second = await signedIn("second");
  const firstFolder = await createFolder(first.client, "one");
  await first.client.models.createModel({ folderId: firstFolder, name: "m1" });
  await first.client.models.createModel({ folderId: firstFolder, name: "m2" });
  const secondFolder = await createFolder(second.client, "two");
  await second.client.models.createModel({ folderId: secondFolder, name: "m3" });
  assert.deepEqual(await modelNames(first.client), ["m1", "m2"]);
  assert.deepEqual(await modelNames(second.client), ["m3"]);
  await second.client.folders.grantFolderAccess({
    folderId: secondFolder,
    username: first.username,
    role: FolderRole.VIEWER,
  });
  assert.deepEqual(await modelNames(first.client), ["m1", "m2", "m3"]);
  assert.deepEqual(await modelNames(second.client), ["m3"]);
});

test("an uploaded file downloads byte-identical with the SHA-256 the server recorded", async (t) => {
  const { client } = await signedIn("uploader");
  const folderId = await createFolder(client, "files");
  const { model } = await client.models.createModel({ folderId, name: "weights" });
  assert.ok(model);
  const workdir = await mkdtemp(join(tmpdir(), "modelcatalog-ts-"));
  t.after(() => rm(workdir, { recursive: true, force: true }));
  const bytes = randomBytes(3 * CHUNK_BYTES + 12_345);
  const source = join(workdir, "model.onnx");
  await writeFile(source, bytes);
  const sha256 = createHash("sha256").update(bytes).digest("hex");

  const uploaded = await client.uploadFile(model.id, source, { labels: { stage: "test" } });
  assert.equal(uploaded.version, 1n);
  assert.equal(uploaded.sizeBytes, BigInt(bytes.length));
  assert.equal(uploaded.sha256, sha256);
  assert.equal(uploaded.fileName, "model.onnx");

  const destination = join(workdir, "downloaded.onnx");
  const downloaded = await client.downloadFile(model.id, uploaded.version, destination);
  assert.equal(downloaded.sha256, sha256);
  assert.ok(bytes.equals(await readFile(destination)), "the downloaded bytes differ");
});

/** Flips the first byte of every chunk a download receives, as a faulty network path might. */
const damageDownloads: Interceptor = (next) => async (request) => {
  const response = await next(request);
  if (!response.stream || request.method.name !== "DownloadModelVersion") {
    return response;
  }
  async function* damaged(messages: AsyncIterable<DownloadModelVersionResponse>) {
    for await (const message of messages) {
      if (message.content.case === "chunk") {
        message.content.value[0] ^= 0xff;
      }
      yield message;
    }
  }
  return { ...response, message: damaged(response.message as AsyncIterable<DownloadModelVersionResponse>) };
};

test("a download damaged on the way is deleted and refused with DIGEST_MISMATCH", async (t) => {
  const { client } = await signedIn("careful", [damageDownloads]);
  const folderId = await createFolder(client, "files");
  const { model } = await client.models.createModel({ folderId, name: "weights" });
  assert.ok(model);
  const workdir = await mkdtemp(join(tmpdir(), "modelcatalog-ts-"));
  t.after(() => rm(workdir, { recursive: true, force: true }));
  const source = join(workdir, "model.bin");
  await writeFile(source, randomBytes(CHUNK_BYTES + 1));
  const uploaded = await client.uploadFile(model.id, source);
  const destination = join(workdir, "existing.bin");
  await writeFile(destination, "kept");

  await assert.rejects(
    client.downloadFile(model.id, uploaded.version, destination),
    refusedWith(Code.DataLoss, ErrorReason.DIGEST_MISMATCH),
  );
  assert.equal(await readFile(destination, "utf8"), "kept");
  assert.deepEqual(await readdir(workdir), ["existing.bin", "model.bin"]);
});

test("a declared SHA-256 the bytes do not match is refused with DIGEST_MISMATCH", async () => {
  const { client } = await signedIn("uploader");
  const folderId = await createFolder(client, "files");
  const { model } = await client.models.createModel({ folderId, name: "weights" });
  assert.ok(model);
  const chunk = randomBytes(1024);
  const requests = async function* () {
    yield {
      content: {
        case: "header" as const,
        value: { modelId: model.id, fileName: "x.bin", sha256: "0".repeat(64), sizeBytes: 1024n },
      },
    };
    yield { content: { case: "chunk" as const, value: chunk } };
  };
  await assert.rejects(
    client.models.uploadModelVersion(requests()),
    refusedWith(Code.DataLoss, ErrorReason.DIGEST_MISMATCH),
  );
});

test("the generated client alone, trusting the CA through NODE_EXTRA_CA_CERTS, decodes ErrorInfo", async () => {
  assert.ok(process.env.NODE_EXTRA_CA_CERTS, "NODE_EXTRA_CA_CERTS must name the server's CA");
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: `https://${address}` }));
  await assert.rejects(
    auth.getCurrentUser({}),
    refusedWith(Code.Unauthenticated, ErrorReason.TOKEN_MISSING),
  );
  await assert.rejects(
    auth.signIn({ username: `nobody-${randomUUID().slice(0, 8)}`, password: PASSWORD }),
    refusedWith(Code.Unauthenticated, ErrorReason.INVALID_CREDENTIALS),
  );
});

test("a read-only access token lists models and is refused a change with TOKEN_READ_ONLY", async () => {
  const { client: owner } = await signedIn("owner");
  await owner.models.createModel({ folderId: await createFolder(owner, "weights"), name: "resnet" });
  const made = await owner.auth.createAccessToken({
    name: "ci",
    scope: AccessTokenScope.READ,
    ttlSeconds: 3600n,
  });
  const job = new CatalogClient({ address, caCert });
  clients.push(job);
  job.useAccessToken(made.secret);
  assert.deepEqual(await modelNames(job), ["resnet"]);
  await assert.rejects(
    job.folders.createFolder({ name: "another" }),
    refusedWith(Code.PermissionDenied, ErrorReason.TOKEN_READ_ONLY),
  );
});
