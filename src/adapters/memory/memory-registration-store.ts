import type { FunctionRecord, RegistrationStore, StoredRegistrations, TriggerRecord } from "../../core/registrations.js";
import { ChangeListeners } from "../../core/change-listeners.js";

/**
 * Keeps registrations in this process: they last as long as this object. Servers in one
 * process given the same instance (in their backends) see each other's changes; a server
 * whose backend has no registration store gets one of its own.
 */
export class MemoryRegistrationStore implements RegistrationStore {
  private readonly functions = new Map<string, FunctionRecord>();
  private readonly triggers = new Map<string, TriggerRecord>();
  private readonly listeners = new ChangeListeners();

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
    return this.listeners.add(listener);
  }

  private deleted(found: boolean): boolean {
    if (found) this.changed();
    return found;
  }

  private changed(): void {
    this.listeners.notify();
  }
}
