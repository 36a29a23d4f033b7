/**
 * A process's short cache of a registry entry it reads on every request (a channel, a bundle): each
 * entry is kept `ttlMs`, and one read per name is under way at a time, so a storm that misses at
 * once when an entry expires makes one read, not one per request.
 */
export class CachedLookup<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();
  private readonly reading = new Map<string, Promise<T>>();

  constructor(
    private readonly read: (name: string) => Promise<T>,
    private readonly ttlMs: number,
    private readonly now: () => number,
    /** Whether a value read is kept (default: all); e.g. not "there is none", so the map holds only what exists. */
    private readonly keep: (value: T) => boolean = () => true,
  ) {}

  /** The entry, from the cache unless it expired or `fresh` asks for a read. A failed read is not kept. */
  get(name: string, fresh = false): Promise<T> {
    const cached = this.entries.get(name);
    if (cached && cached.until > this.now() && !fresh) return Promise.resolve(cached.value);
    let reading = this.reading.get(name);
    if (!reading) {
      reading = this.read(name)
        .then((value) => {
          if (this.keep(value)) this.entries.set(name, { value, until: this.now() + this.ttlMs });
          return value;
        })
        .finally(() => this.reading.delete(name));
      this.reading.set(name, reading);
    }
    return reading;
  }

  /** Forgets every entry (after this process's own write, which it must see at once). */
  clear(): void {
    this.entries.clear();
  }
}
