import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ReservationService } from '../../src/api/reservations';
import type { ReservationView } from '../../src/domain/types';
import type { StockStore } from '../../src/stock';

/** The service over a Temporal client whose query fails with `error`, and a ledger that knows `recorded`. */
function serviceWhoseQueryFails(error: Error, recorded?: ReservationView) {
  const client = {
    withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
    workflow: { getHandle: () => ({ query: () => Promise.reject(error) }) },
  } as unknown as Client;
  const stock = { getReservation: jest.fn(async () => recorded) } as unknown as StockStore;
  return { service: new ReservationService(client, stock, { taskQueue: 'q', defaultTtlSeconds: 600, maxTtlSeconds: 86_400 }), stock };
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

  it("answers from PostgreSQL when Temporal no longer has the workflow (retention dropped it)", async () => {
    const { service } = serviceWhoseQueryFails(new WorkflowNotFoundError('gone', 'reservation-r1', undefined), recorded);
    await expect(service.get('r1')).resolves.toEqual(recorded);
  });

  it('is RESERVATION_NOT_FOUND when neither Temporal nor PostgreSQL knows the id', async () => {
    const { service } = serviceWhoseQueryFails(new WorkflowNotFoundError('gone', 'reservation-r1', undefined));
    await expect(service.get('r1')).rejects.toMatchObject({ code: 'RESERVATION_NOT_FOUND', status: 404 });
  });
});
