"""The transparency log: every transaction of a community in an RFC 6962 Merkle tree,
signed checkpoints (C2SP), receipts and proofs, and the offline verifier.

Data access as in the other packages: ``models.py`` holds the five tables,
``queries.py`` every read and write of them (typed statements on the models; the
integrator's batch statements stay SQL there).
"""
