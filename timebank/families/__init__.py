"""Family links (亲情账户): relatives (or a carer) who give to and act for each other."""
