"""Activities (活动): published by an organisation or the community's staff, signed up
for, attended with a QR code (check-in, check-out), and credited through the same
service records, rules and approval as any record."""
