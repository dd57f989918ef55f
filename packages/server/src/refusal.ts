import type { JsonValue } from '@dovetail/protocol';

export type RejectReason = 'parent_missing' | 'parent_deleted' | 'parent_rejected' | 'forbidden' | 'invalid' | 'conflict' | 'too_large' | 'row_not_found';

export interface RefusalDetails {
  table?: string;
  column?: string;
  value?: JsonValue;
  referencedTable?: string;
  rowId?: string;
}

/** Thrown inside a push transaction to refuse the mutation; the transaction rolls back. */
export class Refusal extends Error {
  override readonly name = 'Refusal';
  readonly reason: RejectReason;
  readonly details: RefusalDetails;

  constructor(reason: RejectReason, message: string, details: RefusalDetails = {}) {
    super(message);
    this.reason = reason;
    this.details = details;
  }
}
