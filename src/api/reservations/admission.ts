/**
 * Per-SKU admission into Temporal, in this API process.
 *
 * In a flash sale, thousands of buyers pass the Redis pre-check in the moment before the first
 * holds land, and each would start a workflow that the Lua hold then rejects: Temporal drowns in
 * doomed workflows and answers late (or 503). The gate lets at most `available` units per SKU be
 * in flight into Temporal at once; other buyers wait for those to settle and then re-read Redis.
 * It never refuses by itself: refusals still come from Redis (the pre-check) or from the Lua
 * hold, so nothing is undersold, and a hold that fails gives its units back to the waiters.
 */
import { DEFAULT_CHANNEL, type CartLine } from '../../domain/types';
import type { StockStore } from '../../stock';

interface Gate {
  inFlight: number;
  waiters: Set<() => void>;
}

export class AdmissionGate {
  private readonly gates = new Map<string, Gate>();

  private gate(sku: string): Gate {
    let g = this.gates.get(sku);
    if (!g) this.gates.set(sku, (g = { inFlight: 0, waiters: new Set() }));
    return g;
  }

  /** The first line whose available units are all taken by requests in flight, if any. */
  blocked(cart: readonly CartLine[], available: readonly number[]): string | undefined {
    return cart.find((line, i) => (available[i] ?? 0) - (this.gates.get(line.sku)?.inFlight ?? 0) < line.quantity)?.sku;
  }

  /** Waits until `sku`'s in-flight requests settle (or `ms` pass). */
  wait(sku: string, ms: number): Promise<void> {
    const g = this.gate(sku);
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        g.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      g.waiters.add(done);
    });
  }

  /** Counts the cart in flight; call the returned function with whether the hold happened. */
  enter(cart: readonly CartLine[]): (held: boolean) => void {
    for (const line of cart) this.gate(line.sku).inFlight += line.quantity;
    return (held) => {
      for (const line of cart) {
        const g = this.gate(line.sku);
        g.inFlight -= line.quantity;
        // Nothing in flight: everyone re-reads Redis (and is refused there once sold out). A hold
        // that did not happen hands its units to as many waiters.
        const wake = g.inFlight === 0 ? g.waiters.size : held ? 0 : line.quantity;
        for (const waiter of [...g.waiters].slice(0, wake)) waiter();
        if (g.inFlight === 0 && g.waiters.size === 0) this.gates.delete(line.sku);
      }
    };
  }
}

/** The admission gate's key of one customer's units of a SKU limited per customer. */
const customerGate = (sku: string, customerId: string) => `${sku}\n${customerId}`;

/**
 * A reservation's way into Temporal, in this API process: the pre-check (a cart Redis shows
 * cannot be held is refused here, without Temporal or PostgreSQL, unless it repeats a reservation
 * the workflow answers), then two gates: at most `available` units per SKU, and per customer on a
 * limited SKU the units it may still take (so a customer's storm of requests for a drop starts one
 * workflow, and the rest are refused from Redis once its hold has landed). Others wait for those
 * in flight to settle and check again, until `admitBy`.
 */
export class Admission {
  private readonly stock = new AdmissionGate();
  private readonly customers = new AdmissionGate();

  /** Admits the request (or throws the pre-check's refusal); call `leave` once its hold is decided. */
  async admit(
    stock: StockStore,
    request: { reservationId: string; items: CartLine[]; customerId?: string; channel?: string },
    named: boolean,
    admitBy: number,
  ): Promise<{ leave(held: boolean): void }> {
    const { items, customerId } = request;
    for (;;) {
      const { refusal, repeat, available, allowance } = await stock.precheck(
        items,
        customerId,
        named ? request.reservationId : undefined,
        request.channel ?? DEFAULT_CHANNEL,
      );
      if (refusal) throw refusal;
      const limited = customerId
        ? items
            .filter((_, i) => allowance[i] !== undefined)
            .map((l) => ({ sku: customerGate(l.sku, customerId), quantity: l.quantity }))
        : [];
      const blocked = repeat ? undefined : this.stock.blocked(items, available);
      const blockedCustomer =
        repeat || blocked
          ? undefined
          : this.customers.blocked(
              limited,
              allowance.filter((a): a is number => a !== undefined),
            );
      if ((!blocked && !blockedCustomer) || Date.now() > admitBy) {
        // A client that names its reservation may send it again before this one's hold lands:
        // the note lets that repeat join this workflow instead of being refused as short.
        if (named && !repeat) await stock.noteAdmitted(request.reservationId, items);
        const leaveStock = this.stock.enter(items);
        const leaveCustomer = this.customers.enter(limited);
        return {
          leave(held) {
            leaveStock(held);
            leaveCustomer(held);
          },
        };
      }
      await (blocked ? this.stock.wait(blocked, 1_000) : this.customers.wait(blockedCustomer!, 1_000));
    }
  }
}
