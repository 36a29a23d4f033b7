/**
 * Temporal Cloud's billable Actions in one recorded workflow history, by the published rules
 * (https://docs.temporal.io/cloud/actions, read 2026-11-25; the same text is
 * docs/evaluate/cloud/actions.mdx in github.com/temporalio/documentation):
 *
 * - a workflow start is one Action; the update of an update-with-start is another;
 * - every accepted (or rejected) update, every signal, every timer started is one;
 * - every activity scheduled is one, and every retry of it one more (attempt - 1 on its start);
 * - all local activities of one workflow task are one Action together (Cloud counts the task's
 *   RecordMarker commands as one), plus the non-first attempts the task's metering reports;
 * - every UpsertWorkflowSearchAttributes command is one, whatever it sets, except one that only
 *   sets TemporalChangeVersion (written by patched()), which is exempt; attributes given at the
 *   start are free;
 * - a memo upsert (WorkflowPropertiesModified) is not in the list: counted here, billed as 0;
 * - queries are billable but leave no event: whoever sends them counts them (the capacity
 *   command's lifecycles send none).
 *
 * Markers: the list names "Record Activity Markers" for local activities; a patched() marker is a
 * RecordMarker too. Every workflow task here that records a patch marker also records a local
 * activity marker, so both readings give the same count; `patchOnlyTasks` says when they differ.
 */
import { temporal } from '@temporalio/proto';
import type { History } from '@temporalio/common/lib/proto-utils';

const E = temporal.api.enums.v1.EventType;

export interface ActionCount {
  total: number;
  start: number;
  update: number;
  signal: number;
  timer: number;
  activity: number;
  activityRetry: number;
  localActivityTasks: number;
  localActivityRetry: number;
  upsert: number;
  /** Not billed: TemporalChangeVersion-only upserts, memo upserts, patch-marker-only workflow tasks. */
  free: { versionUpserts: number; memoUpserts: number; patchOnlyTasks: number };
  events: number;
  historyBytes: number;
  /** The patch ids the run recorded (its TemporalChangeVersion), e.g. to tell which code ran. */
  patches: string[];
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/** Counts the billable Actions of one closed workflow's history. */
export function countActions(history: History): ActionCount {
  const c: ActionCount = {
    total: 0,
    start: 0,
    update: 0,
    signal: 0,
    timer: 0,
    activity: 0,
    activityRetry: 0,
    localActivityTasks: 0,
    localActivityRetry: 0,
    upsert: 0,
    free: { versionUpserts: 0, memoUpserts: 0, patchOnlyTasks: 0 },
    events: history.events?.length ?? 0,
    historyBytes: temporal.api.history.v1.History.encode(history as temporal.api.history.v1.IHistory).finish().length,
    patches: [],
  };
  // Markers of the workflow task completed last: the commands of one task follow its Completed event.
  let task: { la: boolean; patch: boolean } | undefined;
  const closeTask = () => {
    if (task?.la) c.localActivityTasks++;
    else if (task?.patch) c.free.patchOnlyTasks++;
    task = undefined;
  };
  for (const e of history.events ?? []) {
    const type = e.eventType;
    switch (type) {
      case E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        c.start++;
        break;
      case E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        c.update++;
        break;
      case E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        c.signal++;
        break;
      case E.EVENT_TYPE_TIMER_STARTED:
        c.timer++;
        break;
      case E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        c.activity++;
        break;
      case E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        c.activityRetry += Math.max(0, num(e.activityTaskStartedEventAttributes?.attempt) - 1);
        break;
      case E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        closeTask();
        task = { la: false, patch: false };
        c.localActivityRetry += num(
          e.workflowTaskCompletedEventAttributes?.meteringMetadata?.nonfirstLocalActivityExecutionAttempts,
        );
        break;
      case E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
        closeTask();
        break;
      case E.EVENT_TYPE_MARKER_RECORDED: {
        const name = e.markerRecordedEventAttributes?.markerName ?? '';
        task ??= { la: false, patch: false };
        if (name === 'core_patch') task.patch = true;
        else task.la = true;
        break;
      }
      case E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: {
        const keys = Object.keys(
          e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {},
        );
        if (keys.length > 0 && keys.every((k) => k === 'TemporalChangeVersion')) c.free.versionUpserts++;
        else c.upsert++;
        const version =
          e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.TemporalChangeVersion?.data;
        if (version) c.patches.push(...(JSON.parse(Buffer.from(version).toString('utf8')) as string[]));
        break;
      }
      case E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        c.free.memoUpserts++;
        break;
      default:
        break;
    }
  }
  closeTask();
  c.total =
    c.start +
    c.update +
    c.signal +
    c.timer +
    c.activity +
    c.activityRetry +
    c.localActivityTasks +
    c.localActivityRetry +
    c.upsert;
  return c;
}

/** The mean of several counts, field by field. */
export function meanActions(counts: ActionCount[]): ActionCount {
  const n = Math.max(1, counts.length);
  const avg = (f: (c: ActionCount) => number) => Math.round((counts.reduce((s, c) => s + f(c), 0) / n) * 1000) / 1000;
  return {
    total: avg((c) => c.total),
    start: avg((c) => c.start),
    update: avg((c) => c.update),
    signal: avg((c) => c.signal),
    timer: avg((c) => c.timer),
    activity: avg((c) => c.activity),
    activityRetry: avg((c) => c.activityRetry),
    localActivityTasks: avg((c) => c.localActivityTasks),
    localActivityRetry: avg((c) => c.localActivityRetry),
    upsert: avg((c) => c.upsert),
    free: {
      versionUpserts: avg((c) => c.free.versionUpserts),
      memoUpserts: avg((c) => c.free.memoUpserts),
      patchOnlyTasks: avg((c) => c.free.patchOnlyTasks),
    },
    events: avg((c) => c.events),
    historyBytes: avg((c) => c.historyBytes),
    patches: [...new Set(counts.flatMap((c) => c.patches))].sort(),
  };
}
