"""``linkinit proxy``: the link-scoped Engine socket proxy, one module per job."""
