import type { FunctionRecord, RegistrationStore, StoredRegistrations, TriggerRecord } from "../../core/registrations.js";

/**
 * Keeps registrations in this process: they last as long as the adapter that holds
 * it. Servers in one process that share an instance see each other's changes.
 */
export class MemoryRegistrationStore implements RegistrationStore {
  private readonly functions = new Map<string, FunctionRecord>();
  private readonly triggers = new Map<string, TriggerRecord>();
  private readonly listeners = new Set<() => void>();

  async load(): Promise<StoredRegistrations> {
    // Copies, as a serialising store would return, so no caller can change what is stored.
    return structuredClone({ functions: [...this.functions.values()], triggers: [...this.triggers.values()] });
  }

  async saveFunction(record: FunctionRecord): Promise<void> {
    this.functions.set(record.functionId, structuredClone(record));
    this.changed();
  }

  async deleteFunction(functionId: string): Promise<boolean> {
    return this.deleted(this.functions.delete(functionId));
  }

  async saveTrigger(record: TriggerRecord): Promise<void> {
    this.triggers.set(record.triggerId, structuredClone(record));
    this.changed();
  }

  async deleteTrigger(triggerId: string): Promise<boolean> {
    return this.deleted(this.triggers.delete(triggerId));
  }

  onChange(listener: () => void): () => void {
    // A wrapper per call, so that one listener subscribed twice is also removed twice.
    const call = () => listener();
    this.listeners.add(call);
    return () => this.listeners.delete(call);
  }

  private deleted(found: boolean): boolean {
    if (found) this.changed();
    return found;
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
