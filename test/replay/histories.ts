/**
 * Event histories in proto3 JSON form (what `temporal workflow show -o json` prints) and back:
 * scripts/record-histories.ts writes the files in ./histories with historyToJson, and
 * replay.test.ts reads them with historyFromJson.
 */
import { createRequire } from 'node:module';
import { historyFromJSON, historyToJSON, type History } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

/**
 * The SDK's historyToJSON / historyFromJSON (@temporalio/common/lib/proto-utils) call protobufjs's
 * protojson with a Type built by @temporalio/proto. When npm installs two copies of protobufjs 8
 * (one under @temporalio/common, one under @temporalio/proto, because @grpc/proto-loader's
 * protobufjs 7 took the top-level slot), protojson's `instanceof Type` check fails with
 * "TypeError: type must be a Type". Then we use the protojson of the very copy @temporalio/proto
 * uses: the same function on the same Type, so the output is identical.
 */
function sameCopyProtoJson(): ProtoJson {
  return createRequire(require.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as ProtoJson;
}

const isTypeMismatch = (err: unknown): boolean => err instanceof TypeError && /type must be a Type/.test(err.message);

/** A history in proto3 JSON form (what `temporal workflow show -o json` prints), indented. */
export function historyToJson(history: History): string {
  let json: unknown;
  try {
    json = JSON.parse(historyToJSON(history));
  } catch (err) {
    if (!isTypeMismatch(err)) throw err;
    const type = temporal.api.history.v1.History;
    json = sameCopyProtoJson().toJson(type, type.fromObject(history));
  }
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** Reads back what historyToJson wrote (or a history file from the Temporal CLI or Web UI). */
export function historyFromJson(json: unknown): History {
  try {
    return historyFromJSON(json);
  } catch (err) {
    if (!isTypeMismatch(err)) throw err;
    const history = sameCopyProtoJson().fromJson(temporal.api.history.v1.History, json, { ignoreUnknownFields: true });
    if (!history) throw new TypeError('invalid history JSON');
    return history as History;
  }
}
