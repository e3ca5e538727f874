/**
 * A small typed layer over the generated modelcatalog.v1 clients: sign-in with the bearer
 * token kept for later calls, a streamed upload that declares the file's size and SHA-256, a
 * download that is verified before it replaces anything, and the ErrorInfo reason of an error.
 *
 * The generated code under ./gen stays usable on its own: `createCatalogTransport` gives a
 * transport for `createClient(ModelService, transport)`, and `CatalogClient` exposes the three
 * generated clients it uses.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import type * as http2 from "node:http2";
import { basename } from "node:path";

import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type Client,
  Code,
  ConnectError,
  type Interceptor,
  type Transport,
  createClient,
} from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";

import { type ErrorInfo, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { AuthService } from "./gen/modelcatalog/v1/auth_service_pb.js";
import { ErrorReason } from "./gen/modelcatalog/v1/error_reason_pb.js";
import { FolderService } from "./gen/modelcatalog/v1/folder_service_pb.js";
import {
  ModelService,
  type UploadModelVersionHeaderSchema,
  type UploadModelVersionRequestSchema,
} from "./gen/modelcatalog/v1/model_service_pb.js";
import type { ModelVersion, User } from "./gen/modelcatalog/v1/resources_pb.js";

/** File bytes travel in chunks of 1 MiB, the size the server performs best with. */
export const CHUNK_BYTES = 1024 * 1024;

/** The ErrorInfo domain of every error the server sends. */
export const ERROR_DOMAIN = "modelcatalog.v1";

/**
 * Receive windows of the HTTP/2 connection. With Node's defaults (64 KiB per stream and per
 * connection) a download ran at 40–55 MiB/s here and Node sent about one WINDOW_UPDATE per
 * DATA frame; with these it ran at 100–180 MiB/s, no slower than with windows 4 times larger
 * (bench/download.ts). They stay bounded, as the server's own 4 MiB window is, so a slow
 * consumer lets little pile up.
 */
export const DEFAULT_STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SESSION_WINDOW_BYTES = 8 * 1024 * 1024;

/** Largest DATA frame the server may send: large frames cost its sending side far less CPU. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** How the client reaches the server: gRPC over HTTP/2 and TLS. */
export interface CatalogTransportOptions {
  /** The server's "host:port", e.g. "127.0.0.1:50051". */
  address: string;
  /**
   * A PEM certificate to trust for this server only, e.g. the self-signed one a new server
   * makes. Without it Node's trust store applies, which NODE_EXTRA_CA_CERTS extends.
   */
  caCert?: string | Buffer;
  /** Interceptors for every call, e.g. one that adds the authorization header. */
  interceptors?: Interceptor[];
  /** Receive window of each stream; 0 or absent means DEFAULT_STREAM_WINDOW_BYTES. */
  streamWindowBytes?: number;
  /** Receive window of the whole connection; 0 or absent means DEFAULT_SESSION_WINDOW_BYTES. */
  sessionWindowBytes?: number;
  /** The largest frame the server may send; absent means DEFAULT_MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
}

/**
 * An HTTP/2 session manager that widens each new connection's receive window, which Node
 * offers only as a method of the session (`setLocalWindowSize`), not as a connect option.
 */
class WindowedSessionManager extends Http2SessionManager {
  private readonly widened = new WeakSet<http2.Http2Session>();

  constructor(
    url: string,
    nodeOptions: http2.SecureClientSessionOptions,
    private readonly sessionWindowBytes: number,
  ) {
    super(url, {}, nodeOptions);
  }

  override async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(method, path, headers, options);
    const session = stream.session;
    if (session !== undefined && !this.widened.has(session)) {
      session.setLocalWindowSize(this.sessionWindowBytes);
      this.widened.add(session);
    }
    return stream;
  }
}

/** A transport and the connection it owns, which `close` ends. */
export interface CatalogTransport {
  transport: Transport;
  close(): void;
}

/** A gRPC transport to the server over HTTP/2 + TLS with windows sized for file transfers. */
export function createCatalogTransport(options: CatalogTransportOptions): CatalogTransport {
  const baseUrl = `https://${options.address}`;
  const nodeOptions: http2.SecureClientSessionOptions = {
    settings: {
      initialWindowSize: options.streamWindowBytes || DEFAULT_STREAM_WINDOW_BYTES,
      maxFrameSize: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    },
  };
  if (options.caCert !== undefined) {
    nodeOptions.ca = options.caCert;
  }
  const sessionManager = new WindowedSessionManager(
    baseUrl,
    nodeOptions,
    options.sessionWindowBytes || DEFAULT_SESSION_WINDOW_BYTES,
  );
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager,
    interceptors: options.interceptors ?? [],
  });
  return { transport, close: () => sessionManager.abort() };
}

/** The ErrorInfo the server attached to an error, if `error` is a ConnectError carrying one. */
export function errorInfo(error: unknown): ErrorInfo | undefined {
  if (!(error instanceof ConnectError)) {
    return undefined;
  }
  return error.findDetails(ErrorInfoSchema).find((info) => info.domain === ERROR_DOMAIN);
}

/**
 * The reason of an error as the ErrorReason name without its ERROR_REASON_ prefix, e.g.
 * "FOLDER_ACCESS_DENIED" (compare with `ErrorReason[ErrorReason.FOLDER_ACCESS_DENIED]`), or
 * undefined when the error carries no ErrorInfo (e.g. the connection failed).
 */
export function errorReason(error: unknown): string | undefined {
  return errorInfo(error)?.reason;
}

/** What an upload may say about the file besides its bytes. */
export interface UploadOptions {
  /** The name shown for the version; defaults to the file's base name. */
  fileName?: string;
  /** The media type; empty means "application/octet-stream". */
  contentType?: string;
  description?: string;
  labels?: Record<string, string>;
}

/**
 * Options of a `CatalogClient`: where the server is, how to trust it, and interceptors that
 * run after the one that adds the token.
 */
export type CatalogClientOptions = CatalogTransportOptions;

/**
 * One signed-in user's connection to the server. `auth`, `folders` and `models` are the
 * generated clients; every call through them carries the token of the last `signIn`.
 */
export class CatalogClient {
  readonly auth: Client<typeof AuthService>;
  readonly folders: Client<typeof FolderService>;
  readonly models: Client<typeof ModelService>;
  private accessToken: string | undefined;
  private readonly connection: CatalogTransport;

  constructor(options: CatalogClientOptions) {
    const bearer: Interceptor = (next) => (request) => {
      if (this.accessToken !== undefined) {
        request.header.set("authorization", `Bearer ${this.accessToken}`);
      }
      return next(request);
    };
    this.connection = createCatalogTransport({
      ...options,
      interceptors: [bearer, ...(options.interceptors ?? [])],
    });
    this.auth = createClient(AuthService, this.connection.transport);
    this.folders = createClient(FolderService, this.connection.transport);
    this.models = createClient(ModelService, this.connection.transport);
  }

  /** Creates an account; it does not sign in. */
  async signUp(username: string, password: string): Promise<User> {
    const response = await this.auth.signUp({ username, password });
    return required(response.user, "SignUpResponse.user");
  }

  /** Signs in and keeps the access token for every later call of this client. */
  async signIn(username: string, password: string): Promise<User> {
    const response = await this.auth.signIn({ username, password });
    this.accessToken = response.accessToken;
    return required(response.user, "SignInResponse.user");
  }

  /**
   * Sends `token` with every later call instead of a sign-in token: an access token a user
   * made for a machine with `auth.createAccessToken` (what a CI job is given).
   */
  useAccessToken(token: string): void {
    this.accessToken = token;
  }

  /**
   * Stores the file at `path` as the next version of a model. The file is read twice, in
   * 1 MiB blocks, so it never sits in memory: once to declare its size and SHA-256, which
   * lets the server reject a file that changed or was damaged on the way, then to stream it.
   */
  async uploadFile(modelId: string, path: string, options: UploadOptions = {}): Promise<ModelVersion> {
    const { size, sha256 } = await measureFile(path);
    const header: MessageInitShape<typeof UploadModelVersionHeaderSchema> = {
      modelId,
      fileName: options.fileName ?? basename(path),
      contentType: options.contentType ?? "",
      sizeBytes: BigInt(size),
      sha256,
      description: options.description ?? "",
      labels: options.labels ?? {},
    };
    const response = await this.models.uploadModelVersion(uploadRequests(header, path));
    return required(response.version, "UploadModelVersionResponse.version");
  }

  /**
   * Saves a version's file at `destination`. Bytes go to `<destination>.part`, hashed as they
   * arrive; only when size and SHA-256 match the version's does it replace `destination`.
   * Otherwise the part file is deleted and a DATA_LOSS ConnectError is thrown whose reason
   * is SIZE_MISMATCH or DIGEST_MISMATCH, as if the server had refused it.
   */
  async downloadFile(modelId: string, version: number | bigint, destination: string): Promise<ModelVersion> {
    const partPath = `${destination}.part`;
    const digest = createHash("sha256");
    let size = 0;
    let metadata: ModelVersion | undefined;
    const file = await open(partPath, "w");
    try {
      const messages = this.models.downloadModelVersion({ modelId, version: BigInt(version) });
      for await (const message of messages) {
        if (message.content.case === "version") {
          metadata = message.content.value;
        } else if (message.content.case === "chunk") {
          digest.update(message.content.value);
          await file.write(message.content.value);
          size += message.content.value.length;
        }
      }
      await file.sync();
    } catch (error) {
      await file.close();
      await rm(partPath, { force: true });
      throw error;
    }
    await file.close();
    const expected = required(metadata, "DownloadModelVersionResponse.version");
    const sha256 = digest.digest("hex");
    if (BigInt(size) !== expected.sizeBytes || sha256 !== expected.sha256) {
      await rm(partPath, { force: true });
      const reason = BigInt(size) !== expected.sizeBytes ? ErrorReason.SIZE_MISMATCH : ErrorReason.DIGEST_MISMATCH;
      throw new ConnectError(
        `the download of version ${expected.version} of model ${expected.modelId} is damaged:` +
          ` got ${size} bytes with SHA-256 ${sha256}, expected ${expected.sizeBytes} bytes with` +
          ` SHA-256 ${expected.sha256}; ${destination} is unchanged`,
        Code.DataLoss,
        undefined,
        [{ desc: ErrorInfoSchema, value: { reason: ErrorReason[reason], domain: ERROR_DOMAIN } }],
      );
    }
    await rename(partPath, destination);
    return expected;
  }

  /** Closes the connection; calls in flight end with an error. */
  close(): void {
    this.connection.close();
  }
}

/** The size and SHA-256 (hex) of a file, read in 1 MiB blocks. */
async function measureFile(path: string): Promise<{ size: number; sha256: string }> {
  const digest = createHash("sha256");
  let size = 0;
  for await (const block of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
    const bytes = block as Buffer;
    digest.update(bytes);
    size += bytes.length;
  }
  return { size, sha256: digest.digest("hex") };
}

/** The upload stream: the header, then the file in chunks of at most 1 MiB. */
async function* uploadRequests(
  header: MessageInitShape<typeof UploadModelVersionHeaderSchema>,
  path: string,
): AsyncGenerator<MessageInitShape<typeof UploadModelVersionRequestSchema>> {
  yield { content: { case: "header", value: header } };
  for await (const block of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
    yield { content: { case: "chunk", value: block as Buffer } };
  }
}

/** `value`, which the contract says the server always sets. */
function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) {
    throw new ConnectError(`the server's response has no ${field}`, Code.Internal);
  }
  return value;
}
