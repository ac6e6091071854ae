"""Partner banks: the bank's own account records, and the real-name check of a bank card against them."""
