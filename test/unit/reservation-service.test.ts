import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ReservationService } from '../../src/api/reservations/service';
import type { ReservationView } from '../../src/domain/types';
import type { StockStore } from '../../src/stock';

/** The service over a Temporal client whose query fails with `error`, and a ledger that knows `recorded`. */
function serviceWhoseQueryFails(error: Error, recorded?: ReservationView) {
  const client = {
    withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
    workflow: { getHandle: () => ({ query: () => Promise.reject(error) }) },
  } as unknown as Client;
  const stock = { getReservation: jest.fn(async () => recorded) } as unknown as StockStore;
  return {
    service: new ReservationService(client, stock, { taskQueue: 'q', defaultTtlSeconds: 600, maxTtlSeconds: 86_400 }),
    stock,
  };
}

const recorded: ReservationView = {
  reservationId: 'r1',
  status: 'COMMITTED',
  items: [{ sku: 'A', quantity: 2, committedQuantity: 2, returnedQuantity: 1 }],
  customerId: null,
  expiresAt: '2026-11-24T10:10:00.000Z',
  createdAt: '2026-11-24T10:00:00.000Z',
  updatedAt: '2026-11-24T10:01:00.000Z',
  workflowId: 'reservation-r1',
};

describe('ReservationService.get', () => {
  it('does not turn an error that merely mentions "not found" into RESERVATION_NOT_FOUND', async () => {
    const failure = new Error('query handler not found for getReservation');
    const { service } = serviceWhoseQueryFails(failure);
    await expect(service.get('r1')).rejects.toBe(failure);
  });

  it('answers from PostgreSQL when Temporal no longer has the workflow (retention dropped it)', async () => {
    const { service } = serviceWhoseQueryFails(
      new WorkflowNotFoundError('gone', 'reservation-r1', undefined),
      recorded,
    );
    await expect(service.get('r1')).resolves.toEqual(recorded);
  });

  it('is RESERVATION_NOT_FOUND when neither Temporal nor PostgreSQL knows the id', async () => {
    const { service } = serviceWhoseQueryFails(new WorkflowNotFoundError('gone', 'reservation-r1', undefined));
    await expect(service.get('r1')).rejects.toMatchObject({ code: 'RESERVATION_NOT_FOUND', status: 404 });
  });
});

describe('ReservationService.create', () => {
  it('answers 503 with the reservation id when Temporal does not answer in time, so a client that sent no id can retry into the hold', async () => {
    const deadlineExceeded = Object.assign(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'), {
      code: 4,
      metadata: {},
    });
    const client = {
      withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
      workflow: { executeUpdateWithStart: () => Promise.reject(deadlineExceeded) },
    } as unknown as Client;
    const stock = {
      precheck: jest.fn(async () => ({ refusal: undefined, repeat: false, available: [5], allowance: [undefined] })),
      // A named request is noted as admitted before its workflow starts (a repeat may join it).
      noteAdmitted: jest.fn(async () => undefined),
    } as unknown as StockStore;
    const service = new ReservationService(client, stock, {
      taskQueue: 'q',
      defaultTtlSeconds: 600,
      maxTtlSeconds: 86_400,
    });

    const refusal = (await service.create({ items: [{ sku: 'A', quantity: 1 }] }).then(
      () => undefined,
      (err: unknown) => err,
    )) as { code: string; status: number; message: string; details: { reservationId?: string } };
    expect(refusal).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect(refusal.details.reservationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(refusal.message).toContain(`retry with reservationId ${refusal.details.reservationId}`);

    // An id the client sent comes back as it was.
    await expect(
      service.create({ reservationId: 'order-9', items: [{ sku: 'A', quantity: 1 }] }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { reservationId: 'order-9' } });
  });
});
