/**
 * A mailbox: messages run one at a time, in arrival order. A message is a function; the
 * mailbox awaits its promise before starting the next one. A message that throws rejects its
 * own `post()` promise and never blocks the mailbox.
 */
type Message = {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: unknown) => void;
};

export class Mailbox {
  private queue: Message[] = [];
  private head = 0;
  private running = false;
  /** Set while a message runs or is queued. */
  onIdle: (() => void) | undefined;

  /** Messages queued or running. */
  get depth(): number {
    return this.queue.length - this.head + (this.running ? 1 : 0);
  }

  get idle(): boolean {
    return !this.running && this.head === this.queue.length;
  }

  post<T>(run: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!this.running) void this.drain();
    });
  }

  /** Takes the messages not yet started (used to hand them to a successor actor). */
  takeQueued(): Message[] {
    const rest = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    return rest;
  }

  /** Appends messages taken from another mailbox, keeping their order and promises. */
  adopt(messages: Message[]): void {
    if (messages.length === 0) return;
    this.queue.push(...messages);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.head < this.queue.length) {
      const m = this.queue[this.head];
      this.head++;
      try {
        // Synchronous messages complete without a microtask hop; async ones are awaited.
        const r = m.run();
        m.resolve(r instanceof Promise ? await r : r);
      } catch (err) {
        m.reject(err);
      }
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
    }
    this.queue = [];
    this.head = 0;
    this.running = false;
    this.onIdle?.();
  }
}

export type { Message as MailboxMessage };
