"""The resident's pages: one home for what a resident sees and does, composed from the
domain services (ledger, points, volunteer, redemption, notifications), never
re-implementing their rules."""
