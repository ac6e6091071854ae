"""Identity and access: staff accounts, roles, sessions of people, partner API clients, limits."""
