"""The Work System (SPEC W1–W5): employers, foreign nationals, applications, permits, letters."""
