"""The foreigner's electronic social security card: accounts (registration with face recognition,
log-in) and what the holder sees of their own permit (SPEC E1–E5)."""
