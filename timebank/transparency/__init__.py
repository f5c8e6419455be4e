"""The public page of each community (``/p/{community}``) and the in-browser verifier."""
