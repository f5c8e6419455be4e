"""Districts (街道/区) and crossing between their communities (通存通兑)."""
