import { Mailbox } from './mailbox.js';

/** An actor: an id, private state, and a mailbox that runs its messages one at a time. */
export class Actor<S> {
  readonly mailbox = new Mailbox();
  lastActive: number;
  retired = false;

  constructor(
    readonly id: string,
    readonly state: S,
    now: number,
  ) {
    this.lastActive = now;
  }
}

/**
 * The actor runtime: one actor per id, created on first message. Different actors' messages
 * interleave freely on the owning thread's event loop (an actor awaiting the hashing pool or a
 * copy never holds up another); one actor's messages never overlap.
 */
export class ActorRegistry<S> {
  private readonly actors = new Map<string, Actor<S>>();
  private messages = 0;

  constructor(
    private readonly create: (id: string) => S,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.actors.size;
  }

  get messagesHandled(): number {
    return this.messages;
  }

  get(id: string): Actor<S> | undefined {
    return this.actors.get(id);
  }

  /** Sends a message to the actor `id` (creating it); resolves with the handler's result. */
  send<T>(id: string, handler: (state: S, actor: Actor<S>) => T | Promise<T>): Promise<T> {
    let actor = this.actors.get(id);
    if (actor === undefined) {
      actor = new Actor(id, this.create(id), this.now());
      this.actors.set(id, actor);
    }
    const target = actor;
    this.messages++;
    return target.mailbox.post(() => {
      // A message queued behind a retiring message runs on the successor (fresh state).
      const a = target.retired ? this.successor(id) : target;
      a.lastActive = this.now();
      return handler(a.state, a);
    });
  }

  /**
   * Removes the actor (from inside its own message). Messages already queued behind the
   * current one move, in order, to a fresh actor with the same id.
   */
  retire(actor: Actor<S>): void {
    if (actor.retired) return;
    actor.retired = true;
    if (this.actors.get(actor.id) === actor) this.actors.delete(actor.id);
    const rest = actor.mailbox.takeQueued();
    if (rest.length > 0) this.successor(actor.id).mailbox.adopt(rest);
  }

  private successor(id: string): Actor<S> {
    let a = this.actors.get(id);
    if (a === undefined || a.retired) {
      a = new Actor(id, this.create(id), this.now());
      this.actors.set(id, a);
    }
    return a;
  }

  /** Actors idle (nothing queued or running) for at least `ttlMs`. */
  idleLongerThan(ttlMs: number): Actor<S>[] {
    const now = this.now();
    const out: Actor<S>[] = [];
    for (const a of this.actors.values()) if (a.mailbox.idle && now - a.lastActive >= ttlMs) out.push(a);
    return out;
  }

  ids(): IterableIterator<string> {
    return this.actors.keys();
  }
}
