import type { ItemStoreOptions, CommitResult, GroupListener, ItemWrite, ItemStore } from "../../core/item-store.js";
import type { GroupEvent, GroupMessage, GroupSnapshot, ItemChange, StoredItem, StreamGroups } from "../../core/model.js";
import { checkPrecondition, DEFAULT_HISTORY_LIMIT } from "../../core/item-store.js";
import { compareBytes } from "../../core/names.js";
import { HistoryBuffer } from "../history-buffer.js";

interface GroupState {
  /**
   * The group's names, shared by its changes: the request's own copies can then die
   * young, before the garbage collector has to move them with the retained changes.
   */
  streamName: string;
  groupId: string;
  /** A Map keeps insertion order, which is the order List promises. */
  items: Map<string, StoredItem>;
  /** Kept after the group empties, so offsets never repeat. */
  offset: number;
  history: HistoryBuffer;
  listeners: Set<GroupListener>;
}

/** Keeps everything in this process. Nothing survives a restart. */
export class MemoryItemStore implements ItemStore {
  readonly name = "memory";
  private readonly streams = new Map<string, Map<string, GroupState>>();
  private readonly historyLimit: number;

  constructor(options: ItemStoreOptions = {}) {
    this.historyLimit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  }

  async getItem(streamName: string, groupId: string, itemId: string): Promise<StoredItem | undefined> {
    return this.group(streamName, groupId)?.items.get(itemId);
  }

  async commit(write: ItemWrite): Promise<CommitResult> {
    const group = this.group(write.streamName, write.groupId, true);
    const existing = group.items.get(write.itemId);
    const refused = checkPrecondition(write, existing);
    if (refused) return refused;
    const currentRevision = existing?.revision ?? 0;

    const offset = ++group.offset;
    let change: ItemChange;
    if (write.value === undefined) {
      group.items.delete(write.itemId);
      change = this.change(group, existing!.itemId, write, "delete", existing!.data, existing!.data, existing!.revision, offset);
    } else {
      const revision = currentRevision + 1;
      // The stored item's id, like the group's names, outlives the request's string.
      const itemId = existing === undefined ? write.itemId : existing.itemId;
      group.items.set(itemId, {
        itemId,
        data: write.value,
        revision,
        createdOffset: existing?.createdOffset ?? offset,
        updatedAtMs: write.timestampMs,
      });
      change = this.change(group, itemId, write, existing ? "update" : "create", write.value, existing?.data, revision, offset);
    }
    if (group.items.size === 0) group.history.clear();
    else group.history.push(change);
    this.emit(group, change);
    return { ok: true, change };
  }

  async publishEvent(event: Omit<GroupEvent, "kind" | "offset">): Promise<GroupEvent> {
    const group = this.group(event.streamName, event.groupId);
    const stamped: GroupEvent = { kind: "event", ...event, offset: group?.offset ?? 0 };
    if (group) this.emit(group, stamped);
    return stamped;
  }

  async snapshot(streamName: string, groupId: string, itemId?: string): Promise<GroupSnapshot> {
    const group = this.group(streamName, groupId);
    if (!group) return { items: [], offset: 0 };
    if (itemId !== undefined) {
      const item = group.items.get(itemId);
      return { items: item ? [item] : [], offset: group.offset };
    }
    return { items: [...group.items.values()], offset: group.offset };
  }

  async currentOffset(streamName: string, groupId: string): Promise<number> {
    return this.group(streamName, groupId)?.offset ?? 0;
  }

  async changesSince(streamName: string, groupId: string, afterOffset: number): Promise<ItemChange[] | undefined> {
    const group = this.group(streamName, groupId);
    if (!group) return afterOffset === 0 ? [] : undefined;
    return group.history.since(afterOffset, group.offset);
  }

  async listItems(streamName: string, groupId: string): Promise<StoredItem[]> {
    const group = this.group(streamName, groupId);
    return group ? [...group.items.values()] : [];
  }

  async listGroups(streamName: string): Promise<string[]> {
    const groups = this.streams.get(streamName);
    if (!groups) return [];
    return [...groups].filter(([, g]) => g.items.size > 0).map(([id]) => id).sort(compareBytes);
  }

  async listAll(): Promise<StreamGroups[]> {
    const result: StreamGroups[] = [];
    for (const streamName of [...this.streams.keys()].sort(compareBytes)) {
      const groups = await this.listGroups(streamName);
      if (groups.length > 0) result.push({ streamName, groups });
    }
    return result;
  }

  async watch(streamName: string, groupId: string, listener: GroupListener): Promise<() => void> {
    const group = this.group(streamName, groupId, true);
    group.listeners.add(listener);
    return () => {
      group.listeners.delete(listener);
    };
  }

  isReady(): boolean {
    return true;
  }

  /** Active `watch` listeners over all groups, for tests that check nothing leaks. */
  get watcherCount(): number {
    let count = 0;
    for (const groups of this.streams.values()) for (const group of groups.values()) count += group.listeners.size;
    return count;
  }

  async close(): Promise<void> {
    for (const groups of this.streams.values()) for (const group of groups.values()) group.listeners.clear();
  }

  private group(streamName: string, groupId: string): GroupState | undefined;
  private group(streamName: string, groupId: string, create: true): GroupState;
  private group(streamName: string, groupId: string, create = false): GroupState | undefined {
    let groups = this.streams.get(streamName);
    if (!groups) {
      if (!create) return undefined;
      groups = new Map();
      this.streams.set(streamName, groups);
    }
    let group = groups.get(groupId);
    if (!group && create) {
      group = {
        streamName,
        groupId,
        items: new Map(),
        offset: 0,
        history: new HistoryBuffer(this.historyLimit),
        listeners: new Set(),
      };
      groups.set(groupId, group);
    }
    return group;
  }

  private change(
    group: GroupState,
    itemId: string,
    write: ItemWrite,
    type: ItemChange["type"],
    data: ItemChange["data"],
    oldValue: ItemChange["oldValue"],
    revision: number,
    offset: number,
  ): ItemChange {
    return {
      kind: "change",
      streamName: group.streamName,
      groupId: group.groupId,
      type,
      itemId,
      data,
      oldValue,
      revision,
      offset,
      timestampMs: write.timestampMs,
    };
  }

  private emit(group: GroupState, message: GroupMessage): void {
    for (const listener of group.listeners) listener(message);
  }
}
