/**
 * Load generator child: a flash-sale storm. `buyers` POSTs are launched at once with Node's
 * fetch (each on its own fresh connection, as independent shoppers would be), and the child
 * reports the wall time until the last one was answered, the answers by status, the winners'
 * reservation ids, and the latency of the losers (409). A buyer answered 503 does what a client
 * does: it tries again (up to 5 times, 250 ms apart) with the reservation id the 503 carries, and
 * its final answer is the one counted (a retry that finds its hold, 200 HELD, is a winner).
 */
import { performance } from 'node:perf_hooks';
import { Samples, summarize, type LatencySummary } from '../harness/stats';
import { serveJob } from './protocol';

export interface StormJob {
  /** Where buyers go; with several URLs (API processes on their own ports) buyer i goes to url i mod n, as a round-robin balancer would send them. */
  urls: string[];
  headers: Record<string, string>;
  buyers: number;
  sku: string;
}

export interface StormResult {
  wallS: number;
  /** Time until every request was handed to fetch (the launch itself takes a while). */
  launchS: number;
  statuses: Record<string, number>;
  /** Buyers first answered 503, who then tried again with the id it carried. */
  retried: number;
  winners: string[];
  errors: number;
  errorSamples: string[];
  /** The first few answers neither 201/200 nor 409: status and body. */
  otherSamples: string[];
  losers: LatencySummary;
  all: LatencySummary;
}

serveJob<StormJob, StormResult>(async (job, progress) => {
  const statuses: Record<string, number> = {};
  const winners: string[] = [];
  const losers = new Samples();
  const all = new Samples();
  const errorSamples: string[] = [];
  /** The first few answers that were neither 201/200 nor 409, as received (status and body). */
  const otherSamples: string[] = [];
  let errors = 0;
  let answered = 0;
  let retried = 0;
  const body = JSON.stringify({ items: [{ sku: job.sku, quantity: 1 }] });
  const headers = { ...job.headers, 'content-type': 'application/json' };

  const start = performance.now();
  const reporter = setInterval(
    () =>
      progress(
        `${((performance.now() - start) / 1000).toFixed(0)} s: ${answered.toLocaleString('en-US')} of ${job.buyers.toLocaleString('en-US')} answered`,
      ),
    2_000,
  );
  const buyer = async (i: number) => {
    const t = performance.now();
    try {
      const url = job.urls[i % job.urls.length]!;
      let res = await fetch(url, { method: 'POST', headers, body });
      let text = await res.text();
      for (let attempt = 1; res.status === 503 && attempt <= 5; attempt++) {
        const id = (JSON.parse(text) as { error?: { details?: { reservationId?: string } } }).error?.details
          ?.reservationId;
        if (!id) break;
        if (attempt === 1) retried += 1;
        await new Promise((r) => setTimeout(r, 250));
        res = await fetch(url, {
          method: 'POST',
          headers,
          body: JSON.stringify({ reservationId: id, items: [{ sku: job.sku, quantity: 1 }] }),
        });
        text = await res.text();
      }
      const ms = performance.now() - t;
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status !== 201 && res.status !== 200 && res.status !== 409 && otherSamples.length < 5)
        otherSamples.push(`${res.status} ${text.slice(0, 300)}`);
      all.push(ms);
      const view =
        res.status === 201 || res.status === 200
          ? (JSON.parse(text) as { reservationId: string; status?: string })
          : undefined;
      if (view && (res.status === 201 || view.status === 'HELD')) winners.push(view.reservationId);
      else if (res.status === 409) losers.push(ms);
    } catch (err) {
      errors += 1;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (errorSamples.length < 5)
        errorSamples.push(`${String(err)}${cause ? ` (${cause.code ?? cause.message})` : ''}`);
    } finally {
      answered += 1;
    }
  };
  const pending: Promise<void>[] = [];
  for (let i = 0; i < job.buyers; i++) pending.push(buyer(i));
  const launchS = (performance.now() - start) / 1000;
  await Promise.all(pending);
  const wallS = (performance.now() - start) / 1000;
  clearInterval(reporter);
  return {
    wallS,
    launchS,
    statuses,
    retried,
    winners,
    errors,
    errorSamples,
    otherSamples,
    losers: summarize(losers.values()),
    all: summarize(all.values()),
  };
});
