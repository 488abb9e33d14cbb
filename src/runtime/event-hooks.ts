/**
 * The add/update/delete hooks of a cache (client-go's ResourceEventHandler): registered
 * functions called synchronously, in registration order, for each change the cache
 * applied.
 *
 * Guarantees
 * - A hook that throws is logged and does not stop the other hooks: the cache is already
 *   updated, so a failing hook cannot undo or block it.
 */
import type { Logger } from '../common/logger.ts';
import type { StoreChange } from './store.ts';

/**
 * How a change reached the cache: `listed` when a (re)list found it, so an update may
 * span several writes; false for one watch event (exactly one write).
 */
export interface ChangeInfo {
  listed: boolean;
}

export const LISTED: ChangeInfo = Object.freeze({ listed: true });
export const WATCHED: ChangeInfo = Object.freeze({ listed: false });

export type AddHook<T> = (obj: T, info: ChangeInfo) => void;
export type UpdateHook<T> = (oldObj: T, newObj: T, info: ChangeInfo) => void;
export type DeleteHook<T> = (obj: T, info: ChangeInfo) => void;

export class EventHooks<T> {
  readonly #log: Logger;
  readonly #add = new Set<AddHook<T>>();
  readonly #update = new Set<UpdateHook<T>>();
  readonly #delete = new Set<DeleteHook<T>>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Registers `fn` and calls it at once for each of `existing` (as listed). Returns an unsubscribe function. */
  onAdd(fn: AddHook<T>, existing: Iterable<T> = []): () => void {
    this.#add.add(fn);
    for (const obj of existing) this.#call('add', () => fn(obj, LISTED));
    return () => this.#add.delete(fn);
  }

  onUpdate(fn: UpdateHook<T>): () => void {
    this.#update.add(fn);
    return () => this.#update.delete(fn);
  }

  onDelete(fn: DeleteHook<T>): () => void {
    this.#delete.add(fn);
    return () => this.#delete.delete(fn);
  }

  emit(change: StoreChange<T>, info: ChangeInfo): void {
    switch (change.type) {
      case 'add':
        for (const h of this.#add) this.#call('add', () => h(change.obj, info));
        break;
      case 'update':
        for (const h of this.#update) this.#call('update', () => h(change.old, change.obj, info));
        break;
      case 'delete':
        for (const h of this.#delete) this.#call('delete', () => h(change.obj, info));
        break;
    }
  }

  #call(kind: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.error({ err, hook: kind }, 'watcher: an event hook threw; hooks must only enqueue (the cache is updated regardless)');
    }
  }
}
