"""Reports derived from the ledger's entries: service, points and merchants for a period.

Every figure is a sum over ``entries`` (classified by their transaction's kind and, where
a report groups by them, by the service record or redemption the transaction belongs
to), read in one snapshot; nothing is counted anywhere else.
"""
